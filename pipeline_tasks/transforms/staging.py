"""Staging transforms (docs/contract.md §3): raw CSV strings in, typed rows out.

This module owns which raw rows are staged (keys and row rules, with the reason a row
is not), the typed staged rows (values parsed by ``transforms.parsing``, money split by
``money.money_parts``), their quarantine records, the last-wins dedupe, and the Arrow
twin of the §4 cleaning rules. Pure Arrow functions: no I/O. The grain of a staged
table is one row per primary key; rows whose key is missing or not an integer are not
staged.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from pipeline_tasks.contract import (
    CLEANING_RULES,
    EVENT_TIME_COLUMN,
    EXECUTION_ID_COLUMN,
    ROW_RULES,
    SALE_PRICE_PARTS,
    SOURCE_KEY_COLUMN,
    CleaningRule,
    ColumnType,
    Dataset,
    Limit,
    RowRule,
)
from pipeline_tasks.csv_reader import LINE_COLUMN, MISSING_KEY, NON_INTEGER_KEY
from pipeline_tasks.money import money_parts
from pipeline_tasks.schemas import MONEY, QUARANTINE_SCHEMA, TIMESTAMP, staged_schema
from pipeline_tasks.transforms.parsing import as_array, parse_decimal, parse_int64, parse_timestamp, trim_to_null

_ROW = "__row"


def key_status(keys: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """Classify raw key strings.

    Returns:
        Two boolean arrays: the key is missing; the key is present but not a 64-bit integer.
    """
    trimmed = trim_to_null(keys)
    missing = pc.is_null(trimmed)
    parsed = parse_int64(trimmed)
    not_integer = pc.and_(pc.invert(missing), pc.is_null(parsed))
    return missing, not_integer


def breaks(raw: pa.RecordBatch | pa.Table, rule: RowRule) -> pa.Array:
    """True for the raw rows whose trimmed value breaks a row rule (never null).

    A value that does not parse breaks no rule: it is staged as null (§3).
    """
    values = trim_to_null(raw.column(rule.column))
    if rule.measure is Limit.BYTES:
        broken = pc.greater(pc.binary_length(values), rule.limit)
    else:
        limit = pa.scalar(decimal.Decimal(rule.limit), MONEY)
        broken = pc.greater_equal(pc.abs(parse_decimal(values)), limit)
    return as_array(pc.fill_null(broken, False))


def not_staged_reasons(raw: pa.RecordBatch | pa.Table, dataset: Dataset) -> pa.Array:
    """Why each raw row will not be staged (null for a row that will be).

    A row is named under the first reason it meets: its key (missing, then not a
    64-bit integer), then the dataset's row rules in ``ROW_RULES`` order.
    """
    missing, not_integer = key_status(raw.column(dataset.key))
    checks = [(as_array(missing), MISSING_KEY), (as_array(not_integer), NON_INTEGER_KEY)]
    checks += [(breaks(raw, rule), rule.name) for rule in ROW_RULES[dataset.name]]
    reasons = pa.nulls(raw.num_rows, pa.string())
    for broken, name in reversed(checks):
        reasons = pc.if_else(broken, pa.scalar(name, pa.string()), reasons)
    return as_array(reasons)


def count_row_problems(batch: pa.RecordBatch | pa.Table, dataset: Dataset) -> dict[str, int]:
    """Rows of a raw batch that will not be staged, per reason (``not_staged_reasons``)."""
    return count_reasons(not_staged_reasons(batch, dataset))


def count_reasons(reasons: pa.Array) -> dict[str, int]:
    """Rows per reason of ``not_staged_reasons`` (nulls are staged rows, not counted)."""
    if reasons.null_count == len(reasons):
        return {}
    counted = pc.value_counts(reasons.drop_null())
    return dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True))


def stage_rows(
    raw: pa.Table,
    dataset: Dataset,
    *,
    source_keys: pa.Array | None = None,
    event_time: datetime | None = None,
    reasons: pa.Array | None = None,
) -> pa.Table:
    """Type the rows of a raw batch and drop those with a reason not to be staged.

    Args:
        raw: The dataset's required columns as strings, in file order.
        dataset: The dataset of the rows.
        source_keys: Object key of each raw row, for lineage (same length as ``raw``).
        event_time: When the rows' file was created (its S3 event), for every row.
        reasons: ``not_staged_reasons(raw, dataset)``, when the caller has it already.

    Returns:
        Typed rows with partition columns, still in input order (duplicates kept);
        rows that ``not_staged_reasons`` names are left out.
    """
    staged = pc.is_null(not_staged_reasons(raw, dataset) if reasons is None else reasons)
    raw = raw.filter(staged)
    if source_keys is not None:
        source_keys = as_array(source_keys).filter(staged)
    columns: dict[str, pa.Array] = {}
    for name, kind in dataset.columns:
        values = trim_to_null(raw.column(name))
        if kind is ColumnType.INT64:
            columns[name] = parse_int64(values)
        elif kind is ColumnType.DECIMAL:
            columns[name] = parse_decimal(values)
        elif kind is ColumnType.TIMESTAMP:
            columns[name] = parse_timestamp(values)
        else:
            columns[name] = as_array(values)
    if "sale_price" in columns:
        columns |= dict(zip(SALE_PRICE_PARTS, money_parts(columns["sale_price"]), strict=True))
    if "year" in dataset.partition_by:
        created = columns["created_at"]
        columns["year"] = pc.cast(pc.year(created), pa.int32())
        columns["month"] = pc.cast(pc.month(created), pa.int32())
    columns[SOURCE_KEY_COLUMN] = (
        as_array(source_keys) if source_keys is not None else pa.nulls(raw.num_rows, pa.string())
    )
    columns[EXECUTION_ID_COLUMN] = pa.nulls(raw.num_rows, pa.string())
    columns[EVENT_TIME_COLUMN] = pa.repeat(pa.scalar(event_time, TIMESTAMP), raw.num_rows)
    typed = pa.table(columns, schema=staged_schema(dataset))
    return typed.filter(pc.is_valid(typed.column(dataset.key)))


QUARANTINE_TEXT_LIMIT = 2000


@dataclass(frozen=True)
class Provenance:
    """Where a file's rows came from: its key, its version and when it was created."""

    source_key: str
    source_version: str | None
    execution_id: str
    event_time: datetime | None


