"""The JSON documents the steps leave in the bucket, as frozen dataclasses.

This module owns the shape of four documents (their keys: ``layout``):

- ``BatchValidation``: the validation result ``results/{execution_id}.json``
  (``steps.validate``), one ``ValidFile`` or ``RejectedFile`` per input file;
- ``StageReport``: ``reports/{execution_id}/stage.json`` (``steps.stage``), a
  ``FileFunnel`` per staged file and a ``MergeSummary`` per staged table;
- ``TransformReport``: ``reports/{execution_id}/transform.json``
  (``steps.transform``), a ``KpiTableWrites`` per KPI table;
- ``RunRecord``: ``runs/{execution_id}/{notebook}.json`` (``notebooks``).

The steps return these documents (``validate.run``, ``stage.run``, ``transform.run``)
and write their JSON. Each has ``to_json()``, the document as written, and
``from_json(document)``. Other components read the JSON (the state machine through
the Read-Validation-Result Lambda, reviewers' notebooks), so ``to_json`` gives
exactly the keys written before these classes existed. ``from_json`` reads a document as tolerantly as the readers
did before it: a key the document lacks (one written by an older version, or a
hand-built one) takes the default given below, and keys beyond these are ignored.
``of`` takes either a document or its JSON.

Only the standard library here: the Lambda functions import this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self


class Document:
    """What every document has: ``to_json``, ``from_json`` and ``of``."""

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        raise NotImplementedError

    @classmethod
    def of(cls, document: Self | Mapping[str, Any]) -> Self:
        """The document itself, or the document its JSON holds."""
        return cls.from_json(document) if isinstance(document, Mapping) else document


def _counts(document: Mapping[str, Any], name: str) -> dict[str, int]:
    return dict(document.get(name) or {})


# --- The validation result --------------------------------------------------------


@dataclass(frozen=True)
class ValidFile(Document):
    """A file the batch will stage: the version judged and its row-level data-quality count.

    Attributes:
        key: The object key under ``input/``.
        dataset: The dataset its name matched.
        rows_read: Data rows in the file (``validation.ValidationResult.rows_read``).
        rows_not_staged: Rows staging will drop, per reason (reasons with no row left out).
        version_id: The version judged; None for the current version of an unversioned bucket.
        event_time: When that version arrived (ISO 8601); None when unknown.
    """

    key: str
    dataset: str | None = None
    rows_read: int = 0
    rows_not_staged: dict[str, int] = field(default_factory=dict)
    version_id: str | None = None
    event_time: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "dataset": self.dataset,
            "rows_read": self.rows_read,
            "rows_not_staged": dict(self.rows_not_staged),
            "version_id": self.version_id,
            "event_time": self.event_time,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        """Only ``key`` is required: ``steps.files`` plans moves of entries holding no more."""
        return cls(
            key=str(document["key"]),
            dataset=document.get("dataset"),
            rows_read=int(document.get("rows_read") or 0),
            rows_not_staged=_counts(document, "rows_not_staged"),
            version_id=document.get("version_id"),
            event_time=document.get("event_time"),
        )


@dataclass(frozen=True)
class RejectedFile(Document):
    """A file the batch rejects, with why (it moves to ``rejected/``).

    Attributes:
        key: The object key under ``input/``.
        dataset: The dataset its name matched; None for an unknown dataset.
        reason: Why it is invalid.
        version_id: The version judged (see ``ValidFile``).
        event_time: When that version arrived (see ``ValidFile``).
    """

    key: str
    dataset: str | None = None
    reason: str | None = None
    version_id: str | None = None
    event_time: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "dataset": self.dataset,
            "reason": self.reason,
            "version_id": self.version_id,
            "event_time": self.event_time,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        """Only ``key`` is required (see ``ValidFile.from_json``)."""
        return cls(
            key=str(document["key"]),
            dataset=document.get("dataset"),
            reason=document.get("reason"),
            version_id=document.get("version_id"),
            event_time=document.get("event_time"),
        )


@dataclass(frozen=True)
class BatchValidation(Document):
    """The validation result of a batch: ``results/{execution_id}.json``.

    Attributes:
        execution_id: The execution that validated the batch.
        keys: Every file's key, in arrival order.
        validated_at: When (ISO 8601, seconds).
        valid_files: The files to stage, in arrival order.
        invalid_files: The files to reject, in arrival order.
    """

    execution_id: str = ""
    keys: tuple[str, ...] = ()
    validated_at: str = ""
    valid_files: tuple[ValidFile, ...] = ()
    invalid_files: tuple[RejectedFile, ...] = ()

    @property
    def has_valid_files(self) -> bool:
        """Whether anything is left to stage (the state machine's choice after validation)."""
        return bool(self.valid_files)

    def to_json(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "keys": list(self.keys),
            "validated_at": self.validated_at,
            "valid_files": [f.to_json() for f in self.valid_files],
            "invalid_files": [f.to_json() for f in self.invalid_files],
            "has_valid_files": self.has_valid_files,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        return cls(
            execution_id=str(document.get("execution_id") or ""),
            keys=tuple(document.get("keys") or ()),
            validated_at=str(document.get("validated_at") or ""),
            valid_files=tuple(ValidFile.from_json(f) for f in document.get("valid_files") or ()),
            invalid_files=tuple(RejectedFile.from_json(f) for f in document.get("invalid_files") or ()),
        )


# --- The stage report -------------------------------------------------------------


@dataclass(frozen=True)
class FileFunnel(Document):
    """The data-quality funnel of one staged file: read → staged → kept.

    Attributes:
        key: The object key.
        dataset: Its dataset.
        rows_read: Data rows read.
        rows_not_staged: Rows not staged, per reason (zeros left out).
        rows_quarantined: Rows written to the quarantine table.
        rows_staged: Rows merged into the staged table.
        rows_excluded_by_cleaning: Staged rows the transform's cleaning will drop, per
            rule of docs/contract.md §4 (zeros left out).
        rows_kept: Staged rows the KPIs count (``rows_staged`` in a report without it).
    """

    key: str
    dataset: str
    rows_read: int
    rows_not_staged: dict[str, int]
    rows_staged: int
    rows_quarantined: int = 0
    rows_excluded_by_cleaning: dict[str, int] = field(default_factory=dict)
    rows_kept: int | None = None

    @property
    def kept(self) -> int:
        """Rows kept for the KPIs."""
        return self.rows_staged if self.rows_kept is None else self.rows_kept

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "dataset": self.dataset,
            "rows_read": self.rows_read,
            "rows_not_staged": dict(self.rows_not_staged),
            "rows_quarantined": self.rows_quarantined,
            "rows_staged": self.rows_staged,
            "rows_excluded_by_cleaning": dict(self.rows_excluded_by_cleaning),
            "rows_kept": self.kept,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        return cls(
            key=str(document["key"]),
            dataset=str(document["dataset"]),
            rows_read=int(document["rows_read"]),
            rows_not_staged=dict(document["rows_not_staged"]),
            rows_staged=int(document["rows_staged"]),
            rows_quarantined=int(document.get("rows_quarantined", 0)),
            rows_excluded_by_cleaning=_counts(document, "rows_excluded_by_cleaning"),
            rows_kept=document.get("rows_kept"),
        )


#: The counts of a ``MergeSummary``, in the order the report writes them (after ``table``, ``version``).
MERGE_COUNTS = (
    "source_rows",
    "inserted",
    "updated",
    "unchanged",
    "partitions_touched",
    "older",
    "rows_superseded_in_batch",
    "chunks",
)


@dataclass(frozen=True)
class MergeSummary(Document):
    """What the MERGEs of one dataset did (``steps.stage.stage_dataset``); None: not in the report.

    Attributes:
        table: The staged table's URI.
        version: Its Delta version after the last chunk.
        source_rows, inserted, updated, unchanged, partitions_touched, older: The
            chunks' ``io.delta.MergeResult`` counts, summed.
        rows_superseded_in_batch: Rows deduplicated away within the chunks.
        chunks: How many merges ran.
        seconds: How long the dataset took.
    """

    table: str | None = None
    version: int | None = None
    source_rows: int | None = None
    inserted: int | None = None
    updated: int | None = None
    unchanged: int | None = None
    partitions_touched: int | None = None
    older: int | None = None
    rows_superseded_in_batch: int | None = None
    chunks: int | None = None
    seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        counts = {name: getattr(self, name) for name in MERGE_COUNTS}
        return {"table": self.table, "version": self.version} | counts | {"seconds": self.seconds}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        names = ("table", "version", *MERGE_COUNTS, "seconds")
        return cls(**{name: document.get(name) for name in names})


@dataclass(frozen=True)
class QuarantineWrite(Document):
    """Where a staging run wrote its quarantine records, and how many."""

    table: str
    rows: int

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "rows": self.rows}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        return cls(table=str(document["table"]), rows=int(document["rows"]))


@dataclass(frozen=True)
class StageReport(Document):
    """The stage report: ``reports/{execution_id}/stage.json``.

    Attributes:
        execution_id: The execution that staged the batch.
        files: Each staged file's funnel, in arrival order.
        tables: What the merges did, by dataset name.
        quarantine: The quarantine table written (None in a report of a version before it).
    """

    execution_id: str = ""
    files: tuple[FileFunnel, ...] = ()
    tables: dict[str, MergeSummary] = field(default_factory=dict)
    quarantine: QuarantineWrite | None = None

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "execution_id": self.execution_id,
            "files": [f.to_json() for f in self.files],
            "tables": {name: merge.to_json() for name, merge in self.tables.items()},
        }
        if self.quarantine is not None:
            document["quarantine"] = self.quarantine.to_json()
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        quarantine = document.get("quarantine")
        return cls(
            execution_id=str(document.get("execution_id") or ""),
            files=tuple(FileFunnel.from_json(f) for f in document.get("files") or ()),
            tables={name: MergeSummary.from_json(m) for name, m in (document.get("tables") or {}).items()},
            quarantine=None if quarantine is None else QuarantineWrite.from_json(quarantine),
        )


