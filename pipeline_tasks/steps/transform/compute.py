"""The transform's computation: a plan's KPI aggregates from the staged snapshot, in Spark.

This module owns what runs in Spark: reading the plan's slices of the staged tables,
cleaning them and aggregating the KPIs of the plan's days (``compute_aggregates``),
and isolating the days whose data fails to compute (``compute_by_halves``), so that
one day never blocks the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipeline_tasks.contract import ORDER_ITEMS, ORDERS, PRODUCTS, Dataset
from pipeline_tasks.errors import StepFailed
from pipeline_tasks.io import delta_scan
from pipeline_tasks.io import spark as spark_io
from pipeline_tasks.money import MoneyPlan, revenue_from_parts
from pipeline_tasks.schemas import staged_schema
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps.transform.plan import Lake, TransformPlan
from pipeline_tasks.transforms.cleaning import clean_order_items, clean_orders, clean_products
from pipeline_tasks.transforms.kpis import (
    category_kpi_aggregates,
    category_kpi_items,
    fact_items,
    on_days,
    order_kpi_aggregates,
    order_kpi_items,
    with_item_totals,
    with_order_date,
)

log = logging.getLogger(__name__)

Aggregates = tuple[list[dict[str, Any]], list[dict[str, Any]]]
#: Most compute attempts spent isolating failing days before the run gives up and fails.
MAX_ISOLATION_ATTEMPTS = 64


@dataclass(frozen=True)
class Computed:
    """The KPI aggregate rows of a plan's days, and the days that failed to compute (with the error)."""

    order_rows: list[dict[str, Any]] = field(default_factory=list)
    category_rows: list[dict[str, Any]] = field(default_factory=list)
    blocked: dict[date, str] = field(default_factory=dict)


def compute_kpis(plan: TransformPlan, spark: SparkSession, lake: Lake, settings: Settings) -> Computed:
    """The aggregates of the plan's days; a day that fails is isolated and reported, not raised.

    Raises:
        Exception: Every day failed (the first error).
    """
    orders = _snapshot(spark, settings, lake.tables[ORDERS.name], ORDERS, plan.order_files)
    items = _snapshot(spark, settings, lake.tables[ORDER_ITEMS.name], ORDER_ITEMS, plan.item_files)
    products = _snapshot(spark, settings, lake.tables[PRODUCTS.name], PRODUCTS)

    def compute(days: list[date] | None) -> Aggregates:
        aggregates = compute_aggregates(orders, items, products, days, hash_join=plan.hash_join, money=plan.money)
        order_kpi_items(aggregates[0]), category_kpi_items(aggregates[1])  # a value no item can hold fails here
        return aggregates

    dates = None if plan.dates is None else list(plan.dates)
    try:
        order_rows, category_rows = compute(dates)
        return Computed(order_rows, category_rows)
    except Exception as error:  # one day's data must not block the others: isolate the failing days
        every_day = dates if dates is not None else order_days(lake.tables[ORDERS.name])
        log.warning("computing %d day(s) failed (%s): isolating the failing days", len(every_day), error)
        order_rows, category_rows, blocked = compute_by_halves(compute, every_day)
        if len(blocked) == len(every_day):
            raise
        log.error("KPI day(s) blocked, left as they were and retried by the next run: %s", blocked)
        return Computed(order_rows, category_rows, blocked)


def _snapshot(
    spark: SparkSession,
    settings: Settings,
    table: DeltaTable,
    dataset: Dataset,
    files: list[str] | tuple[str, ...] | None = None,
) -> DataFrame:
    files = None if files is None else list(files)
    return spark_io.read_delta(spark, table, staged_schema(dataset), reader=settings.spark_delta_reader, files=files)


def compute_aggregates(
    orders: DataFrame,
    items: DataFrame,
    products: DataFrame,
    dates: list[date] | None,
    *,
    hash_join: bool = False,
    money: MoneyPlan = MoneyPlan.DECIMAL,
) -> Aggregates:
    """Collect the KPI aggregates of the given days (all days when None).

    ``orders`` and ``items`` may be slices of the snapshots, as long as they hold
    every order created on those days and every item of those orders. The order
    and category aggregates run as two concurrent Spark jobs, so that one job's
    tasks fill the cores the other's last tasks leave idle. ``hash_join``: see
    ``plan.hash_join_fits``; ``money``: see ``money.money_plan``.
    """
    cleaned_orders = with_order_date(clean_orders(orders))
    if dates is not None:
        cleaned_orders = on_days(cleaned_orders, dates)
    categories = clean_products(products).select(F.col("id").alias("product_id"), "category")
    cleaned_items = clean_order_items(items, money=money)
    facts = fact_items(cleaned_items, cleaned_orders, categories, hash_orders=hash_join, money=money)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kpi-categories") as pool:
        category_job = pool.submit(_collect, category_kpi_aggregates(facts, money=money))
        order_rows = _collect(order_kpi_aggregates(cleaned_orders))
        category_rows = category_job.result()
    if money is MoneyPlan.PARTS:
        category_rows = revenue_from_parts(category_rows)
    return with_item_totals(order_rows, category_rows), category_rows


def _collect(frame: DataFrame) -> list[dict[str, Any]]:
    """The rows as dicts, through Arrow (faster than ``Row`` objects)."""
    return frame.toArrow().to_pylist()


def compute_by_halves(
    compute: Callable[[list[date]], Aggregates], days: list[date], *, budget: list[int] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[date, str]]:
    """The aggregates of the days that compute, and the days that fail with their error.

    Failing days are isolated by halving: a few failing days among thousands cost a
    few dozen attempts. ``budget`` (attempts left, shared by the recursion) bounds the
    work when everything fails; past it, the error is raised.
    """
    budget = [MAX_ISOLATION_ATTEMPTS] if budget is None else budget
    if not days:
        return [], [], {}
    if budget[0] <= 0:
        raise StepFailed(f"could not isolate the failing KPI days within {MAX_ISOLATION_ATTEMPTS} attempts")
    budget[0] -= 1
    try:
        order_rows, category_rows = compute(days)
        return order_rows, category_rows, {}
    except Exception as error:  # any failure of a day's data is isolated, then reported
        if len(days) == 1:
            return [], [], {days[0]: f"{type(error).__name__}: {error}"[:1000]}
    middle = len(days) // 2
    first = compute_by_halves(compute, days[:middle], budget=budget)
    second = compute_by_halves(compute, days[middle:], budget=budget)
    return first[0] + second[0], first[1] + second[1], first[2] | second[2]


def order_days(orders: DeltaTable) -> list[date]:
    """Every UTC day on which a staged order was created, sorted."""
    created = delta_scan.read_rows(orders, ["created_at"]).column("created_at")
    days = pc.unique(pc.cast(created.combine_chunks().drop_null(), pa.date32()))
    return sorted(days.to_pylist())
