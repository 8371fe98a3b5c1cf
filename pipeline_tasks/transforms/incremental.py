"""Which ``order_date``s a set of staged changes can affect (for §6's invariant).

A day's KPIs depend on the orders created that day, their items, and the
categories of those items' products. So a batch affects: the old and new days
of every changed order; the days of the orders that changed items belong (or
belonged) to; and every day holding items of a product whose KPI category
changed. Pure DataFrame functions; change feeds are Delta CDF rows.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipeline_tasks.contract import UNKNOWN
from pipeline_tasks.transforms.cleaning import product_category
from pipeline_tasks.transforms.kpis import order_date


def recategorised_products(products_before: DataFrame, products_now: DataFrame) -> DataFrame:
    """One row per ``product_id`` whose KPI category differs between two snapshots.

    A product missing from a snapshot counts as ``Unknown``, as its items do.
    """
    before = product_category(products_before).withColumnRenamed("category", "before")
    now = product_category(products_now).withColumnRenamed("category", "now")
    unknown = F.lit(UNKNOWN)
    return (
        before.join(now, "product_id", "full")
        .filter(F.coalesce(F.col("before"), unknown) != F.coalesce(F.col("now"), unknown))
        .select("product_id")
    )


def affected_dates(
    orders_now: DataFrame,
    items_now: DataFrame,
    changed_days: DataFrame,
    touched_order_ids: DataFrame,
    recategorised: DataFrame,
) -> DataFrame:
    """One row per ``order_date`` whose KPIs may differ from the last computed ones.

    Args:
        orders_now: Staged orders at the current version.
        items_now: Staged order items at the current version.
        changed_days: ``order_date``s of changed orders, old and new (from the change feed).
        touched_order_ids: ``order_id``s that changed items belong or belonged to.
        recategorised: ``product_id``s whose category changed.
    """
    touched = touched_order_ids.select("order_id").union(
        items_now.join(F.broadcast(recategorised), "product_id").select("order_id")
    )
    from_items = (
        orders_now.select("order_id", order_date().alias("order_date"))
        .join(F.broadcast(touched.distinct()), "order_id")
        .select("order_date")
    )
    return changed_days.select("order_date").union(from_items).filter(F.col("order_date").isNotNull()).distinct()
