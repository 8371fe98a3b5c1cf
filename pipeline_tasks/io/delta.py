"""Delta Lake I/O with delta-rs: create, merge (upsert) and read change feeds.

Why delta-rs for staging: a MERGE is a small, key-local write that needs no JVM;
delta-rs merges 50k rows into a 5M-row table in well under the 3 s budget, keeps
the staging task image small, and records Delta's Change Data Feed, which the
Spark transform reads to find what changed. Spark reads these tables through
the Delta log (never as bare Parquet, which would return rows a merge removed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pa_fs
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError
from deltalake.fs import DeltaStorageHandler
from deltalake.schema import Field, PrimitiveType

from pipeline_tasks.contract import EVENT_TIME_COLUMN, LINEAGE_COLUMNS, Dataset
from pipeline_tasks.errors import StepFailed
from pipeline_tasks.schemas import QUARANTINE_SCHEMA, staged_schema
from pipeline_tasks.settings import Settings

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


#: Data files a scan reads at once.
SCAN_THREADS = 8

#: ``file_pruning_predicate`` of delta-rs: a SQL string or (column, op, value) tuples.
Pruning = str | list[Any] | None


def scan(
    table: DeltaTable,
    columns: list[str],
    row_filter: pc.Expression | None = None,
    *,
    pruning: Pruning = None,
    holding: tuple[str, pa.Array] | None = None,
) -> Iterator[tuple[str, pa.Table]]:
    """The matching rows of each live data file, one file at a time: ``(file URI, rows)``.

    Args:
        table: The table, at the version it is loaded at.
        columns: Columns to read (partition columns included).
        row_filter: Rows to keep, on data columns (also prunes row groups by their statistics).
        pruning: Files to consider, by partition values or the Delta log's min/max
            statistics (see ``DeltaTable.file_uris``).
        holding: ``(column, wanted)``: skip the files whose min/max statistics of that
            integer column leave out every wanted value (see ``may_hold``).

    The fragments are built here, not by ``DeltaTable.to_pyarrow_dataset``, which
    also turns every file's statistics into an Arrow expression (0.1 s for 50
    files, more than reading one column of 5M rows). One read per file rather than
    one threaded dataset scan: the dataset scanner's read-ahead threads can outlive
    it and abort the interpreter at exit (apache/arrow#45214; seen here with
    delta-rs 1.6.6). The files are read by a few threads at once (Arrow releases
    the GIL), which hides object-store latency; every read has finished when the
    scan ends.
    """
    uris = table.file_uris(file_pruning_predicate=pruning)
    if not uris:
        return
    table_schema = pa.schema(table.schema().to_arrow())
    schema = pa.schema([table_schema.field(c) for c in columns])
    partitions = [c for c in columns if c in table.metadata().partition_columns]
    in_file = [c for c in columns if c not in partitions]
    actions = pa.table(table.get_add_actions(flatten=True))
    # The log holds each path URL-encoded ("Personal%2520Care" for the folder "Personal%20Care").
    paths = [unquote(path) for path in actions.column("path").to_pylist()]
    row_of = {path: row for row, path in enumerate(paths)}
    values = {c: actions.column(f"partition.{c}").to_pylist() for c in partitions}
    rows = [row_of[_relative(uri, table)] for uri in uris]
    if holding is not None:
        kept = may_hold(actions, *holding)
        uris, rows = [u for u, r in zip(uris, rows, strict=True) if kept[r]], [r for r in rows if kept[r]]
        if not uris:
            return
    filesystem = _filesystem(table, dict(zip(paths, actions.column("size_bytes").to_pylist(), strict=True)))
    fragments = [_PARQUET.make_fragment(paths[row], filesystem=filesystem) for row in rows]
    with ThreadPoolExecutor(max_workers=min(SCAN_THREADS, len(fragments)), thread_name_prefix="delta-scan") as pool:
        tables = list(pool.map(lambda fragment: _read_fragment(fragment, in_file, row_filter, schema), fragments))
    for uri, row, data in zip(uris, rows, tables, strict=True):
        # A file's partition values are in the Delta log, not in the file.
        for column in partitions:
            value = pa.scalar(values[column][row], schema.field(column).type)
            data = data.append_column(column, pa.repeat(value, data.num_rows))
        # Files written by different writers may differ in physical types (string views).
        yield uri, data.select(columns).cast(schema)


def _read_fragment(
    fragment: pads.Fragment, columns: list[str], row_filter: pc.Expression | None, schema: pa.Schema
) -> pa.Table:
    """The columns of one data file; a column added to the table after the file was written is null."""
    try:
        return fragment.to_table(columns=columns, filter=row_filter)
    except pa.ArrowInvalid:
        written = set(fragment.physical_schema.names)
        if all(c in written for c in columns):
            raise
    data = fragment.to_table(columns=[c for c in columns if c in written], filter=row_filter)
    for column in columns:
        if column not in written:
            data = data.append_column(schema.field(column), pa.nulls(data.num_rows, schema.field(column).type))
    return data.select(columns)


_PARQUET = pads.ParquetFileFormat(default_fragment_scan_options=pads.ParquetFragmentScanOptions(pre_buffer=True))


def _filesystem(table: DeltaTable, sizes: Mapping[str, int]) -> pa_fs.FileSystem:
    """The table's object store as an Arrow file system rooted at the table (as delta-rs builds it).

    ``sizes`` (path -> bytes, from the log) spares a metadata request per file. The
    table's handle and storage options are private attributes of delta-rs (pinned
    at 1.6.6); the scans of the tests run against a local and an S3 lake.
    """
    handler = DeltaStorageHandler.from_table(table._table, table._storage_options, dict(sizes))
    return pa_fs.PyFileSystem(handler)


def read_rows(
    table: DeltaTable,
    columns: list[str],
    row_filter: pc.Expression | None = None,
    *,
    pruning: Pruning = None,
    holding: tuple[str, pa.Array] | None = None,
) -> pa.Table:
    """The matching rows of the table as one Arrow table (see ``scan``)."""
    parts = [rows for _, rows in scan(table, columns, row_filter, pruning=pruning, holding=holding)]
    if not parts:
        schema = pa.schema(table.schema().to_arrow())
        return pa.table({c: pa.array([], schema.field(c).type) for c in columns})
    return pa.concat_tables(parts)


def rows_where_in(
    table: DeltaTable, columns: list[str], column: str, values: Iterable[Any], *, pruning: Pruning = None
) -> pa.Table:
    """The rows whose ``column`` is one of ``values`` (``columns`` of them).

    One hash lookup over the read column rather than an ``isin`` row filter, which
    rebuilds its value set for every record batch (seconds over millions of rows).
    Only the files whose statistics may hold a wanted value are read: new keys above
    every key of the table need no read at all.
    """
    wanted = pa.array(sorted(set(values)))
    rows = read_rows(table, list(dict.fromkeys([*columns, column])), pruning=pruning, holding=(column, wanted))
    return rows.filter(is_in(rows.column(column).combine_chunks(), wanted)).select(columns)


def files_holding(table: DeltaTable, column: str, values: Iterable[Any]) -> list[str]:
    """URIs of the live data files holding a row whose ``column`` is one of ``values``.

    Files whose min/max statistics exclude every value are skipped unread; the
    others are checked by reading that one column.
    """
    wanted = pa.array(sorted(set(values)))
    files, columns = [], []
    for uri, rows in scan(table, [column], holding=(column, wanted)):
        files.append(uri)
        columns.append(rows.column(column))
    if not files:
        return []
    found = is_in(pa.concat_arrays([c.combine_chunks() for c in columns]), wanted)
    return [uri for uri, hit in zip(files, _any_per_part(found, [len(c) for c in columns]), strict=True) if hit]


def may_hold(actions: pa.Table, column: str, wanted: pa.Array) -> np.ndarray:
    """For each add action, whether its file's min/max statistics of ``column`` admit a wanted value.

    Only integer columns are judged; a file without statistics may hold anything,
    and a null wanted value matches nothing. The cost is a sort of the wanted keys
    and two binary searches per file, instead of a read of every file's column.
    """
    bounds = [f"min.{column}", f"max.{column}"]
    everything = np.ones(actions.num_rows, dtype=bool)
    if wanted.null_count == len(wanted):
        return ~everything
    if not pa.types.is_integer(wanted.type) or not set(bounds) <= set(actions.column_names):
        return everything
    low, high = (actions.column(name) for name in bounds)
    if not (pa.types.is_integer(low.type) and pa.types.is_integer(high.type)):
        return everything
    keys = np.sort(wanted.drop_null().to_numpy().astype(np.int64))
    known = pc.and_(pc.is_valid(low), pc.is_valid(high)).to_numpy(zero_copy_only=False)
    lows, highs = (pc.fill_null(bound, 0).to_numpy(zero_copy_only=False).astype(np.int64) for bound in (low, high))
    inside = np.searchsorted(keys, highs, side="right") > np.searchsorted(keys, lows, side="left")
    return np.where(known, inside, everything)


#: Widest range of wanted integers (max - min + 1) that ``is_in`` tests with a bitmap (a byte each).
BITMAP_RANGE = 1 << 27


def is_in(values: pa.Array, wanted: pa.Array) -> pa.BooleanArray:
    """Whether each of ``values`` is one of ``wanted`` (a null never is).

    Integer keys within ``BITMAP_RANGE`` are looked up in a bitmap: 5M order ids
    against 120k wanted ones take 0.07 s, against 0.3 s for ``pc.is_in``, which
    hashes every value. Pass one flat array: ``pc.is_in`` over a chunked array
    would rebuild its value set for every chunk.
    """
    keys = wanted.drop_null()
    if len(keys) == 0 or len(values) == 0:
        return pa.array(np.zeros(len(values), dtype=bool))
    if pa.types.is_integer(values.type) and pa.types.is_integer(keys.type):
        numbers = keys.to_numpy().astype(np.int64)
        low, high = int(numbers.min()), int(numbers.max())
        if high - low < BITMAP_RANGE:
            return _in_bitmap(values, numbers, low, high)
    return pc.fill_null(pc.is_in(values, value_set=keys), False)


def _in_bitmap(values: pa.Array, keys: np.ndarray, low: int, high: int) -> pa.BooleanArray:
    """``is_in`` for integer ``values`` against ``keys``, all of them within ``[low, high]``."""
    span = high - low
    bitmap = np.zeros(span + 1, dtype=bool)
    bitmap[keys - low] = True
    # Offsets from ``low``, as unsigned: a value below ``low`` wraps around above ``span``.
    offsets = (pc.fill_null(values, low).to_numpy().astype(np.int64, copy=False) - low).view(np.uint64)
    inside = offsets <= span
    np.minimum(offsets, span, out=offsets)
    found = bitmap[offsets]
    found &= inside
    if values.null_count:
        found &= values.is_valid().to_numpy(zero_copy_only=False)
    return pa.array(found)


def _any_per_part(mask: pa.Array, lengths: list[int]) -> list[bool]:
    """Whether ``mask`` is true anywhere within each consecutive part of the given lengths."""
    flags = mask.to_numpy(zero_copy_only=False)
    sizes = np.array(lengths, dtype=np.int64)
    starts = np.cumsum(sizes) - sizes
    found = np.zeros(len(lengths), dtype=bool)
    filled = sizes > 0
    if filled.any():
        # Each non-empty part runs from its start to the next non-empty part's start.
        found[filled] = np.logical_or.reduceat(flags, starts[filled])
    return found.tolist()


def _relative(uri: str, table: DeltaTable) -> str:
    """A data file's path below the table root."""
    root = table.table_uri.removeprefix("file://").rstrip("/") + "/"
    if not uri.startswith(root):
        raise ValueError(f"data file {uri} is not below the table root {root}")
    return uri[len(root) :]


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
