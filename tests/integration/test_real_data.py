"""The real TheLook exports and the lab sample, end to end, against the reference.

A small slice of the TheLook exports lives in the repository (tests/data/thelook_slice,
cut by tests/data/make_thelook_slice.py), so the real-data test always runs; the tests
of the full data run only where it is present (SHARED_DATA).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA
from tests.data import make_thelook_slice
from tests.reference import Reference

pytestmark = [pytest.mark.spark, pytest.mark.aws, pytest.mark.slow]

THELOOK_SLICE = Path(__file__).resolve().parents[1] / "data" / "thelook_slice"

needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"real data not found at {SHARED_DATA}")


def _files(*paths: Path) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in paths]


def _thelook_batches(root: Path) -> list[list[tuple[str, bytes]]]:
    """The BigQuery snapshot's products and orders, then the sample's products and order items."""
    snapshot, sample = root / make_thelook_slice.SNAPSHOT, root / make_thelook_slice.SAMPLE
    return [
        _files(snapshot / "products.csv", snapshot / "orders.csv"),
        _files(sample / "products_sample.csv", sample / "order_items_sample.csv"),
    ]


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


def test_thelook_slice(pipeline):
    """The committed slice: 359 orders over 14 days, 66 items (52 of kept orders), 93 + 12 product rows."""
    orders, categories = _check(pipeline, _thelook_batches(THELOOK_SLICE))
    assert len(orders) == 14
    assert sum(int(v["total_orders"]) for v in orders.values()) == 359
    assert sum(int(v["total_items_sold"]) for v in orders.values()) == 52
    assert any(v["return_rate"] > 0 for v in orders.values())
    assert len({c for c, _ in categories}) > 5


@needs_data
def test_thelook_slice_is_cut_from_the_full_data():
    """The committed slice is exactly what make_thelook_slice.py cuts from the full data."""
    for name, (data, _) in make_thelook_slice.cut(SHARED_DATA).items():
        assert (THELOOK_SLICE / name).read_bytes() == data, name


@needs_data
def test_thelook_bigquery_export(pipeline):
    orders, categories = _check(pipeline, _thelook_batches(SHARED_DATA))
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
