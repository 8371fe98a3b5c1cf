"""The record of the KPI items the pipeline has published to DynamoDB.

One Parquet object in the bucket's state prefix holds, for each KPI table, the
key and KPI attributes of every item that the last successful transform left
in the table. An incremental transform diffs its new KPIs against this record
instead of reading DynamoDB back (reads cost time and capacity; on moto about
a millisecond per item). The checkpoint says whether the record can be
trusted, day by day: before a transform writes to DynamoDB, it lists its days
as *dirty* in the checkpoint; only after every write and the new record has it
cleared them. The days of a run that failed in between are read from DynamoDB
again by the next one.

The record assumes the pipeline alone writes the KPI tables. After a table was
edited or replaced by hand, a full recompute (which scans DynamoDB) repairs it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline_tasks.io.dynamodb import Key, TableSpec

#: The key attribute both KPI tables share: the record is read and replaced by day.
DAY = "order_date"
#: The column naming the table a row of the record belongs to.
TABLE = "table"


def schema(specs: Sequence[TableSpec]) -> pa.Schema:
    """``table``, then every key and KPI attribute of ``specs``, all strings (values exactly as written)."""
    names = dict.fromkeys(name for spec in specs for name in spec.diffed)
    return pa.schema([pa.field(TABLE, pa.string(), nullable=False)] + [pa.field(n, pa.string()) for n in names])


def empty(specs: Sequence[TableSpec]) -> pa.Table:
    return schema(specs).empty_table()


def read(s3: Any, bucket: str, key: str, specs: Sequence[TableSpec]) -> pa.Table:
    """The record stored at ``key``, or an error when it is missing or holds other attributes."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    record = pq.read_table(io.BytesIO(body))
    if not record.schema.equals(schema(specs)):
        raise ValueError(f"s3://{bucket}/{key} does not hold the attributes of {[s.name for s in specs]}")
    return record


def write(s3: Any, bucket: str, key: str, record: pa.Table) -> None:
    sink = io.BytesIO()
    pq.write_table(record, sink, compression="zstd")
    s3.put_object(Bucket=bucket, Key=key, Body=sink.getvalue())


def items_on(record: pa.Table, spec: TableSpec, days: Iterable[str]) -> dict[Key, dict[str, Any]]:
    """The recorded items of ``spec``'s table on ``days``, by key, with the attributes a diff reads."""
    rows = record.filter(_of(record, spec, days)).select(list(spec.diffed)).to_pylist()
    return {spec.key_of(row): row for row in rows}


def replaced(
    record: pa.Table,
    published: Mapping[TableSpec, Mapping[Key, Mapping[str, Any]]],
    days: Iterable[str] | None,
) -> pa.Table:
    """The record once every table of ``published`` holds exactly those items on ``days`` (all days when None)."""
    kept = record
    for spec in published:
        if days is None:
            kept = kept.filter(pc.not_equal(kept[TABLE], spec.name))
        else:
            kept = kept.filter(pc.invert(_of(kept, spec, days)))
    target = record.schema
    rows = [
        {TABLE: spec.name, **{name: None if item[name] is None else str(item[name]) for name in spec.diffed}}
        for spec, items in published.items()
        for item in items.values()
    ]
    return pa.concat_tables([kept, pa.Table.from_pylist(rows, schema=target)])


def _of(record: pa.Table, spec: TableSpec, days: Iterable[str]) -> pa.ChunkedArray:
    on_days = pc.is_in(record[DAY], pa.array(sorted(set(days)), pa.string()))
    return pc.and_(pc.equal(record[TABLE], spec.name), pc.fill_null(on_days, False))
