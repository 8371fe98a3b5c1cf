"""What reviewers see: step documents in, tables and charts out.

Pure functions over the documents the steps write (``documents``: the validation
result, the stage and transform reports, the run records), each given as the
document or its JSON: each returns a pandas DataFrame (a ``Table``: shown whole, every
row and every character, in a box that scrolls when it is long or wide) or a matplotlib
Figure for a notebook to display. Nothing here reads or writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline_tasks.contract import ROW_RULES, RowRule, is_decimal
from pipeline_tasks.documents import BatchValidation, RunRecord, StageReport, TransformReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The box a table is shown in: at most this high and as wide as the page, scrolling beyond.
TABLE_BOX = "max-height:32em;max-width:100%;overflow:auto"


class Table(pd.DataFrame):
    """A DataFrame a notebook shows whole: every row, column and character of every cell.

    pandas' display options cut what a notebook (and its nbconvert HTML) shows: cells at
    50 characters, long tables to their first and last rows around a ``...`` row, wide
    ones to some columns. An audit record needs all of it: the HTML of a Table is the
    complete table in a box that scrolls (down when long, sideways when wide), and its
    text is complete too. Anything derived from a Table is a plain DataFrame.
    """

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def _repr_html_(self) -> str:
        with pd.option_context("display.max_colwidth", None):
            html = pd.DataFrame(self).to_html(max_rows=None, max_cols=None, show_dimensions=False, notebook=True)
        return f'<div style="{TABLE_BOX}">{html}</div>'

    def __repr__(self) -> str:
        with pd.option_context("display.max_colwidth", None, "display.width", None):
            return pd.DataFrame(self).to_string(max_rows=None, max_cols=None)


def whole(frame: pd.DataFrame) -> Table:
    """``frame`` as a Table (shown whole)."""
    return Table(frame)


def verdicts(result: BatchValidation | Mapping[str, Any]) -> pd.DataFrame:
    """One row per input file of a batch, in arrival order: its dataset, verdict and reason.

    Valid files show their rows read and the rows that will not be staged (per
    reason); invalid files show why they are rejected.
    """
    validation = BatchValidation.of(result)
    rows = []
    for valid in validation.valid_files:
        problems = ", ".join(f"{n} {reason}" for reason, n in sorted(valid.rows_not_staged.items()))
        rows.append(
            {
                "key": valid.key,
                "dataset": valid.dataset,
                "verdict": "valid",
                "rows_read": valid.rows_read,
                "rows_not_staged": problems or "none",
                "reason": "",
            }
        )
    for invalid in validation.invalid_files:
        rows.append(
            {
                "key": invalid.key,
                "dataset": invalid.dataset or "unknown",
                "verdict": "rejected",
                # The validation result counts no rows of a rejected file: none of them is staged.
                "rows_read": 0,
                "rows_not_staged": "all (file rejected)",
                "reason": invalid.reason,
            }
        )
    order = {key: n for n, key in enumerate(validation.keys)}
    frame = pd.DataFrame(rows, columns=["key", "dataset", "verdict", "rows_read", "rows_not_staged", "reason"])
    if order:
        frame = frame.sort_values("key", key=lambda keys: keys.map(order)).reset_index(drop=True)
    return whole(frame.astype({"rows_read": "int64"}))


def funnel(stage_report: StageReport | Mapping[str, Any]) -> pd.DataFrame:
    """The data-quality funnel, one row per staged file: read → staged → kept.

    Columns: rows read; one ``not staged: …`` column per row-level reason; the rows
    written to the quarantine table (every row not staged, up to the reader's sample
    limit for rows it could not split); rows staged; one ``excluded: …`` column per
    cleaning rule (§4) that dropped rows; rows kept for the KPIs.
    """
    files = StageReport.of(stage_report).files
    not_staged = sorted({reason for f in files for reason in f.rows_not_staged})
    excluded = sorted({rule for f in files for rule in f.rows_excluded_by_cleaning})
    rows = []
    for f in files:
        row: dict[str, Any] = {"key": f.key, "dataset": f.dataset, "rows_read": f.rows_read}
        row |= {f"not staged: {r}": f.rows_not_staged.get(r, 0) for r in not_staged}
        row["rows_quarantined"] = f.rows_quarantined
        row["rows_staged"] = f.rows_staged
        row |= {f"excluded: {r}": f.rows_excluded_by_cleaning.get(r, 0) for r in excluded}
        row["rows_kept"] = f.kept
        rows.append(row)
    return whole(pd.DataFrame(rows))


def merges(stage_report: StageReport | Mapping[str, Any]) -> pd.DataFrame:
    """What each Delta MERGE did, one row per staged table.

    ``older``: rows left unapplied because the staged row of their key came from a newer file.
    """
    columns = ["inserted", "updated", "unchanged", "older", "rows_superseded_in_batch", "version", "seconds"]
    tables = StageReport.of(stage_report).tables
    rows = [{"table": name, **{c: getattr(merge, c) for c in columns}} for name, merge in tables.items()]
    return whole(pd.DataFrame(rows, columns=["table", *columns]))


#: Columns of ``quarantined``, in order.
QUARANTINE_COLUMNS = ("source_key", "line", "reason", "key", "value", "row", "execution_id")


def quarantined(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The quarantined rows (the quarantine table's records), by file and line.

    Every text is shown whole as stored (the table cuts it at 2,000 characters).
    """
    frame = pd.DataFrame(list(records), columns=list(QUARANTINE_COLUMNS))
    frame = frame.astype({"line": "Int64"})
    return whole(frame.sort_values(["source_key", "line"], na_position="last").reset_index(drop=True))


