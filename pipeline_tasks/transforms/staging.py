"""Staging transforms (§3 of the contract): raw CSV strings in, typed rows out.

Pure Arrow functions: no I/O. The grain of a staged table is one row per
primary key; rows whose key is missing or not an integer are not staged.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline_tasks.contract import (
    CLEANING_RULES,
    EVENT_TIME_COLUMN,
    EXECUTION_ID_COLUMN,
    MONEY_PRECISION,
    MONEY_SCALE,
    ROW_RULES,
    SALE_PRICE_PARTS,
    SALE_PRICE_PARTS_LIMIT,
    SOURCE_KEY_COLUMN,
    CleaningRule,
    ColumnType,
    Dataset,
    Limit,
    RowRule,
)
from pipeline_tasks.csv_reader import LINE_COLUMN, MISSING_KEY, NON_INTEGER_KEY
from pipeline_tasks.schemas import MONEY, QUARANTINE_SCHEMA, TIMESTAMP, staged_schema

_ROW = "__row"

_INTEGER = r"^[+-]?[0-9]{1,18}$"
_LONG_INTEGER = r"^[+-]?[0-9]{19}$"
_PLAIN_DECIMAL = r"^[+-]?([0-9]{1,20}(\.[0-9]*)?|\.[0-9]+)$"
_EXPONENT_DECIMAL = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)[eE][+-]?[0-9]{1,3}$"
_TIMESTAMP = (
    r"^(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[T ](?P<hm>[0-9]{2}:[0-9]{2})(?P<sec>:[0-9]{2})?"
    r"(?P<frac>\.[0-9]+)?\s*(?P<tz>Z|UTC|[+-][0-9]{2}(?::?[0-9]{2})?)?$"
)
_WALL_FORMAT = "%Y-%m-%dT%H:%M:%S"
#: Timestamps are carried from year 1 to year 9999 (UTC), the years an ISO ``order_date``
#: (``YYYY-MM-DD``) can name; a value outside (``0000-…``, or ``9999-12-31T23:00-05:00``,
#: which is year 10000 in UTC) does not parse, and becomes null like any other.
_EARLIEST_US = -62135596800 * 1_000_000  # 0001-01-01T00:00:00Z
_END_US = 253402300800 * 1_000_000  # 10000-01-01T00:00:00Z
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def trim_to_null(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Trim whitespace; an empty string becomes null."""
    trimmed = pc.utf8_trim_whitespace(values)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


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
    return _combine(pc.fill_null(broken, False))


def not_staged_reasons(raw: pa.RecordBatch | pa.Table, dataset: Dataset) -> pa.Array:
    """Why each raw row will not be staged (null for a row that will be).

    A row is named under the first reason it meets: its key (missing, then not a
    64-bit integer), then the dataset's row rules in ``ROW_RULES`` order.
    """
    missing, not_integer = key_status(raw.column(dataset.key))
    checks = [(_combine(missing), MISSING_KEY), (_combine(not_integer), NON_INTEGER_KEY)]
    checks += [(breaks(raw, rule), rule.name) for rule in ROW_RULES[dataset.name]]
    reasons = pa.nulls(raw.num_rows, pa.string())
    for broken, name in reversed(checks):
        reasons = pc.if_else(broken, pa.scalar(name, pa.string()), reasons)
    return _combine(reasons)


def count_row_problems(batch: pa.RecordBatch | pa.Table, dataset: Dataset) -> dict[str, int]:
    """Rows of a raw batch that will not be staged, per reason (``not_staged_reasons``)."""
    return count_reasons(not_staged_reasons(batch, dataset))


def count_reasons(reasons: pa.Array) -> dict[str, int]:
    """Rows per reason of ``not_staged_reasons`` (nulls are staged rows, not counted)."""
    if reasons.null_count == len(reasons):
        return {}
    counted = pc.value_counts(reasons.drop_null())
    return dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True))


