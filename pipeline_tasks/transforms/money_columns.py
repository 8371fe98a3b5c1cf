"""The Spark columns of each money plan (``money.MoneyPlan``): what a fact item carries and sums.

Pure Spark column builders: no session, no I/O. Under ``MoneyPlan.PARTS`` a fact
item carries the exact int64 parts of ``sale_price`` (``money.MONEY_SUMS``) and a
positive price is told from them; under ``MoneyPlan.DECIMAL``, ``sale_price`` itself.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from pipeline_tasks.money import BILLION, GIGA, MONEY_SUMS, SALE_PRICE_PARTS, MoneyPlan


def carried(money: MoneyPlan) -> list[str]:
    """The money columns a fact item carries: ``sale_price``, or its exact parts."""
    return list(MONEY_SUMS) if money is MoneyPlan.PARTS else ["sale_price"]


def summed(money: MoneyPlan) -> list[str]:
    """The names of the money sums of an aggregate row: ``revenue``, or one per part."""
    return list(MONEY_SUMS) if money is MoneyPlan.PARTS else ["revenue"]


def fact_columns(money: MoneyPlan) -> list[Column]:
    """The fact item's money columns (``carried``) from a cleaned order item's."""
    if money is not MoneyPlan.PARTS:
        return [F.col("sale_price")]
    units, nanos, attos = SALE_PRICE_PARTS
    return [
        F.expr(f"{units} div {BILLION}").alias(GIGA),
        (F.col(units) % F.lit(BILLION)).alias(units),
        F.col(nanos),
        F.col(attos),
    ]


def sale_price_parts_positive() -> Column:
    """``sale_price > 0`` told from its exact parts (null when they are), which all share its sign."""
    units, nanos, attos = (F.col(name) for name in SALE_PRICE_PARTS)
    return (units > 0) | ((units == 0) & ((nanos > 0) | ((nanos == 0) & (attos > 0))))
