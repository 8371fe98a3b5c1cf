"""TransformationTask: clean the staged snapshot, compute KPIs, write DynamoDB.

Incremental: only the ``order_date``s the staged changes can affect are
recomputed (see ``transforms.incremental``), from the Delta change feed since
the versions recorded in ``state/kpi_checkpoint.json``. For those days the
tables are made to hold exactly the contract's KPIs: changed items are put,
stale ones deleted, unchanged ones left alone. The checkpoint moves only after
every write succeeded, so a failed run is repeated in full by the next one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipeline_tasks.contract import DATASETS, ORDER_ITEMS, ORDERS, PRODUCTS, UNKNOWN
from pipeline_tasks.io import delta, dynamodb
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.io import spark as spark_io
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps.stage import report_key
from pipeline_tasks.transforms.cleaning import clean_order_items, clean_orders, clean_products, product_category
from pipeline_tasks.transforms.incremental import affected_dates, recategorised_products
from pipeline_tasks.transforms.kpis import (
    CATEGORY_KPI_COLUMNS,
    ORDER_KPI_COLUMNS,
    category_kpi_aggregates,
    category_kpi_items,
    fact_items,
    order_kpi_aggregates,
    order_kpi_items,
    with_order_date,
)

log = logging.getLogger(__name__)

#: Above this many keys to look up, one consistent Scan beats BatchGetItem.
SCAN_THRESHOLD = 20_000


def order_kpis_spec(settings: Settings) -> dynamodb.TableSpec:
    return dynamodb.TableSpec(settings.order_kpis_table, ("order_date",), ORDER_KPI_COLUMNS)


def category_kpis_spec(settings: Settings) -> dynamodb.TableSpec:
    return dynamodb.TableSpec(settings.category_kpis_table, ("category", "order_date"), CATEGORY_KPI_COLUMNS)


def checkpoint_key(settings: Settings) -> str:
    return f"{settings.state_prefix}kpi_checkpoint.json"


def _read(spark: SparkSession, settings: Settings, name: str, version: int) -> DataFrame:
    uri = spark_io.spark_uri(settings.table_uri(name))
    return spark.read.format("delta").option("versionAsOf", version).load(uri)


def _changes(spark: SparkSession, settings: Settings, name: str, after: int, until: int) -> DataFrame:
    uri = spark_io.spark_uri(settings.table_uri(name))
    reader = spark.read.format("delta").option("readChangeFeed", "true")
    return reader.option("startingVersion", after + 1).option("endingVersion", until).load(uri)


def compute_aggregates(
    orders: DataFrame, items: DataFrame, products: DataFrame, dates: list[str] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Collect the KPI aggregates of the given days (all days when None)."""
    cleaned_orders = with_order_date(clean_orders(orders))
    if dates is not None:
        cleaned_orders = cleaned_orders.filter(F.col("order_date").isin(dates))
    categories = clean_products(products).select(F.col("id").alias("product_id"), "category")
    facts = fact_items(clean_order_items(items), cleaned_orders, categories)
    order_rows = [r.asDict() for r in order_kpi_aggregates(cleaned_orders, facts).collect()]
    category_rows = [r.asDict() for r in category_kpi_aggregates(facts).collect()]
    return order_rows, category_rows


