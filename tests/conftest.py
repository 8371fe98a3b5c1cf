"""Shared fixtures: one moto server process and one Spark session per test run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipeline_tasks import layout
from pipeline_tasks.documents import TransformReport
from pipeline_tasks.io import aws, dynamodb, published
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.local.runner import Execution, direct_steps, process_batch
from pipeline_tasks.local.stack import MotoServer, provision
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps import transform

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "thelook"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def spark(moto_server: MotoServer) -> Iterator[Any]:
    from pipeline_tasks.io import spark as spark_io

    settings = moto_server.settings(Settings(spark_master="local[2]", spark_jars_dir=str(REPO / ".jars")))
    session = spark_io.session(settings)
    yield session
    session.stop()


@pytest.fixture
def settings(moto_server: MotoServer) -> Settings:
    """Settings with a bucket and KPI tables of its own, so tests never share state."""
    suffix = uuid.uuid4().hex[:10]
    value = moto_server.settings(
        Settings(
            bucket=f"test-{suffix}",
            order_kpis_table=f"OrderKPIs-{suffix}",
            category_kpis_table=f"CategoryKPIs-{suffix}",
            spark_jars_dir=str(REPO / ".jars"),
        )
    )
    provision(value)
    return value


class Pipeline:
    """Drives batches through the real steps and reads the KPI tables back."""

    def __init__(self, settings: Settings, spark: Any) -> None:
        self.settings = settings
        self.spark = spark
        self.s3 = aws.client(settings, "s3")
        self.batches = 0

    def run_batch(self, files: list[tuple[str, bytes]]) -> Execution:
        self.batches += 1
        keys = []
        for name, data in files:
            key = self.settings.input_prefix + name
            self.s3.put_object(Bucket=self.settings.bucket, Key=key, Body=data)
            keys.append(key)
        execution = process_batch(
            self.settings,
            f"test-{self.batches:03d}",
            keys,
            steps=direct_steps(self.settings, self.spark),
            progress=lambda _: None,
        )
        assert execution.status == "SUCCEEDED", execution.error
        return execution

    def run_and_check(self, batches: list[list[tuple[str, bytes]]]) -> tuple[dict, dict]:
        """Run batches in order; after each, both tables must equal the reference's KPIs (§6)."""
        from tests.reference import Reference

        ref = Reference()
        for batch in batches:
            self.run_batch(batch)
            for name, data in batch:
                ref.load(name, data)
            expected_orders, expected_categories = ref.kpis()
            assert self.order_kpis() == expected_orders
            assert self.category_kpis() == expected_categories
            assert self.recorded_kpis() == (expected_orders, expected_categories)
        return self.order_kpis(), self.category_kpis()

    def recorded_kpis(self) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], dict[str, Any]]]:
        """Both tables as the published-KPI record holds them; the checkpoint must vouch for every day."""
        checkpoint = s3io.get_json(self.s3, self.settings.bucket, layout.checkpoint_key(self.settings))
        assert checkpoint["published"]["dirty_days"] == []
        specs = transform.order_kpis_spec(self.settings), transform.category_kpis_spec(self.settings)
        record = published.read(self.s3, self.settings.bucket, layout.record_key(self.settings), specs)
        days = record.column(published.DAY).to_pylist()

        def values(spec: dynamodb.TableSpec) -> dict[Any, dict[str, Any]]:
            items = published.items_on(record, spec, days)
            return {k if len(k) > 1 else k[0]: {v: _number(i[v]) for v in spec.values} for k, i in items.items()}

        return values(specs[0]), values(specs[1])

    def full_recompute(self) -> TransformReport:
        return transform.run(self.settings, "full-recompute", spark=self.spark, full=True)

    def order_kpis(self) -> dict[str, dict[str, Any]]:
        client = aws.client(self.settings, "dynamodb")
        spec = transform.order_kpis_spec(self.settings)
        return {i["order_date"]: {k: _number(i[k]) for k in spec.values} for i in dynamodb.scan_items(client, spec)}

    def category_kpis(self) -> dict[tuple[str, str], dict[str, Any]]:
        client = aws.client(self.settings, "dynamodb")
        spec = transform.category_kpis_spec(self.settings)
        return {
            (i["category"], i["order_date"]): {k: _number(i[k]) for k in spec.values}
            for i in dynamodb.scan_items(client, spec)
        }

    def keys(self, prefix: str) -> list[str]:
        return list(s3io.list_keys(self.s3, self.settings.bucket, prefix))


def _number(value: Any) -> Decimal:
    return Decimal(str(value))


@pytest.fixture
def pipeline(settings: Settings, spark: Any) -> Pipeline:
    return Pipeline(settings, spark)