def parse_int64(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Trimmed strings to int64; anything but an optional sign and digits becomes null."""
    values = _combine(values)
    # Fast path when every value is digits after a sign (Arrow's own parser would also take "0x10").
    if pc.all(pc.utf8_is_digit(pc.utf8_ltrim(values, characters="+-"))).as_py() is not False:
        try:
            return pc.cast(values, pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    short = pc.fill_null(pc.match_substring_regex(values, _INTEGER), False)
    result = pc.cast(pc.if_else(short, _strip_plus(values), pa.scalar(None, pa.string())), pa.int64())
    long_mask = pc.fill_null(pc.match_substring_regex(values, _LONG_INTEGER), False)
    if pc.any(long_mask).as_py():
        result = _patch(result, long_mask, values, _python_int64)
    return result


def parse_decimal(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Trimmed strings to decimal(38, 18); digits past the 18th decimal are dropped."""
    values = _combine(values)
    plain = pc.fill_null(pc.match_substring_regex(values, _PLAIN_DECIMAL), False)
    if pc.all(plain).as_py() is not False:
        try:  # fast path: plain numbers with at most 18 decimals
            return pc.cast(values, MONEY)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    truncated = pc.replace_substring_regex(_strip_plus(values), r"(\.[0-9]{18})[0-9]+$", r"\1")
    result = pc.cast(pc.if_else(plain, truncated, pa.scalar(None, pa.string())), MONEY)
    exponent = pc.fill_null(pc.match_substring_regex(values, _EXPONENT_DECIMAL), False)
    if pc.any(exponent).as_py():
        result = _patch(result, exponent, values, _python_decimal)
    return result


def parse_timestamp(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Trimmed strings to UTC timestamps (µs) in the forms §3 accepts; others become null.

    Accepted: ``YYYY-MM-DD[T ]HH:MM[:SS[.fff…]]`` then ``Z``, `` UTC``, ``±HH[:MM]``
    or nothing (UTC). Fractions finer than a microsecond are truncated.
    """
    values = _combine(values)
    accepted = pc.fill_null(pc.match_substring_regex(values, _TIMESTAMP), False)
    candidates = pc.if_else(accepted, values, pa.scalar(None, pa.string()))
    # Fast path: Arrow's ISO 8601 parser, once the suffix is in its vocabulary. It
    # refuses the whole array on one impossible value (2023-02-30), hence the careful path.
    iso = pc.replace_substring_regex(candidates, r"\s*UTC$", "Z")
    iso = pc.replace_substring_regex(iso, r"\s+([+-][0-9]{2}(:?[0-9]{2})?)$", r"\1")
    has_zone = pc.match_substring_regex(iso, r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$")
    iso = pc.if_else(has_zone, iso, pc.binary_join_element_wise(iso, "Z", ""))
    try:
        parsed = pc.cast(iso, TIMESTAMP)
    except pa.ArrowInvalid:
        parsed = _parse_timestamp_carefully(candidates)
    return _within_years(parsed)


def _within_years(values: pa.Array) -> pa.Array:
    """Null for the timestamps outside year 1 to year 9999 (UTC)."""
    micros = pc.cast(values, pa.int64())
    inside = pc.and_(pc.greater_equal(micros, _EARLIEST_US), pc.less(micros, _END_US))
    return pc.if_else(inside, values, pa.scalar(None, values.type))


def _parse_timestamp_carefully(values: pa.Array) -> pa.Array:
    """Field by field: impossible dates and times become null instead of failing the array."""
    parts = pc.extract_regex(values, _TIMESTAMP)
    date, hm, sec, frac, tz = (pc.struct_field(parts, name) for name in ("date", "hm", "sec", "frac", "tz"))
    seconds = pc.if_else(pc.equal(sec, ""), ":00", sec)
    wall = pc.binary_join_element_wise(date, "T", hm, seconds, "")
    local = pc.strptime(wall, format=_WALL_FORMAT, unit="us", error_is_null=True)
    # strptime rolls impossible values over (02-30 -> 03-02, 25:00 -> 01:00 next day): reject them.
    written = [
        (pc.day(local), pc.utf8_slice_codeunits(date, 8, 10)),
        (pc.hour(local), pc.utf8_slice_codeunits(hm, 0, 2)),
        (pc.minute(local), pc.utf8_slice_codeunits(hm, 3, 5)),
        (pc.second(local), pc.utf8_slice_codeunits(seconds, 1, 3)),
    ]
    intact = pc.and_(
        pc.and_(*[pc.equal(a, pc.cast(b, pa.int64())) for a, b in written[:2]]),
        pc.and_(*[pc.equal(a, pc.cast(b, pa.int64())) for a, b in written[2:]]),
    )
    local = pc.if_else(intact, local, None)
    micros = pc.cast(pc.utf8_slice_codeunits(pc.utf8_rpad(pc.utf8_slice_codeunits(frac, 1), 6, "0"), 0, 6), pa.int64())
    total = pc.subtract(pc.add(pc.cast(local, pa.int64()), micros), pc.multiply(_offset_seconds(tz), 1_000_000))
    return pc.cast(total, pa.timestamp("us")).cast(TIMESTAMP)


def _offset_seconds(tz: pa.Array) -> pa.Array:
    """Seconds east of UTC of a ``Z``/``UTC``/``±HH[:MM]`` suffix (0 when absent)."""
    negative = pc.starts_with(tz, "-")
    numeric = pc.or_(pc.starts_with(tz, "+"), negative)
    digits = pc.utf8_rpad(pc.replace_substring(pc.utf8_slice_codeunits(tz, 1), ":", ""), 4, "0")
    digits = pc.if_else(numeric, digits, "0000")
    hours = pc.cast(pc.utf8_slice_codeunits(digits, 0, 2), pa.int64())
    minutes = pc.cast(pc.utf8_slice_codeunits(digits, 2, 4), pa.int64())
    magnitude = pc.add(pc.multiply(hours, 3600), pc.multiply(minutes, 60))
    return pc.if_else(negative, pc.negate(magnitude), magnitude)


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
        source_keys = _combine(source_keys).filter(staged)
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
            columns[name] = _combine(values)
    if "sale_price" in columns:
        columns |= dict(zip(SALE_PRICE_PARTS, money_parts(columns["sale_price"]), strict=True))
    if "year" in dataset.partition_by:
        created = columns["created_at"]
        columns["year"] = pc.cast(pc.year(created), pa.int32())
        columns["month"] = pc.cast(pc.month(created), pa.int32())
    columns[SOURCE_KEY_COLUMN] = (
        _combine(source_keys) if source_keys is not None else pa.nulls(raw.num_rows, pa.string())
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
    rows, why = raw.filter(broken), _combine(reasons).filter(broken)
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


def money_parts(values: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Exact int64 parts of ``decimal(38, 18)`` values: whole part, first and last nine decimals.

    Each part has the value's sign, so the value is ``units + nanos / 10**9 + attos / 10**18``.
    Null values, and values whose magnitude reaches ``SALE_PRICE_PARTS_LIMIT``, get null parts.
    The whole part is Arrow's truncating cast; the fraction, Arrow's exact decimal difference,
    is below 1 in magnitude, so its unscaled value (in 10**-18) fits the low 64 bits of its
    128-bit storage, which numpy splits.
    """
    limit = pa.scalar(decimal.Decimal(SALE_PRICE_PARTS_LIMIT), values.type)
    kept = pc.if_else(pc.less(pc.abs(values), limit), values, pa.scalar(None, values.type))
    units = pc.cast(kept, options=pc.CastOptions(pa.int64(), allow_decimal_truncate=True))
    narrow = pa.decimal128(MONEY_PRECISION - 1, MONEY_SCALE)  # every kept value fits; a difference takes 38
    fraction = pc.subtract(pc.cast(kept, narrow), pc.cast(units, narrow))
    words = np.frombuffer(fraction.buffers()[1], dtype=np.int64)
    scaled = words[2 * fraction.offset : 2 * (fraction.offset + len(fraction)) : 2]
    magnitude, sign = np.abs(scaled), np.sign(scaled)
    missing = fraction.is_null().to_numpy(zero_copy_only=False)
    nanos = pa.array(sign * (magnitude // 10**9), pa.int64(), mask=missing)
    attos = pa.array(sign * (magnitude % 10**9), pa.int64(), mask=missing)
    return units, nanos, attos


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


def _combine(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _strip_plus(values: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(values, r"^\+", "")


def _patch(result: pa.Array, mask: pa.Array, values: pa.Array, convert) -> pa.Array:  # type: ignore[no-untyped-def]
    """Replace the masked positions of ``result`` by a slow Python conversion."""
    python_values = result.to_pylist()
    for position in pc.indices_nonzero(mask).to_pylist():
        python_values[position] = convert(values[position].as_py())
    return pa.array(python_values, result.type)


def _python_int64(text: str) -> int | None:
    number = int(text)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


def _python_decimal(text: str) -> decimal.Decimal | None:
    # A context wide enough for any value of 38 digits (the default 28 refused 1e18 here).
    step = decimal.Decimal(1).scaleb(-MONEY_SCALE)
    with decimal.localcontext(prec=2 * MONEY_PRECISION):
        try:
            number = decimal.Decimal(text).quantize(step, rounding=decimal.ROUND_DOWN)
        except decimal.InvalidOperation:
            return None
    return number if number.adjusted() < MONEY_PRECISION - MONEY_SCALE else None


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