def quarantine_records(raw: pa.Table, reasons: pa.Array, dataset: Dataset, origin: Provenance) -> pa.Table:
    """One quarantine record (``QUARANTINE_SCHEMA``) per raw row that has a reason.

    Args:
        raw: The file's raw rows (strings), with their ``LINE_COLUMN`` when known.
        reasons: ``not_staged_reasons`` of ``raw``.
        dataset: The dataset of the rows.
        origin: The file the rows came from.
    """
    broken = pc.is_valid(reasons)
    rows, why = raw.filter(broken), as_array(reasons).filter(broken)
    columns = {name: rows.column(name).to_pylist() for name in dataset.required_columns}
    looked_at = {rule.name: rule.column for rule in ROW_RULES[dataset.name]}
    lines = rows.column(LINE_COLUMN).to_pylist() if LINE_COLUMN in rows.column_names else [None] * rows.num_rows
    records = []
    for n, reason in enumerate(why.to_pylist()):
        row = {name: values[n] for name, values in columns.items()}
        records.append(
            {
                "line": lines[n],
                "reason": reason,
                "key": _cut(row[dataset.key]),
                "value": _cut(row[looked_at.get(reason, dataset.key)]),
                "row": _cut(json.dumps(row, ensure_ascii=False)),
            }
        )
    return reader_records(records, dataset, origin)


def reader_records(records: Sequence[dict[str, object]], dataset: Dataset, origin: Provenance) -> pa.Table:
    """Quarantine records from ``line``/``reason``/``row`` (and optional ``key``/``value``) dicts."""
    common = {
        "dataset": dataset.name,
        "source_key": origin.source_key,
        "source_version": origin.source_version,
        "execution_id": origin.execution_id,
        "event_time": origin.event_time,
    }
    rows = [{"key": None, "value": None, **r, **common, "row": _cut(r.get("row"))} for r in records]
    return pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)


def _cut(text: object) -> str | None:
    return None if text is None else str(text)[:QUARANTINE_TEXT_LIMIT]


def dedupe_last_wins(rows: pa.Table, key: str) -> pa.Table:
    """Keep the last row of every key (input order), sorted by key."""
    if rows.num_rows == 0:
        return rows
    indexed = rows.append_column(_ROW, pa.array(range(rows.num_rows), pa.int64()))
    last = indexed.group_by(key, use_threads=False).aggregate([(_ROW, "max")])
    kept = pc.sort_indices(last.column(f"{_ROW}_max"))
    positions = pc.take(last.column(f"{_ROW}_max"), kept)
    return rows.take(positions).sort_by(key)


def passes(rows: pa.Table, rule: CleaningRule) -> pa.ChunkedArray:
    """True for the rows a cleaning rule of §4 keeps (never null)."""
    column = rows.column(rule.column)
    kept = pc.greater(column, 0) if rule.positive else pc.is_valid(column)
    return pc.fill_null(kept, False)


def is_kept(rows: pa.Table, dataset_name: str) -> pa.ChunkedArray:
    """True for the rows every cleaning rule of §4 keeps (the Arrow twin of ``cleaning.is_kept``)."""
    kept = pa.chunked_array([pa.repeat(pa.scalar(True), rows.num_rows)])
    for rule in CLEANING_RULES[dataset_name]:
        kept = pc.and_(kept, passes(rows, rule))
    return kept


def count_cleaning_exclusions(rows: pa.Table, dataset: Dataset) -> dict[str, int]:
    """Rows of a staged file that cleaning (§4) will exclude, per rule.

    A row is counted under the first rule of ``CLEANING_RULES`` it breaks, so the
    counts add up to the rows excluded. Rules with no excluded row are left out.
    """
    remaining = pa.repeat(pa.scalar(True), rows.num_rows)
    counts: dict[str, int] = {}
    for rule in CLEANING_RULES[dataset.name]:
        broken = pc.and_(remaining, pc.invert(passes(rows, rule)))
        excluded = pc.sum(broken).as_py() or 0
        if excluded:
            counts[rule.name] = excluded
        remaining = pc.and_(remaining, pc.invert(broken))
    return counts


def with_execution_id(rows: pa.Table, execution_id: str) -> pa.Table:
    index = rows.schema.get_field_index(EXECUTION_ID_COLUMN)
    return rows.set_column(index, EXECUTION_ID_COLUMN, pa.repeat(pa.scalar(execution_id, pa.string()), rows.num_rows))


__all__: Sequence[str] = (
    "count_reasons",
    "count_row_problems",
    "dedupe_last_wins",
    "money_parts",
    "not_staged_reasons",
    "parse_decimal",
    "parse_int64",
    "parse_timestamp",
    "quarantine_records",
    "stage_rows",
    "staged_schema",
    "trim_to_null",
    "with_execution_id",
)
