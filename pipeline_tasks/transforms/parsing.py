"""Parsing raw CSV strings into typed Arrow values (docs/contract.md §3): integers, money, timestamps.

Pure Arrow functions: no I/O. A value that does not parse becomes null; the staging
transforms (``transforms.staging``) decide what a row with such a value becomes.
"""

from __future__ import annotations

import decimal

import pyarrow as pa
import pyarrow.compute as pc

from pipeline_tasks.contract import MONEY_PRECISION, MONEY_SCALE
from pipeline_tasks.schemas import MONEY, TIMESTAMP

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


def parse_int64(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Trimmed strings to int64; anything but an optional sign and digits becomes null."""
    values = as_array(values)
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
    values = as_array(values)
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
    values = as_array(values)
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


def as_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One Arrow array of the values (chunks combined)."""
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
