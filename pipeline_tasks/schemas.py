"""The Arrow schemas of what the pipeline stores, from the contract: the staged tables and the quarantine.

Shared by the staging transforms (which build the rows) and the Delta I/O (which writes and
reads them); nothing here does I/O.
"""

from __future__ import annotations

import pyarrow as pa

from pipeline_tasks.contract import (
    EVENT_TIME_COLUMN,
    EXECUTION_ID_COLUMN,
    MONEY_PRECISION,
    MONEY_SCALE,
    SALE_PRICE_PARTS,
    SOURCE_KEY_COLUMN,
    ColumnType,
    Dataset,
)

MONEY = pa.decimal128(MONEY_PRECISION, MONEY_SCALE)
TIMESTAMP = pa.timestamp("us", tz="UTC")


def staged_schema(dataset: Dataset) -> pa.Schema:
    """Arrow schema of a staged Delta table: contract columns, partitions, lineage."""
    arrow_type = {
        ColumnType.STRING: pa.string(),
        ColumnType.INT64: pa.int64(),
        ColumnType.DECIMAL: MONEY,
        ColumnType.TIMESTAMP: TIMESTAMP,
    }
    fields = [pa.field(name, arrow_type[kind]) for name, kind in dataset.columns]
    if "sale_price" in dataset.required_columns:
        fields += [pa.field(name, pa.int64()) for name in SALE_PRICE_PARTS]
    fields += [pa.field(p, pa.int32()) for p in dataset.partition_by if p in ("year", "month")]
    fields += [
        pa.field(SOURCE_KEY_COLUMN, pa.string()),
        pa.field(EXECUTION_ID_COLUMN, pa.string()),
        pa.field(EVENT_TIME_COLUMN, TIMESTAMP),
    ]
    return pa.schema(fields)


#: The quarantine table: one row per row of a valid file that was not staged, with where it
#: was, why, and what it held. Texts are cut at ``QUARANTINE_TEXT_LIMIT`` characters.
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string()),
        pa.field("source_key", pa.string()),
        pa.field("source_version", pa.string()),
        pa.field("line", pa.int64()),
        pa.field("reason", pa.string()),
        pa.field("key", pa.string()),
        pa.field("value", pa.string()),
        pa.field("row", pa.string()),
        pa.field("execution_id", pa.string()),
        pa.field("event_time", TIMESTAMP),
    ]
)
