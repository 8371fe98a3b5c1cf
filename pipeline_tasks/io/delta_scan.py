"""Reads of a Delta table's live data files with Arrow, file by file, pruned by the Delta log.

delta-rs gives the live files, their partition values and min/max statistics;
Arrow reads the files. ``scan`` yields each file's matching rows, ``read_rows``
gathers them, and ``rows_where_in`` and ``files_holding`` find the rows and the
files that hold some keys (see ``pipeline_tasks.key_lookup``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pa_fs
from deltalake import DeltaTable
from deltalake.fs import DeltaStorageHandler

from pipeline_tasks.key_lookup import is_in, may_hold, parts_holding

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
    also turns every file's statistics into an Arrow expression, work that grows
    with the files and is not needed to read them. One read per file rather than
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

    One lookup over the read column (``key_lookup.is_in``) rather than an ``isin``
    row filter, which rebuilds its value set for every record batch.
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
    files, parts = [], []
    for uri, rows in scan(table, [column], holding=(column, wanted)):
        files.append(uri)
        parts.append(rows.column(column).combine_chunks())
    return [uri for uri, hit in zip(files, parts_holding(parts, wanted), strict=True) if hit]


def _relative(uri: str, table: DeltaTable) -> str:
    """A data file's path below the table root."""
    root = table.table_uri.removeprefix("file://").rstrip("/") + "/"
    if not uri.startswith(root):
        raise ValueError(f"data file {uri} is not below the table root {root}")
    return uri[len(root) :]