def run(
    settings: Settings,
    execution_id: str,
    *,
    spark: SparkSession | None = None,
    full: bool = False,
) -> dict[str, Any]:
    """Bring the KPI tables up to date with the staged snapshot.

    Args:
        settings: Lake, bucket and table names.
        execution_id: Recorded on every item written.
        spark: A session to reuse (one is started from Settings otherwise).
        full: Recompute every day, ignoring the checkpoint.

    Returns:
        The transform report (also written to ``reports/{execution_id}/transform.json``).
    """
    started = time.perf_counter()
    s3 = s3io.client(settings, "s3")
    options = delta.storage_options(settings)
    versions = {d.name: delta.ensure_table(settings.table_uri(d.name), d, options).version() for d in DATASETS}
    checkpoint = None if full else s3io.get_json_or_none(s3, settings.bucket, checkpoint_key(settings))
    spark = spark or spark_io.session(settings)

    orders = _read(spark, settings, ORDERS.name, versions[ORDERS.name])
    items = _read(spark, settings, ORDER_ITEMS.name, versions[ORDER_ITEMS.name])
    products = _read(spark, settings, PRODUCTS.name, versions[PRODUCTS.name])

    dates: list[str] | None = None
    categories_before: set[str] = set()
    mode = "full"
    if checkpoint is not None:
        seen = checkpoint["versions"]
        mode = "incremental"
        if all(seen.get(name) == version for name, version in versions.items()):
            dates = []
        else:
            products_before = _read(spark, settings, PRODUCTS.name, seen[PRODUCTS.name])
            affected = affected_dates(
                orders,
                items,
                _changes(spark, settings, ORDERS.name, seen[ORDERS.name], versions[ORDERS.name]),
                _changes(spark, settings, ORDER_ITEMS.name, seen[ORDER_ITEMS.name], versions[ORDER_ITEMS.name]),
                recategorised_products(products_before, products),
            )
            dates = sorted(r["order_date"] for r in affected.collect())
            categories_before = {r["category"] for r in product_category(products_before).distinct().collect()}
    log.info("transform (%s): %s day(s) to recompute", mode, "all" if dates is None else len(dates))

    order_rows, category_rows = compute_aggregates(orders, items, products, dates) if dates != [] else ([], [])
    desired_orders = {(d,): item for d, item in order_kpi_items(order_rows).items()}
    desired_categories = category_kpi_items(category_rows)

    dynamodb_client = s3io.client(settings, "dynamodb")
    order_spec, category_spec = order_kpis_spec(settings), category_kpis_spec(settings)
    if dates is None:
        existing_orders = {order_spec.key_of(i): i for i in dynamodb.scan_items(dynamodb_client, order_spec)}
        existing_categories = {category_spec.key_of(i): i for i in dynamodb.scan_items(dynamodb_client, category_spec)}
    else:
        categories_now = {r["category"] for r in product_category(products).distinct().collect()} if dates else set()
        categories = categories_before | categories_now | {UNKNOWN} | {c for c, _ in desired_categories}
        category_keys = [(c, d) for c in sorted(categories) for d in dates]
        existing_orders = dynamodb.get_items(dynamodb_client, order_spec, [(d,) for d in dates])
        if len(category_keys) > SCAN_THRESHOLD:
            wanted = set(dates)
            existing_categories = {
                category_spec.key_of(i): i
                for i in dynamodb.scan_items(dynamodb_client, category_spec)
                if i["order_date"] in wanted
            }
        else:
            existing_categories = dynamodb.get_items(dynamodb_client, category_spec, category_keys)

    resource = _dynamodb_resource(settings)
    extra = {"execution_id": execution_id, "updated_at": datetime.now(UTC).isoformat(timespec="seconds")}
    written = {}
    for spec, desired, existing in (
        (order_spec, desired_orders, existing_orders),
        (category_spec, desired_categories, existing_categories),
    ):
        puts, deletes, unchanged = dynamodb.diff_items(spec, desired, existing)
        dynamodb.write_diff(resource, spec, puts, deletes, extra)
        written[spec.name] = {"put": len(puts), "deleted": len(deletes), "unchanged": unchanged}
        log.info("%s: %d put, %d deleted, %d unchanged", spec.name, len(puts), len(deletes), unchanged)

    s3io.put_json(s3, settings.bucket, checkpoint_key(settings), {"versions": versions, "execution_id": execution_id})
    report = {
        "execution_id": execution_id,
        "mode": mode,
        "versions": versions,
        "previous_versions": None if checkpoint is None else checkpoint["versions"],
        "affected_dates": dates,
        "tables": written,
        "order_kpis": [_jsonable(i) for i in desired_orders.values()],
        "seconds": round(time.perf_counter() - started, 3),
    }
    s3io.put_json(s3, settings.bucket, report_key(settings, execution_id, "transform"), report)
    return report


def _jsonable(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if not isinstance(v, (int, str)) else v) for k, v in item.items()}


def _dynamodb_resource(settings: Settings) -> Any:
    import boto3

    return boto3.resource(
        "dynamodb",
        region_name=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
    )
