"""KPIs (docs/contract.md §5): the fact items, their aggregates, and the KPI items from them.

Spark computes exact aggregates (money sums under a ``money.MoneyPlan``, counts); the
final division and half-up rounding (``money.round_half_up``) happen in Python on the
few aggregate rows, with exact fractions, so a value is never rounded twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipeline_tasks.contract import CATEGORY_KPIS, ORDER_KPIS, RETURNED, UNKNOWN
from pipeline_tasks.money import EXACT_DIGITS, MoneyPlan, round_half_up
from pipeline_tasks.transforms.money_columns import carried, fact_columns, summed

ORDER_KPI_COLUMNS = ORDER_KPIS.columns
CATEGORY_KPI_COLUMNS = CATEGORY_KPIS.columns


def order_date(created_at: str = "created_at") -> Column:
    """The UTC calendar day of a timestamp (DateType); the session time zone must be UTC."""
    return F.to_date(F.col(created_at))


def with_order_date(orders: DataFrame) -> DataFrame:
    return orders.withColumn("order_date", order_date())


def on_days(orders: DataFrame, days: Iterable[date]) -> DataFrame:
    """The orders (with ``order_date``) created on the given days.

    The days travel as ISO strings cast to dates: PySpark hands a Python ``date`` to the
    JVM through ``strftime("%Y-%m-%d")``, which writes year 1 as ``1-01-01`` and fails.
    """
    return orders.filter(F.col("order_date").isin([F.lit(day.isoformat()).cast("date") for day in days]))


def fact_items(
    order_items: DataFrame,
    orders: DataFrame,
    categories: DataFrame,
    *,
    hash_orders: bool = False,
    money: MoneyPlan = MoneyPlan.DECIMAL,
) -> DataFrame:
    """One row per fact item ``id``: cleaned items of cleaned orders, with their category.

    Args:
        order_items: Cleaned order items.
        orders: Cleaned orders with ``order_date``.
        categories: ``product_id, category`` of the cleaned products.
        hash_orders: Join through a hash table of each shuffle partition's orders instead of
            sorting both sides (faster; the orders of a partition must fit in memory).
        money: Under ``MoneyPlan.PARTS``, carry the exact int64 parts of ``sale_price``
            (``money.MONEY_SUMS``) instead of the decimal (see ``category_kpi_aggregates``).
    """
    days = orders.select("order_id", "order_date")
    return (
        order_items.select("id", "order_id", "product_id", *fact_columns(money), F.col("status").alias("item_status"))
        .join(days.hint("shuffle_hash") if hash_orders else days, "order_id")
        .join(F.broadcast(categories), "product_id", "left")
        .withColumn("category", F.coalesce(F.col("category"), F.lit(UNKNOWN)))
    )


def order_kpi_aggregates(orders: DataFrame) -> DataFrame:
    """One row per ``order_date`` with at least one cleaned order: the order-side counts.

    The item side of the day (revenue, items sold) is the sum of its category rows
    (see ``with_item_totals``): every fact item has exactly one category, so the items
    need no second pass.
    """
    return orders.groupBy("order_date").agg(
        F.count(F.lit(1)).alias("total_orders"),
        F.countDistinct("user_id").alias("unique_customers"),
        F.sum(_is_returned("status")).alias("returned_orders"),
    )


def category_kpi_aggregates(facts: DataFrame, *, money: MoneyPlan = MoneyPlan.DECIMAL) -> DataFrame:
    """One row per (``category``, ``order_date``) with at least one fact item.

    Two steps instead of a ``countDistinct``: one row per (order, category) first, so
    the distinct orders are a plain count and the money is summed once per level.

    ``money``: under ``MoneyPlan.PARTS`` the facts carry the price's exact parts
    (``money_columns.fact_columns``) and the rows get one 64-bit sum per part instead of a
    ``decimal(38, 18)`` ``revenue`` (``money.revenue_from_parts`` puts it back together,
    exactly). Spark adds decimals of that precision as ``BigDecimal`` objects, which is
    slower. Every part is below 10^9 in magnitude, so no sum of fewer than 9.2·10^9 items
    can overflow; the caller must know that every price has its parts (below
    ``SALE_PRICE_PARTS_LIMIT``: ``money.money_plan``).
    """
    names = summed(money)
    per_order = facts.groupBy("order_id", "order_date", "category").agg(
        *[F.sum(column).alias(name) for column, name in zip(carried(money), names, strict=True)],
        F.count(F.lit(1)).alias("items"),
        F.sum(_is_returned("item_status")).alias("returned_items"),
    )
    return per_order.groupBy("category", "order_date").agg(
        *[F.sum(name).alias(name) for name in names],
        F.count(F.lit(1)).alias("orders"),
        F.sum("items").alias("items"),
        F.sum("returned_items").alias("returned_items"),
    )


def with_item_totals(
    order_rows: Iterable[Mapping[str, Any]], category_rows: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """``order_kpi_aggregates`` rows with the day's ``revenue`` and ``items`` summed from its category rows.

    A day without fact items gets revenue None and 0 items, as a left join would.
    """
    revenue: dict[Any, Decimal] = {}
    items: dict[Any, int] = {}
    with localcontext(prec=EXACT_DIGITS):
        for row in category_rows:
            day = row["order_date"]
            revenue[day] = revenue.get(day, Decimal(0)) + row["revenue"]
            items[day] = items.get(day, 0) + int(row["items"])
    return [
        {**row, "revenue": revenue.get(row["order_date"]), "items": items.get(row["order_date"], 0)}
        for row in order_rows
    ]


def _is_returned(column: str) -> Column:
    return F.when(F.col(column) == RETURNED, 1).otherwise(0)


def _day(value: date | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


def _ratio(numerator: Decimal | int, denominator: int) -> Fraction:
    return Fraction(numerator) / denominator


def order_kpi_items(aggregates: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """OrderKPIs items by ``order_date`` from ``order_kpi_aggregates`` rows (dict in, dict out)."""
    items = {}
    for row in aggregates:
        revenue = row["revenue"] or Decimal(0)
        total = int(row["total_orders"])
        day = _day(row["order_date"])
        items[day] = {
            "order_date": day,
            "total_orders": total,
            "total_revenue": round_half_up(revenue),
            "total_items_sold": int(row["items"] or 0),
            "unique_customers": int(row["unique_customers"]),
            "return_rate": round_half_up(_ratio(100 * int(row["returned_orders"]), total)),
        }
    return items


def category_kpi_items(aggregates: Iterable[Mapping[str, Any]]) -> dict[tuple[str, ...], dict[str, Any]]:
    """CategoryKPIs items by (``category``, ``order_date``) from ``category_kpi_aggregates`` rows."""
    items: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in aggregates:
        revenue = row["revenue"]
        day = _day(row["order_date"])
        items[(row["category"], day)] = {
            "category": row["category"],
            "order_date": day,
            "daily_revenue": round_half_up(revenue),
            "avg_order_value": round_half_up(_ratio(revenue, int(row["orders"]))),
            "avg_return_rate": round_half_up(_ratio(100 * int(row["returned_items"]), int(row["items"]))),
        }
    return items
