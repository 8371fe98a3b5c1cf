"""Delta tables with delta-rs: create, merge (upsert), quarantine records, change feeds, commit history.

Why delta-rs for staging: a MERGE is a small, key-local write that needs no JVM,
so the staging task image stays small, and delta-rs records Delta's Change Data
Feed, which the Spark transform reads to find what changed. Spark reads these
tables through the Delta log (never as bare Parquet, which would return rows a
merge removed). Reads of the tables' data files are in ``pipeline_tasks.io.delta_scan``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError
from deltalake.schema import Field, PrimitiveType

from pipeline_tasks.contract import EVENT_TIME_COLUMN, LINEAGE_COLUMNS, Dataset
from pipeline_tasks.errors import StepFailed
from pipeline_tasks.io.delta_scan import read_rows, rows_where_in
from pipeline_tasks.schemas import QUARANTINE_SCHEMA, staged_schema
from pipeline_tasks.settings import Settings

# Callers not yet moved to io.delta_scan and key_lookup reach ``scan``, ``read_rows``,
# ``rows_where_in``, ``files_holding``, ``is_in`` and ``may_hold`` through this module.

CDF_CONFIGURATION = {"delta.enableChangeDataFeed": "true"}


def storage_options(settings: Settings) -> dict[str, str]:
    """delta-rs object-store options for the lake (empty for a local path)."""
    if not settings.lake.startswith("s3://"):
        return {}
    options = {"AWS_REGION": settings.region}
    if settings.aws_endpoint_url:
        options |= {
            "AWS_ENDPOINT_URL": settings.aws_endpoint_url,
            "AWS_ALLOW_HTTP": "true",
            "AWS_S3_ADDRESSING_STYLE": "path",
            # moto enforces If-None-Match, so Delta commits can rely on it.
            "conditional_put": "etag",
        }
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        options |= {
            "AWS_ACCESS_KEY_ID": settings.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key,
        }
        if settings.aws_session_token:
            options["AWS_SESSION_TOKEN"] = settings.aws_session_token
    return options


def open_table(uri: str, options: Mapping[str, str]) -> DeltaTable | None:
    try:
        return DeltaTable(uri, storage_options=dict(options))
    except TableNotFoundError:
        return None


def ensure_table(uri: str, dataset: Dataset, options: Mapping[str, str]) -> DeltaTable:
    """Open the staged table, creating it empty (version 0, change feed on) when missing.

    Raises:
        StepFailed: The table lacks a column of the staged schema (it was staged by an
            older version of the pipeline, which did not derive it).
    """
    table = open_table(uri, options)
    if table is not None:
        present = set(table.schema().to_arrow().names)
        if EVENT_TIME_COLUMN not in present:
            # Rows staged before event times were kept have none: any newer row replaces them.
            table.alter.add_columns(Field(EVENT_TIME_COLUMN, PrimitiveType("timestamp"), nullable=True))
            present.add(EVENT_TIME_COLUMN)
        missing = [name for name in staged_schema(dataset).names if name not in present]
        if missing:
            raise StepFailed(
                f"staged table {uri} lacks the column(s) {', '.join(missing)}: an older version of the "
                "pipeline staged it; stage its input files again into a new lake (another PIPELINE_LAKE_ROOT)"
            )
        return table
    return DeltaTable.create(
        uri,
        schema=staged_schema(dataset),
        partition_by=list(dataset.partition_by),
        configuration=CDF_CONFIGURATION,
        storage_options=dict(options),
        mode="ignore",
    )


@dataclass(frozen=True)
class MergeResult:
    """What one MERGE did to a staged table.

    ``older``: source rows not applied because the staged row of their key came from a
    newer file (by event time); they are also counted in ``unchanged``.
    """

    table: str
    version: int
    source_rows: int
    inserted: int
    updated: int
    unchanged: int
    partitions_touched: int
    older: int = 0


def merge_rows(table: DeltaTable, rows: pa.Table, dataset: Dataset) -> MergeResult:
    """Upsert deduplicated rows by primary key; unchanged rows are not rewritten.

    The keys are first looked up in the table (reading only the files whose
    statistics admit them). When none is there, the rows are appended: the commit
    a merge would make, without reading or rewriting a data file. Otherwise the
    predicate names the partitions where those keys live now, so the merge reads
    only those files, and an update that moves a row to another partition still
    matches its old row.

    Args:
        table: The staged Delta table.
        rows: One row per key (see ``dedupe_last_wins``), in the staged schema.
        dataset: The dataset of the table.
    """
    if rows.num_rows == 0:
        return MergeResult(dataset.name, table.version(), 0, 0, 0, 0, 0)
    found = _current_rows(table, rows, dataset)
    current = _partitions_of(found, dataset)
    written = _partitions_of(rows, dataset) | current
    if not current:
        write_deltalake(table, rows, mode="append", partition_by=list(dataset.partition_by))
        table.update_incremental()
        return MergeResult(dataset.name, table.version(), rows.num_rows, rows.num_rows, 0, 0, len(written))
    predicate = f"t.{dataset.key} = s.{dataset.key} AND ({_partition_predicate(current, dataset)})"
    compared = [c for c in rows.column_names if c not in LINEAGE_COLUMNS and c not in dataset.partition_by]
    changed = " OR ".join(f"(t.{c} IS DISTINCT FROM s.{c})" for c in compared)
    # SEQUENCE BY the file's event time: a row replaces only an older (or undated) one, and a
    # newer copy of an unchanged row still records its time, so that a rerun of an older batch
    # can never undo it. An undated source row (no event known) counts as the newest, but
    # rewrites nothing when its values are unchanged.
    source, target = f"s.{EVENT_TIME_COLUMN}", f"t.{EVENT_TIME_COLUMN}"
    newer = f"{source} > {target} OR ({target} IS NULL AND {source} IS NOT NULL)"
    update = f"({newer}) OR (({source} = {target} OR {source} IS NULL) AND ({changed}))"
    metrics = (
        table.merge(rows, predicate=predicate, source_alias="s", target_alias="t")
        .when_matched_update_all(predicate=update)
        .when_not_matched_insert_all()
        .execute()
    )
    inserted = int(metrics["num_target_rows_inserted"])
    updated = int(metrics["num_target_rows_updated"])
    return MergeResult(
        table=dataset.name,
        version=table.version(),
        source_rows=rows.num_rows,
        inserted=inserted,
        updated=updated,
        unchanged=rows.num_rows - inserted - updated,
        partitions_touched=len(written),
        older=_older_than_staged(rows, found, dataset),
    )


def _older_than_staged(rows: pa.Table, found: pa.Table, dataset: Dataset) -> int:
    """Source rows whose key's staged row has a later event time (the merge leaves those)."""
    staged = found.select([dataset.key, EVENT_TIME_COLUMN]).rename_columns([dataset.key, "staged"])
    paired = rows.select([dataset.key, EVENT_TIME_COLUMN]).join(staged, dataset.key)
    return int(
        pc.sum(pc.fill_null(pc.less(paired.column(EVENT_TIME_COLUMN), paired.column("staged")), False)).as_py() or 0
    )


