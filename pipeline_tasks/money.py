"""Money: how ``sale_price`` is carried, split, summed back and rounded.

This module owns the representation of money (``decimal(38, 18)``, ``MONEY``) and its
exact int64 parts (``SALE_PRICE_PARTS``, derived at staging by ``money_parts``); the
plan by which the KPIs sum it (``MoneyPlan``, chosen by ``money_plan`` from the Delta
log); the exact revenue from summed parts (``revenue_from_parts``); and the one
rounding of money and rates (``round_half_up``, docs/contract.md §5). It does no I/O
and imports no Spark: the Spark columns of each plan are ``transforms.money_columns``.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Mapping
from decimal import Decimal, localcontext
from enum import Enum
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline_tasks.contract import MONEY_PRECISION, MONEY_SCALE, SALE_PRICE_PARTS, SALE_PRICE_PARTS_LIMIT
from pipeline_tasks.schemas import MONEY

if TYPE_CHECKING:
    from deltalake import DeltaTable

__all__ = [
    "BILLION",
    "EXACT_DIGITS",
    "GIGA",
    "MONEY",
    "MONEY_SUMS",
    "SALE_PRICE_PARTS",
    "SALE_PRICE_PARTS_LIMIT",
    "MoneyPlan",
    "money_parts",
    "money_parts_fit",
    "money_plan",
    "revenue_from_parts",
    "round_half_up",
]

BILLION = 10**9
#: Enough digits that adding decimal(38, 18) sums never rounds.
EXACT_DIGITS = 80
#: The price's parts that the fact items carry and the aggregates sum under ``MoneyPlan.PARTS``:
#: its whole part split into billions and the rest, then its first and last nine decimals
#: (``SALE_PRICE_PARTS``), all with the price's sign and below 10^9 in magnitude.
GIGA = "_sale_price_giga"
MONEY_SUMS = (GIGA, *SALE_PRICE_PARTS)
_CENT = Decimal("0.01")


class MoneyPlan(Enum):
    """How Spark sums ``sale_price``; the value is what the transform report says (``money_sums``)."""

    #: One 64-bit sum per part of ``MONEY_SUMS`` (``revenue_from_parts`` puts the revenue back together).
    PARTS = "int64 parts"
    #: ``decimal(38, 18)`` sums of ``sale_price`` itself.
    DECIMAL = "decimal"


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


def money_parts_fit(items: DeltaTable) -> bool:
    """Whether the KPIs may sum the exact int64 parts of ``sale_price`` instead of the decimal.

    From the Delta log's null counts: every price has its parts (a price at or above
    ``SALE_PRICE_PARTS_LIMIT`` has none; staging quarantines those), and the table has
    fewer rows than a 64-bit sum of parts below 10^9 could overflow with
    (``kpis.category_kpi_aggregates``). The decimal's own min/max statistics are not
    used: delta-rs writes none for values of 36 digits or more. A file without null
    counts, or a table without the parts, keeps the decimal plan.
    """
    units = SALE_PRICE_PARTS[0]
    if not set(SALE_PRICE_PARTS) <= set(items.schema().to_arrow().names):
        return False
    actions = pa.table(items.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return True
    columns = ["num_records", "null_count.sale_price", f"null_count.{units}"]
    if not set(columns) <= set(actions.column_names):
        return False
    records, price_nulls, units_nulls = (actions.column(c).to_pylist() for c in columns)
    for counts in zip(records, price_nulls, units_nulls, strict=True):
        if None in counts or counts[1] != counts[2]:
            return False
    return BILLION * sum(records) < 2**63


def money_plan(items: DeltaTable) -> MoneyPlan:
    """The plan the KPIs of the staged ``order_items`` sum money with (``money_parts_fit``)."""
    return MoneyPlan.PARTS if money_parts_fit(items) else MoneyPlan.DECIMAL


def revenue_from_parts(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Aggregate rows with their ``MONEY_SUMS`` replaced by the exact ``revenue``."""
    result = []
    with localcontext(prec=EXACT_DIGITS):
        for row in rows:
            giga, units, nanos, attos = (int(row[name]) for name in MONEY_SUMS)
            whole = Decimal(giga) * BILLION + Decimal(units)
            revenue = whole + Decimal(nanos).scaleb(-9) + Decimal(attos).scaleb(-18)
            rest = {k: v for k, v in row.items() if k not in MONEY_SUMS}
            result.append({**rest, "revenue": revenue})
    return result


def round_half_up(value: Fraction | Decimal | int) -> Decimal:
    """Round an exact value half away from zero to 2 decimals (docs/contract.md §5)."""
    exact = Fraction(value)
    cents = Fraction(abs(exact) * 100 + Fraction(1, 2)).__floor__()
    return (Decimal(cents if exact >= 0 else -cents) * _CENT).quantize(_CENT)
