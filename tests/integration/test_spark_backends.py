"""The same transform through Spark Connect and through delta-spark's own reader."""

from __future__ import annotations

import pytest
from builders import csv_bytes, item, order, product
from conftest import Pipeline
from reference import Reference

from pipeline_tasks.io import spark as spark_io
from pipeline_tasks.local.connect import SparkConnectServer

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
    ref = Reference()
    for batch in BATCHES:
        pipeline.run_batch(batch)
        for name, data in batch:
            ref.load(name, data)
        expected_orders, expected_categories = ref.kpis()
        assert pipeline.order_kpis() == expected_orders
        assert pipeline.category_kpis() == expected_categories


def test_transform_through_a_spark_connect_server(settings):
    with SparkConnectServer(settings) as server:
        remote = settings.with_overrides(spark_remote=server.url)
        session = spark_io.session(remote)
        try:
            assert type(session).__module__.startswith("pyspark.sql.connect")
            _run(Pipeline(remote, session))
        finally:
            session.stop()


def test_delta_spark_reader_gives_the_same_kpis(settings, spark):
    _run(Pipeline(settings.with_overrides(spark_delta_reader="delta-spark"), spark))
