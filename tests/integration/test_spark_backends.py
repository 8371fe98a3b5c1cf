"""The same transform through Spark Connect and through delta-spark's own reader."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pytest
from builders import csv_bytes, item, order, product
from conftest import Pipeline

from pipeline_tasks.contract import ORDER_ITEMS, ORDERS, PRODUCTS
from pipeline_tasks.io import delta
from pipeline_tasks.io import spark as spark_io
from pipeline_tasks.local.connect import SparkConnectServer
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps import transform
from pipeline_tasks.transforms.cleaning import clean_order_items, clean_orders
from pipeline_tasks.transforms.kpis import fact_items, with_order_date

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
            [sys.executable, __file__], env=env, capture_output=True, text=True, timeout=600, check=False
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


if __name__ == "__main__":  # the Connect client of test_transform_through_a_spark_connect_server
    remote = Settings.from_env()
    session = spark_io.session(remote)
    print("connect session:", type(session).__module__)
    try:
        _run(Pipeline(remote, session))
    finally:
        session.stop()