def row_rules(max_share: Callable[[RowRule], float]) -> pd.DataFrame:
    """The row rules in force: what each quarantines, and the share of a file that rejects it whole."""
    rows = [
        {
            "dataset": dataset,
            "rule": rule.name,
            "column": rule.column,
            "limit": f"{rule.limit:,} {rule.measure}",
            "rejects the file above": f"{max_share(rule):.0%} of its rows",
            "why": rule.why,
        }
        for dataset, rules in ROW_RULES.items()
        for rule in rules
    ]
    return whole(pd.DataFrame(rows, columns=["dataset", "rule", "column", "limit", "rejects the file above", "why"]))


def _transform(transform_report: TransformReport | Mapping[str, Any] | None) -> TransformReport:
    """The report; an empty one for a transform that did not run (None)."""
    return TransformReport() if transform_report is None else TransformReport.of(transform_report)


def table_checks(transform_report: TransformReport | Mapping[str, Any] | None) -> pd.DataFrame:
    """The KPI tables the run checked against its published record, and what it repaired.

    One row per table: whether it is still the table the record was written to, the items
    the record expects and those found, and the repair (``none`` when the table matched).
    """
    columns = ["table", "identity_changed", "expected_items", "found_items", "action", "put", "deleted"]
    checks = _transform(transform_report).table_checks
    return whole(pd.DataFrame([{c: check.get(c) for c in columns} for check in checks], columns=columns))


def blocked_days(transform_report: TransformReport | Mapping[str, Any] | None) -> pd.DataFrame:
    """The days whose KPIs could not be computed, with the error; the tables keep them as they were."""
    blocked = _transform(transform_report).blocked_days
    return whole(pd.DataFrame(sorted(blocked.items()), columns=["order_date", "error"]))


def kpi_change_counts(transform_report: TransformReport | Mapping[str, Any] | None) -> dict[str, dict[str, int]]:
    """Per KPI table: the items a run added, changed and deleted, and those it left unchanged."""
    return {
        table: {"new": writes.new, "changed": writes.changed, "deleted": writes.deleted, "unchanged": writes.unchanged}
        for table, writes in _transform(transform_report).tables.items()
    }


def kpi_writes(transform_report: TransformReport | Mapping[str, Any]) -> pd.DataFrame:
    """Items written per KPI table: new, changed, deleted and unchanged."""
    rows = [{"table": table, **counts} for table, counts in kpi_change_counts(transform_report).items()]
    return whole(pd.DataFrame(rows, columns=["table", "new", "changed", "deleted", "unchanged"]))


def kpi_changes(transform_report: TransformReport | Mapping[str, Any], table: str) -> pd.DataFrame:
    """The items of one KPI table that the run wrote or deleted, with values before and after.

    Sorted by key; the report lists at most the first changes of a large run (the counts
    of ``kpi_writes`` are always complete).
    """
    written = _transform(transform_report).tables[table]
    frame = pd.DataFrame(list(written.changes))
    if frame.empty:
        return whole(frame)
    keys, values = list(written.key), list(written.values)
    columns = [*keys, "change", *(c for v in values for c in (f"{v}_before", v))]
    return whole(frame[columns].sort_values(keys).reset_index(drop=True))


