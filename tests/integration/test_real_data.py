"""The real TheLook exports and the lab sample, end to end, against the reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA
from tests.reference import Reference

pytestmark = [pytest.mark.spark, pytest.mark.aws, pytest.mark.slow]

needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"real data not found at {SHARED_DATA}")


def _files(*paths: Path) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in paths]


def _check(pipeline, batches):
    ref = Reference()
    for batch in batches:
        execution = pipeline.run_batch(batch)
        assert not execution.invalid_files, execution.invalid_files
        for name, data in batch:
            ref.load(name, data)
    expected_orders, expected_categories = ref.kpis()
    actual_orders, actual_categories = pipeline.order_kpis(), pipeline.category_kpis()
    assert actual_orders == expected_orders
    assert actual_categories == expected_categories
    return actual_orders, actual_categories


@needs_data
def test_thelook_bigquery_export(pipeline):
    snapshot, sample = SHARED_DATA / "bq_snapshot_2025-01-25", SHARED_DATA / "sample_2025"
    orders, categories = _check(
        pipeline,
        [
            _files(snapshot / "products.csv", snapshot / "orders.csv"),
            _files(sample / "products_sample.csv", sample / "order_items_sample.csv"),
        ],
    )
    assert sum(int(v["total_orders"]) for v in orders.values()) > 100_000
    assert sum(int(v["total_items_sold"]) for v in orders.values()) > 0
    assert len({c for c, _ in categories}) > 5


@needs_data
def test_lab_sample_in_three_batches(pipeline):
    lab = SHARED_DATA / "lab6_synthetic"
    orders, _ = _check(
        pipeline,
        [
            _files(lab / "products" / "products.csv"),
            _files(*sorted((lab / "orders").glob("*.csv"))),
            _files(*sorted((lab / "order_items").glob("*.csv"))),
        ],
    )
    assert sum(int(v["total_items_sold"]) for v in orders.values()) == 15_000
