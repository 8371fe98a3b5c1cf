"""Odd values that pass validation never stall the pipeline (docs/contract.md, "Row rules").

Each scenario is a value that once failed the transform for good: every later batch
failed too, because the row stayed staged and its day was recomputed each time. Now
the value is either carried exactly to the KPIs or quarantined with its file, line and
rule, and the batches after it succeed with the reference's KPIs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from pipeline_tasks import layout
from pipeline_tasks.documents import TransformReport
from pipeline_tasks.io import aws, delta
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.steps import stage, transform
from pipeline_tasks.steps.transform import compute as transform_compute
from tests.builders import csv_bytes, item, order, product
from tests.reference import Reference

pytestmark = [pytest.mark.spark, pytest.mark.aws]

LATER = [
    ("orders_later.csv", csv_bytes("orders", [order(50, "2024-04-01 10:00:00")])),
    ("order_items_later.csv", csv_bytes("order_items", [item(500, 50, pid=1, price="4.00")])),
]


def _quarantine(settings) -> list[dict]:
    uri = settings.table_uri(delta.QUARANTINE_TABLE)
    return delta.read_quarantine(uri, delta.storage_options(settings)).to_pylist()


def test_a_category_too_long_for_a_dynamodb_key_is_quarantined_and_its_items_are_unknown(pipeline):
    long_category = "Ω" * 1100  # 2,200 bytes
    first = [
        ("products.csv", csv_bytes("products", [product(1, "Tops"), product(2, long_category)])),
        ("orders.csv", csv_bytes("orders", [order(10)])),
        ("order_items.csv", csv_bytes("order_items", [item(100, 10, pid=1), item(101, 10, pid=2, price="7.00")])),
    ]
    _, categories = pipeline.run_and_check([first, LATER])
    assert categories[("Unknown", "2024-03-01")]["daily_revenue"] == 7
    [record] = _quarantine(pipeline.settings)
    assert (record["source_key"], record["line"], record["reason"], record["key"]) == (
        "input/products.csv",
        3,
        "category_too_long",
        "2",
    )
    assert record["value"] == long_category[:2000]


@pytest.mark.parametrize(
    "created",
    [
        "0001-01-01 00:00:00",  # .NET's DateTime.MinValue: once an IllegalArgumentException in Spark
        "9999-12-31 10:00:00",  # a "never" sentinel
        "9999-12-31 23:00:00-05:00",  # year 10000 in UTC: does not parse, the order is excluded
        "0000-06-01 00:00:00",  # year 0: does not parse
    ],
)
def test_sentinel_dates_are_carried_or_excluded_and_a_correction_moves_the_order(pipeline, created):
    first = [
        ("orders.csv", csv_bytes("orders", [order(1, created), order(2, "2024-03-01 10:00:00")])),
        ("order_items.csv", csv_bytes("order_items", [item(10, 1), item(11, 2)])),
    ]
    correction = [("orders_fix.csv", csv_bytes("orders", [order(1, "2024-03-03 10:00:00")]))]
    pipeline.run_and_check([first, LATER, correction])
    pipeline.full_recompute()
    assert sorted(pipeline.order_kpis()) == ["2024-03-01", "2024-03-03", "2024-04-01"]


def _stage_and_transform(settings, spark, execution_id, files, event_time):
    s3 = aws.client(settings, "s3")
    entries = []
    for name, data in files:
        key = settings.input_prefix + name
        s3.put_object(Bucket=settings.bucket, Key=key, Body=data)
        entries.append({"key": key, "event_time": event_time.isoformat()})
    report = stage.run(settings, execution_id, entries)
    transform.run(settings, execution_id, spark=spark)
    return report


def test_a_rerun_of_an_older_batch_after_a_newer_one_leaves_the_newer_rows(pipeline, settings, spark):
    """Batch A failed, batch B (later uploads, same keys) succeeded, then A is rerun: B's rows stay."""
    a_time = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    b_time = a_time + timedelta(minutes=5)
    batch_a = [
        ("orders_a.csv", csv_bytes("orders", [order(1, "2024-03-01 10:00:00"), order(2, "2024-03-01 11:00:00")])),
        ("order_items_a.csv", csv_bytes("order_items", [item(10, 1, price="1.00"), item(20, 2, price="2.00")])),
    ]
    batch_b = [
        ("orders_b.csv", csv_bytes("orders", [order(1, "2024-03-05 10:00:00", status="Returned")])),
        ("order_items_b.csv", csv_bytes("order_items", [item(10, 1, price="100.00")])),
    ]
    _stage_and_transform(settings, spark, "batch-b", batch_b, b_time)
    report = _stage_and_transform(settings, spark, "batch-a-rerun-1", batch_a, a_time)
    assert report.tables["orders"].older == 1 and report.tables["order_items"].older == 1

    ref = Reference()  # the contract's order: A's files arrived first
    for name, data in batch_a:
        ref.load(name, data, event_time=a_time)
    for name, data in batch_b:
        ref.load(name, data, event_time=b_time)
    expected_orders, expected_categories = ref.kpis()
    assert pipeline.order_kpis() == expected_orders
    assert pipeline.category_kpis() == expected_categories
    assert pipeline.order_kpis()["2024-03-05"]["total_revenue"] == 100