#: Name of the quarantine table in the lake, beside the staged datasets.
QUARANTINE_TABLE = "quarantine"


def record_quarantine(uri: str, records: pa.Table, options: Mapping[str, str]) -> int:
    """Upsert quarantine records (``QUARANTINE_SCHEMA``) into their Delta table; return its version.

    A record is identified by its file (key and version), line and reason, so a rerun
    of a batch records each quarantined row once. The table is partitioned by dataset.
    """
    table = DeltaTable.create(
        uri,
        schema=QUARANTINE_SCHEMA,
        partition_by=["dataset"],
        storage_options=dict(options),
        mode="ignore",
    )
    if records.num_rows == 0:
        return table.version()
    same = " AND ".join(
        f"(t.{c} IS NOT DISTINCT FROM s.{c})" for c in ("dataset", "source_key", "source_version", "line", "reason")
    )
    table.merge(
        records, predicate=same, source_alias="s", target_alias="t"
    ).when_matched_update_all().when_not_matched_insert_all().execute()
    return table.version()


def read_quarantine(uri: str, options: Mapping[str, str], *, source_keys: Iterable[str] | None = None) -> pa.Table:
    """The quarantine records (of some files only, when ``source_keys`` is given); empty when none."""
    table = open_table(uri, options)
    if table is None:
        return QUARANTINE_SCHEMA.empty_table()
    records = read_rows(table, QUARANTINE_SCHEMA.names)
    if source_keys is not None:
        records = records.filter(
            pc.is_in(records.column("source_key"), value_set=pa.array(list(source_keys), pa.string()))
        )
    return records.sort_by([("source_key", "ascending"), ("line", "ascending")])


#: Commit metrics (delta-rs writes and merges) that count the rows a commit wrote.
_WRITTEN_ROWS_METRICS = (
    "num_added_rows",
    "num_target_rows_inserted",
    "num_target_rows_updated",
    "num_target_rows_deleted",
)


def rows_written_since(table: DeltaTable, version: int) -> int:
    """Rows the commits after ``version`` inserted, updated or deleted, from their operation metrics."""
    commits = table.version() - version
    if commits <= 0:
        return 0
    return sum(
        int((commit.get("operationMetrics") or {}).get(metric) or 0)
        for commit in table.history(commits)
        for metric in _WRITTEN_ROWS_METRICS
    )


def row_count(table: DeltaTable) -> int:
    """Rows of the live data files, from the Delta log's statistics (files without them count 0)."""
    counts = pa.table(table.get_add_actions(flatten=True)).column("num_records")
    return int(pc.sum(counts).as_py() or 0)


def read_changes(table: DeltaTable, after_version: int) -> pa.Table:
    """The change feed of every commit after ``after_version`` (empty when none)."""
    if table.version() <= after_version:
        return pa.table({})
    reader = table.load_cdf(starting_version=after_version + 1, ending_version=table.version())
    return pa.table(reader.read_all())


def _current_rows(table: DeltaTable, rows: pa.Table, dataset: Dataset) -> pa.Table:
    """Key, partition columns and event time of the target rows whose keys are in ``rows``."""
    columns = [dataset.key, *dataset.partition_by, EVENT_TIME_COLUMN]
    return rows_where_in(table, columns, dataset.key, rows.column(dataset.key).to_pylist())


Partition = tuple[Any, ...]


def _partitions_of(rows: pa.Table, dataset: Dataset) -> set[Partition]:
    if rows.num_rows == 0:
        return set()
    distinct = rows.select(list(dataset.partition_by)).group_by(list(dataset.partition_by)).aggregate([])
    return {tuple(row[c] for c in dataset.partition_by) for row in distinct.to_pylist()}


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def _equals(column: str, value: Any) -> str:
    return f"t.{column} IS NULL" if value is None else f"t.{column} = {_literal(value)}"


def _partition_predicate(partitions: Iterable[Partition], dataset: Dataset) -> str:
    """``(t.year = 2024 AND t.month = 3) OR …`` for the given partition values."""
    clauses = []
    for values in sorted(partitions, key=lambda p: tuple((v is None, str(v)) for v in p)):
        parts = [_equals(column, value) for column, value in zip(dataset.partition_by, values, strict=True)]
        clauses.append("(" + " AND ".join(parts) + ")")
    return " OR ".join(clauses)