def affected_days(transform_report: TransformReport | Mapping[str, Any]) -> pd.DataFrame:
    """The OrderKPIs of the days the run recomputed, one row per ``order_date``."""
    frame = pd.DataFrame(list(_transform(transform_report).order_kpis))
    if frame.empty:
        return whole(pd.DataFrame(columns=["order_date", "total_orders", "total_revenue"]))
    for column in frame.columns:
        if is_decimal(column):
            frame[column] = frame[column].astype(float)
        elif column != "order_date":
            frame[column] = frame[column].astype("int64")
    return whole(frame.sort_values("order_date").reset_index(drop=True))


def affected_days_chart(transform_report: TransformReport | Mapping[str, Any]) -> Figure:
    """Revenue (bars) and orders (line) of every recomputed day."""
    from matplotlib.figure import Figure

    days = affected_days(transform_report)
    figure = Figure(figsize=(10, 3.5), layout="constrained")
    revenue_axis = figure.add_subplot()
    if days.empty:
        revenue_axis.text(0.5, 0.5, "no day recomputed", ha="center", va="center")
        revenue_axis.set_axis_off()
        return figure
    dates = pd.to_datetime(days["order_date"])
    revenue_axis.bar(dates, days["total_revenue"], color="tab:blue", label="revenue")
    revenue_axis.set_ylabel("revenue")
    orders_axis = revenue_axis.twinx()
    orders_axis.plot(dates, days["total_orders"], color="tab:orange", marker="o", label="orders")
    orders_axis.set_ylabel("orders")
    revenue_axis.set_title(f"{len(days)} recomputed day(s): revenue and orders")
    figure.autofmt_xdate()
    return figure


def funnel_chart(stage_report: StageReport | Mapping[str, Any]) -> Figure:
    """Per file, the rows read, staged and kept (horizontal bars)."""
    from matplotlib.figure import Figure

    table = funnel(stage_report)
    figure = Figure(figsize=(10, 0.6 * max(len(table), 1) + 1.2), layout="constrained")
    axis = figure.add_subplot()
    if table.empty:
        axis.text(0.5, 0.5, "no file staged", ha="center", va="center")
        axis.set_axis_off()
        return figure
    positions = range(len(table))
    height = 0.25
    for offset, column, color in (
        (-height, "rows_read", "tab:gray"),
        (0, "rows_staged", "tab:blue"),
        (height, "rows_kept", "tab:green"),
    ):
        axis.barh([p + offset for p in positions], table[column], height=height, color=color, label=column)
    axis.set_yticks(list(positions), table["key"])
    axis.invert_yaxis()
    axis.set_xlabel("rows")
    axis.legend(loc="lower right")
    axis.set_title("data-quality funnel per file")
    return figure


def step_runs(
    step_records: Mapping[str, RunRecord | Mapping[str, Any]],
    pages: Mapping[str, Any] | None = None,
    *,
    bucket: str | None = None,
    root: str | Path | None = None,
) -> pd.DataFrame:
    """One row per step that ran: its notebook, status, exit code, seconds, error and rendered page.

    ``html`` names the page where a reader can open it: a downloaded page (``pages``) by its
    path relative to ``root`` (the notebook server's folder; default: the working folder)
    when it lies under it, else the archived page (``s3://{bucket}/runs/…`` with a bucket,
    else its key), never a temporary folder the lab's file browser cannot reach.
    """
    records = {step: RunRecord.of(record) for step, record in step_records.items()}
    rows = [
        {
            "step": step,
            "notebook": record.notebook,
            "status": record.status,
            "exit_code": record.exit_code,
            "seconds": record.seconds.get("execute"),
            "error": record.error or "",
            "html": _page(record, (pages or {}).get(step), bucket, Path(root or Path.cwd())),
        }
        for step, record in records.items()
    ]
    return whole(pd.DataFrame(rows, columns=["step", "notebook", "status", "exit_code", "seconds", "error", "html"]))


def _page(record: RunRecord, downloaded: Any, bucket: str | None, root: Path) -> str:
    """Where the step's rendered page can be opened (see ``step_runs``)."""
    if downloaded is not None:
        path = Path(downloaded).resolve()
        if path.is_relative_to(root.resolve()):
            return str(path.relative_to(root.resolve()))
    key = record.keys.get("html", "")
    return f"s3://{bucket}/{key}" if bucket and key else key