def test_a_file_where_most_rows_break_a_rule_is_rejected_whole_and_the_share_is_a_setting(pipeline, settings):
    bad = [item(n, 1, price="5e18") for n in range(1, 4)] + [item(4, 1, price="1.00")]
    files = [("orders.csv", csv_bytes("orders", [order(1)])), ("order_items.csv", csv_bytes("order_items", bad))]
    execution = pipeline.run_batch(files)
    [rejected] = execution.invalid_files
    assert rejected["key"] == "input/order_items.csv"
    assert rejected["reason"].startswith("3 of 4 rows (75%) break the row rule sale_price_out_of_range")
    assert pipeline.keys(settings.rejected_prefix) == ["rejected/order_items.csv"]

    lenient = pipeline.settings.with_overrides(row_rule_max_share={"sale_price_out_of_range": 0.8})
    pipeline.settings = lenient
    execution = pipeline.run_batch([("order_items_again.csv", csv_bytes("order_items", bad))])
    assert execution.invalid_files == []
    assert [r["reason"] for r in _quarantine(settings)] == ["sale_price_out_of_range"] * 3


def test_a_day_whose_kpis_fail_to_compute_blocks_only_itself_and_is_retried(pipeline, monkeypatch):
    """Fault injection: computing 2024-03-02 fails (as an unforeseen value would); the other days publish."""
    real = transform_compute.compute_aggregates
    poisoned = date(2024, 3, 2)

    def failing_on_one_day(orders, items, products, dates, **options):
        if dates is None or poisoned in dates:
            raise ArithmeticError("injected: this day's data cannot be computed")
        return real(orders, items, products, dates, **options)

    first = [
        ("orders.csv", csv_bytes("orders", [order(1, "2024-03-01 10:00:00"), order(2, "2024-03-02 10:00:00")])),
        ("order_items.csv", csv_bytes("order_items", [item(10, 1, price="3.00"), item(20, 2, price="4.00")])),
    ]
    monkeypatch.setattr(transform_compute, "compute_aggregates", failing_on_one_day)
    pipeline.run_batch(first)  # the execution succeeds: one day blocked, not the batch
    assert sorted(pipeline.order_kpis()) == ["2024-03-01"]
    report = TransformReport.from_json(
        s3io.get_json(
            pipeline.s3, pipeline.settings.bucket, layout.report_key(pipeline.settings, "test-001", "transform")
        )
    )
    assert list(report.blocked_days) == ["2024-03-02"]
    assert "injected" in report.blocked_days["2024-03-02"]

    second = [("orders_later.csv", csv_bytes("orders", [order(3, "2024-03-03 10:00:00")]))]
    pipeline.run_batch(second)  # still failing: the blocked day is retried, the new day published
    assert sorted(pipeline.order_kpis()) == ["2024-03-01", "2024-03-03"]

    monkeypatch.setattr(transform_compute, "compute_aggregates", real)
    third = [("orders_more.csv", csv_bytes("orders", [order(4, "2024-03-04 10:00:00")]))]
    pipeline.run_batch(third)  # fixed: the next run computes the blocked day too
    reference = Reference()
    for name, data in first + second + third:
        reference.load(name, data)
    orders, categories = reference.kpis()
    assert pipeline.order_kpis() == orders and pipeline.category_kpis() == categories
