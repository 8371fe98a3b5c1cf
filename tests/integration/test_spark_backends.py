"""The same transform through Spark Connect and through delta-spark's own reader."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest

from pipeline_tasks import layout
from pipeline_tasks.contract import ORDER_ITEMS, ORDERS, PRODUCTS
from pipeline_tasks.documents import StageReport, TransformReport
from pipeline_tasks.io import delta
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.io import spark as spark_io
from pipeline_tasks.local.connect import SparkConnectServer
from pipeline_tasks.money import MoneyPlan
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps import transform
from pipeline_tasks.transforms.cleaning import clean_order_items, clean_orders
from pipeline_tasks.transforms.kpis import fact_items, with_order_date
from tests.builders import csv_bytes, item, order, product
from tests.conftest import Pipeline

pytestmark = [pytest.mark.spark, pytest.mark.aws, pytest.mark.slow]

BATCHES = [
    [
        ("products.csv", csv_bytes("products", [product(1, "Tops"), product(2, "Jeans", cost="0")])),
        ("orders.csv", csv_bytes("orders", [order(1), order(2, "2024-03-02 08:00:00+09:00", status="Returned")])),
        ("order_items.csv", csv_bytes("order_items", [item(1, 1, pid=1), item(2, 2, pid=2, price="3.335")])),
    ],
    [("orders_move.csv", csv_bytes("orders", [order(1, "2024-03-04 10:00:00")]))],
]


def _run(pipeline: Pipeline) -> None:
    pipeline.run_and_check(BATCHES)


def test_transform_through_a_spark_connect_server(settings):
    """The client runs in its own process: PySpark refuses a Connect session beside a classic one."""
    with SparkConnectServer(settings) as server:
        env = {**os.environ, **settings.to_env(), "PIPELINE_SPARK_REMOTE": server.url}
        client = subprocess.run(
            [sys.executable, "-m", "tests.integration.test_spark_backends"],
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    assert client.returncode == 0, client.stdout[-3000:] + client.stderr[-3000:]
    assert "connect session: pyspark.sql.connect" in client.stdout


def test_delta_spark_reader_gives_the_same_kpis(settings, spark):
    _run(Pipeline(settings.with_overrides(spark_delta_reader="delta-spark"), spark))


def test_the_fact_join_hashes_the_orders_only_when_asked_and_both_joins_agree(settings, spark):
    pipeline = Pipeline(settings, spark)
    pipeline.run_and_check(BATCHES)
    options = delta.storage_options(settings)
    orders, items, products = (
        transform._snapshot(spark, settings, delta.ensure_table(settings.table_uri(d.name), d, options), d)
        for d in (ORDERS, ORDER_ITEMS, PRODUCTS)
    )
    categories = products.selectExpr("id AS product_id", "category")
    for hash_orders in (False, True):
        cleaned = clean_order_items(items), with_order_date(clean_orders(orders)), categories
        facts = fact_items(*cleaned, hash_orders=hash_orders)
        plan = facts._jdf.queryExecution().executedPlan().toString()
        assert ("ShuffledHashJoin" in plan) is hash_orders, plan
    merged, hashed = (
        [sorted(rows, key=str) for rows in transform.compute_aggregates(orders, items, products, None, hash_join=h)]
        for h in (False, True)
    )
    assert hashed == merged
    assert [len(rows) for rows in merged] == [2, 2]


# Prices at the edges of the int64-parts plan: the smallest positive value, zero, a negative
# value, no price, all 18 decimals, a value truncated past them, an exponent form.
EDGE_PRICES = [
    "0.000000000000000001",
    "0",
    "-0.5",
    "",
    "123456789.123456789123456789",
    "89.9899978637695310001",
    "1e-9",
]


def _edge_batches(prices: list[str]) -> list[list[tuple[str, bytes]]]:
    orders = [order(n, f"2024-03-0{1 + n % 3} 10:00:00", user=n % 2) for n in range(1, len(prices) + 1)]
    items = [item(n, n, pid=1 + n % 2, price=price) for n, price in enumerate(prices, start=1)]
    return [
        [
            ("products.csv", csv_bytes("products", [product(1, "Tops"), product(2, "Jeans")])),
            ("orders.csv", csv_bytes("orders", orders)),
            ("order_items.csv", csv_bytes("order_items", items)),
        ]
    ]


def _transform_report(pipeline: Pipeline) -> TransformReport:
    key = layout.report_key(pipeline.settings, f"test-{pipeline.batches:03d}", "transform")
    return TransformReport.from_json(s3io.get_json(pipeline.s3, pipeline.settings.bucket, key))


def _aggregates(settings: Settings, spark, money: MoneyPlan) -> list[list[dict]]:
    options = delta.storage_options(settings)
    frames = [
        transform._snapshot(spark, settings, delta.ensure_table(settings.table_uri(d.name), d, options), d)
        for d in (ORDERS, ORDER_ITEMS, PRODUCTS)
    ]
    return [sorted(rows, key=str) for rows in transform.compute_aggregates(*frames, None, money=money)]


def test_int64_money_parts_and_decimals_give_the_same_exact_kpis(settings, spark):
    pipeline = Pipeline(settings, spark)
    pipeline.run_and_check(_edge_batches(EDGE_PRICES))
    assert _transform_report(pipeline).money_sums == "int64 parts"
    items = delta.ensure_table(settings.table_uri(ORDER_ITEMS.name), ORDER_ITEMS, delta.storage_options(settings))
    assert transform.money_parts_fit(items)
    decimals, parts = _aggregates(settings, spark, MoneyPlan.DECIMAL), _aggregates(settings, spark, MoneyPlan.PARTS)
    assert parts == decimals
    revenue = sum((row["revenue"] for row in parts[1]), Decimal(0))
    assert revenue == Decimal("123456789.123456789123456789").quantize(Decimal("1E-18"), rounding=ROUND_DOWN) + (
        Decimal("89.989997863769531000") + Decimal("0.000000001") + Decimal("1E-18")
    )


def test_prices_just_below_the_parts_limit_sum_exactly_and_larger_ones_are_quarantined(settings, spark):
    # 1,200 items of almost 10^18 over six (category, day) groups: 2·10^20 per group, past both
    # a 64-bit sum and decimal(38, 18).
    largest = "999999999999999999.999999999999999999"
    pipeline = Pipeline(settings, spark)
    orders, _ = pipeline.run_and_check(_edge_batches([largest] * 1200 + ["3000000000000000000.25", "2.5"]))
    assert _transform_report(pipeline).money_sums == "int64 parts"
    assert sum(o["total_revenue"] for o in orders.values()) == Decimal(largest) * 1200 + Decimal("2.50")
    key = layout.report_key(settings, "test-001", "stage")
    stage_report = StageReport.from_json(s3io.get_json(pipeline.s3, settings.bucket, key))
    [items] = [f for f in stage_report.files if f.dataset == "order_items"]
    assert items.rows_not_staged == {"sale_price_out_of_range": 1}


if __name__ == "__main__":  # the Connect client of test_transform_through_a_spark_connect_server
    remote = Settings.from_env()
    session = spark_io.session(remote)
    print("connect session:", type(session).__module__)
    try:
        _run(Pipeline(remote, session))
    finally:
        session.stop()