# --- The transform report ---------------------------------------------------------


@dataclass(frozen=True)
class KpiTableWrites(Document):
    """What a transform wrote to one KPI table.

    Attributes:
        key: The table's key attributes.
        values: Its KPI attributes.
        put: Items put (new or changed).
        new: Items put that the table did not hold.
        deleted: Items deleted.
        unchanged: Items left as they were.
        changes: The first item changes (``io.dynamodb.describe_changes``): the counts
            are complete, the list may not be.
    """

    put: int
    deleted: int
    unchanged: int
    new: int = 0
    key: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    changes: tuple[dict[str, str], ...] = ()

    @property
    def changed(self) -> int:
        """Items put that the table held with other values."""
        return self.put - self.new

    def to_json(self) -> dict[str, Any]:
        return {
            "key": list(self.key),
            "values": list(self.values),
            "put": self.put,
            "new": self.new,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "changes": [dict(change) for change in self.changes],
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        return cls(
            put=int(document["put"]),
            deleted=int(document["deleted"]),
            unchanged=int(document["unchanged"]),
            new=int(document.get("new", 0)),
            key=tuple(document.get("key") or ()),
            values=tuple(document.get("values") or ()),
            changes=tuple(dict(change) for change in document.get("changes") or ()),
        )


@dataclass(frozen=True)
class TransformReport(Document):
    """The transform report: ``reports/{execution_id}/transform.json``.

    Attributes:
        execution_id: The execution that ran the transform.
        mode: ``full`` or ``incremental``.
        versions: The staged tables' Delta versions the KPIs are computed from.
        previous_versions: The checkpoint's versions before the run (None: a full run).
        affected_dates: The days recomputed (ISO dates); None when every day was.
        spark_requested: Whether a Spark session was asked for.
        money_sums: How Spark summed money (``int64 parts`` or ``decimal``).
        read_back_days: Days whose items were read back from DynamoDB, or ``all`` (a scan).
        table_checks: Each KPI table's check against the published record
            (``io.published.TableCheck.to_json``), kept as JSON: this module imports no
            data library.
        blocked_days: Days whose KPIs could not be computed, with the error.
        tables: What was written, by KPI table name.
        order_kpis: The OrderKPIs items of the recomputed days, values as JSON.
        plan: What the run decided before computing, as JSON
            (``steps.transform.plan.TransformPlan.to_json``); None, and not written, in
            a report of a version before it.
        seconds: How long the transform took.
        seconds_by_phase: How long each phase took.
    """

    execution_id: str = ""
    mode: str = ""
    versions: dict[str, int] = field(default_factory=dict)
    previous_versions: dict[str, int] | None = None
    affected_dates: tuple[str, ...] | None = None
    spark_requested: bool = False
    money_sums: str = ""
    read_back_days: tuple[str, ...] | str = ()
    table_checks: tuple[dict[str, Any], ...] = ()
    blocked_days: dict[str, str] = field(default_factory=dict)
    tables: dict[str, KpiTableWrites] = field(default_factory=dict)
    order_kpis: tuple[dict[str, Any], ...] = ()
    plan: dict[str, Any] | None = None
    seconds: float = 0.0
    seconds_by_phase: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        days = self.read_back_days
        plan = {} if self.plan is None else {"plan": dict(self.plan)}
        return {
            "execution_id": self.execution_id,
            "mode": self.mode,
            "versions": dict(self.versions),
            "previous_versions": None if self.previous_versions is None else dict(self.previous_versions),
            "affected_dates": None if self.affected_dates is None else list(self.affected_dates),
            "spark_requested": self.spark_requested,
            "money_sums": self.money_sums,
            "read_back_days": days if isinstance(days, str) else list(days),
            "table_checks": [dict(check) for check in self.table_checks],
            "blocked_days": dict(self.blocked_days),
            "tables": {name: writes.to_json() for name, writes in self.tables.items()},
            "order_kpis": [dict(item) for item in self.order_kpis],
            **plan,
            "seconds": self.seconds,
            "seconds_by_phase": dict(self.seconds_by_phase),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        dates, days = document.get("affected_dates"), document.get("read_back_days")
        previous = document.get("previous_versions")
        return cls(
            execution_id=str(document.get("execution_id") or ""),
            mode=str(document.get("mode") or ""),
            versions=dict(document.get("versions") or {}),
            previous_versions=None if previous is None else dict(previous),
            affected_dates=None if dates is None else tuple(dates),
            spark_requested=bool(document.get("spark_requested", False)),
            money_sums=str(document.get("money_sums") or ""),
            read_back_days=days if isinstance(days, str) else tuple(days or ()),
            table_checks=tuple(dict(check) for check in document.get("table_checks") or ()),
            blocked_days=dict(document.get("blocked_days") or {}),
            tables={name: KpiTableWrites.from_json(t) for name, t in (document.get("tables") or {}).items()},
            order_kpis=tuple(dict(item) for item in document.get("order_kpis") or ()),
            plan=None if document.get("plan") is None else dict(document["plan"]),
            seconds=float(document.get("seconds") or 0.0),
            seconds_by_phase=dict(document.get("seconds_by_phase") or {}),
        )


# --- The run record ---------------------------------------------------------------


@dataclass(frozen=True)
class RunRecord(Document):
    """How one step's notebook run ended: ``runs/{execution_id}/{notebook}.json``.

    Attributes:
        execution_id: The execution.
        step: ``validate``, ``stage`` or ``transform``.
        notebook: The notebook's name (``10_validate``).
        status: ``SUCCEEDED`` or ``FAILED``.
        started_at: When the run started (ISO 8601, seconds).
        parameters: The notebook's parameters, the injected ones included.
        exit_code: 0, or the failure kind's exit code (``errors``).
        error: The failure, when it failed.
        keys: S3 keys of the archived ``ipynb``, ``html`` and the ``record`` itself.
        local_path: Local path of the executed notebook, when one was kept.
        seconds: Wall-clock seconds of each part (``execute``, ``render``, ``archive``).
    """

    execution_id: str
    step: str
    status: str
    started_at: str
    notebook: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    exit_code: int = 0
    error: str | None = None
    keys: dict[str, str] = field(default_factory=dict)
    local_path: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "step": self.step,
            "notebook": self.notebook,
            "status": self.status,
            "started_at": self.started_at,
            "parameters": dict(self.parameters),
            "exit_code": self.exit_code,
            "error": self.error,
            "keys": dict(self.keys),
            "local_path": self.local_path,
            "seconds": dict(self.seconds),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        return cls(
            execution_id=str(document.get("execution_id") or ""),
            step=str(document["step"]),
            status=str(document["status"]),
            started_at=str(document["started_at"]),
            notebook=str(document.get("notebook") or ""),
            parameters=dict(document.get("parameters") or {}),
            exit_code=int(document.get("exit_code", 0)),
            error=document.get("error"),
            keys=dict(document.get("keys") or {}),
            local_path=document.get("local_path"),
            seconds=dict(document.get("seconds") or {}),
        )
