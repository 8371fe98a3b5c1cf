"""Steps against a moto server: validation results, staging funnel, moves, failures."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from pipeline_tasks import layout
from pipeline_tasks.documents import TransformReport
from pipeline_tasks.io import aws, delta
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.local.runner import direct_steps, process_batch
from pipeline_tasks.steps import stage, transform, validate
from tests.builders import csv_bytes, item, order, product
from tests.reference import Reference

pytestmark = [pytest.mark.aws]

ORDERS_HEADER = "order_id,user_id,status,created_at,returned_at,shipped_at,delivered_at,num_of_item"


def _put(settings, files):
    s3 = aws.client(settings, "s3")
    keys = []
    for name, data in files:
        key = settings.input_prefix + name
        s3.put_object(Bucket=settings.bucket, Key=key, Body=data)
        keys.append(key)
    return keys


def test_validation_result_document_and_staging_funnel(settings):
    messy = "\n".join(
        [
            f"{ORDERS_HEADER},gender",
            "1,10,Complete,2024-01-31 23:00:00,,,,1,F",
            "2,10,Complete,2024-02-01 10:00:00,,,,1",  # one field short
            "abc,10,Complete,2024-02-01 10:00:00,,,,1,M",
            "1,11,Shipped,2024-02-01 01:00:00,,,,2,F",  # same key again: moves to February
            "3,12,  Returned ,2024-02-02 10:00:00Z,,,,1,M",
            "4,12,Complete,,,,,1,M",  # staged, but cleaning will exclude it: no created_at
        ]
    ).encode()
    keys = _put(
        settings,
        [
            ("orders_messy.csv", messy),
            ("orders_later.csv", csv_bytes("orders", [order(3, "2024-02-03 00:00:00", user=13)])),
            ("orders.txt", b"not ours"),
        ],
    )
    result = validate.run(settings, "exec-1", keys)
    s3 = aws.client(settings, "s3")
    assert s3io.get_json(s3, settings.bucket, "results/exec-1.json") == result.to_json()
    assert [f.key for f in result.valid_files] == ["input/orders_messy.csv", "input/orders_later.csv"]
    assert result.valid_files[0].rows_not_staged == {"wrong_field_count": 1, "non_integer_key": 1}
    assert [f.key for f in result.invalid_files] == ["input/orders.txt"]
    assert "unknown dataset" in result.invalid_files[0].reason

    report = stage.run(settings, "exec-1", result.valid_files)
    assert report.files[0].to_json() == {
        "key": "input/orders_messy.csv",
        "dataset": "orders",
        "rows_read": 6,
        "rows_not_staged": {"wrong_field_count": 1, "non_integer_key": 1},
        "rows_quarantined": 2,
        "rows_staged": 4,
        "rows_excluded_by_cleaning": {"created_at_missing": 1},
        "rows_kept": 3,
    }
    quarantined = delta.read_quarantine(report.quarantine.table, delta.storage_options(settings)).to_pylist()
    assert [(q["source_key"], q["line"], q["reason"], q["execution_id"]) for q in quarantined] == [
        ("input/orders_messy.csv", 3, "wrong_field_count", "exec-1"),
        ("input/orders_messy.csv", 4, "non_integer_key", "exec-1"),
    ]
    assert quarantined[0]["row"] == "2,10,Complete,2024-02-01 10:00:00,,,,1"
    assert quarantined[1]["key"] == "abc" and '"status": "Complete"' in quarantined[1]["row"]
    merge = report.tables["orders"]
    assert (merge.inserted, merge.updated, merge.rows_superseded_in_batch) == (3, 0, 2)

    table = DeltaTable(settings.table_uri("orders"), storage_options=delta.storage_options(settings))
    rows = {r["order_id"]: r for r in table.to_pyarrow_table().to_pylist()}
    assert set(rows) == {1, 3, 4}  # staging keeps order 4 (no created_at); cleaning drops it later
    assert rows[4]["created_at"] is None and rows[4]["year"] is None
    assert (rows[1]["user_id"], rows[1]["status"], rows[1]["year"], rows[1]["month"]) == (11, "Shipped", 2024, 2)
    assert rows[3]["user_id"] == 13 and rows[3]["_source_key"] == "input/orders_later.csv"
    assert rows[3]["_execution_id"] == "exec-1"
    assert table.metadata().partition_columns == ["year", "month"]

    # A later batch moves order 1 back to January: still one row, now in the January partition.
    keys = _put(settings, [("orders_fix.csv", csv_bytes("orders", [order(1, "2024-01-15 00:00:00", user=11)]))])
    report = stage.run(settings, "exec-2", keys)
    assert (report.tables["orders"].inserted, report.tables["orders"].updated) == (0, 1)
    staged = DeltaTable(settings.table_uri("orders"), storage_options=delta.storage_options(settings))
    ids = staged.to_pyarrow_table().column("order_id")
    assert sorted(ids.to_pylist()) == [1, 3, 4]
    january = staged.to_pyarrow_table(filters=[("month", "=", 1)])
    assert january.column("order_id").to_pylist() == [1]
    # The same file again changes nothing: no new version content, no update.
    again = stage.run(settings, "exec-3", keys)
    assert (again.tables["orders"].updated, again.tables["orders"].unchanged) == (0, 1)
    # Staging the first batch again quarantines its rows once, not twice.
    stage.run(settings, "exec-1", result.valid_files)
    assert len(delta.read_quarantine(report.quarantine.table, delta.storage_options(settings))) == 2
    assert pc.sum(pc.equal(staged.to_pyarrow_table().column("order_id"), 1)).as_py() == 1


def test_invalid_files_are_rejected_with_their_reason(settings):
    keys = _put(settings, [("order_items_bad.csv", b"id,order_id\n1,2\n"), ("products.csv", b"")])
    execution = process_batch(settings, "exec-r", keys, steps=direct_steps(settings), progress=lambda _: None)
    assert execution.status == "SUCCEEDED"
    s3 = aws.client(settings, "s3")
    assert list(s3io.list_keys(s3, settings.bucket, "input/")) == []
    assert sorted(s3io.list_keys(s3, settings.bucket, "rejected/")) == [
        "rejected/order_items_bad.csv",
        "rejected/products.csv",
    ]
    head = s3.head_object(Bucket=settings.bucket, Key="rejected/products.csv")
    assert head["Metadata"]["rejection-reason"] == "empty file (0 bytes)"
    assert {f["key"]: f["reason"] for f in execution.invalid_files}["input/products.csv"] == "empty file (0 bytes)"


@pytest.mark.spark
def test_a_failed_execution_leaves_its_files_for_a_rerun(pipeline, settings):
    files = [
        ("orders.csv", csv_bytes("orders", [order(1), order(2, "2024-03-02 00:00:00")])),
        ("order_items.csv", csv_bytes("order_items", [item(1, 1), item(2, 2, price="4.5")])),
        ("junk.csv", b"whatever"),
    ]
    keys = _put(settings, files)
    dynamodb = aws.client(settings, "dynamodb")
    dynamodb.delete_table(TableName=settings.category_kpis_table)  # the transform's write will fail

    failed = process_batch(
        settings, "exec-f1", keys, steps=direct_steps(settings, pipeline.spark), progress=lambda _: None
    )
    assert failed.status == "FAILED" and "ResourceNotFoundException" in failed.error
    assert pipeline.keys("input/") == ["input/order_items.csv", "input/orders.csv"]
    assert pipeline.keys("archive/") == []
    assert pipeline.keys("rejected/") == ["rejected/junk.csv"]

    from pipeline_tasks.local.stack import provision

    provision(settings)  # the cause is fixed; the same files run again
    rerun = process_batch(
        settings, "exec-f2", keys[:2], steps=direct_steps(settings, pipeline.spark), progress=lambda _: None
    )
    assert rerun.status == "SUCCEEDED", rerun.error
    assert pipeline.keys("input/") == []
    assert pipeline.keys("archive/") == ["archive/order_items.csv", "archive/orders.csv"]
    ref = Reference()
    for name, data in files:
        ref.load(name, data)
    expected_orders, expected_categories = ref.kpis()
    assert pipeline.order_kpis() == expected_orders
    assert pipeline.category_kpis() == expected_categories


def test_a_transform_with_nothing_new_to_compute_starts_no_jvm(pipeline, settings):
    pipeline.run_batch(
        [("orders.csv", csv_bytes("orders", [order(1)])), ("order_items.csv", csv_bytes("order_items", [item(1, 1)]))]
    )
    before = pipeline.order_kpis()

    # No session handed over: the transform would start its own JVM if it needed one.
    report = transform.run(settings, "nothing-new")

    assert report.mode == "incremental"
    assert report.affected_dates == ()
    assert report.spark_requested is False
    assert report.tables[settings.order_kpis_table].put == 0
    assert pipeline.order_kpis() == before


@pytest.mark.spark
def test_a_run_that_fails_while_writing_has_its_days_read_back_from_dynamodb(pipeline, settings):
    """The published-KPI record: a failed write leaves its days dirty, and the next run reads them back."""
    day = "2024-03-01"
    first = [
        ("products.csv", csv_bytes("products", [product(1, "Tops"), product(2, "Jeans")])),
        ("orders.csv", csv_bytes("orders", [order(1, f"{day} 10:00:00"), order(2, f"{day} 11:00:00")])),
        ("order_items.csv", csv_bytes("order_items", [item(1, 1, pid=1), item(2, 2, pid=2, price="4.5")])),
    ]
    pipeline.run_batch(first)
    s3 = aws.client(settings, "s3")
    checkpoint = s3io.get_json(s3, settings.bucket, layout.checkpoint_key(settings))
    assert checkpoint["published"]["dirty_days"] == []

    # Only Tops changes; the Jeans item on the same day is left as it was.
    second = [("order_items_2.csv", csv_bytes("order_items", [item(1, 1, pid=1, price="7.25")]))]
    keys = _put(settings, second)
    aws.client(settings, "dynamodb").delete_table(TableName=settings.category_kpis_table)
    steps = direct_steps(settings, pipeline.spark)
    failed = process_batch(settings, "exec-w1", keys, steps=steps, progress=lambda _: None)
    assert failed.status == "FAILED" and "ResourceNotFoundException" in failed.error
    dirty = s3io.get_json(s3, settings.bucket, layout.checkpoint_key(settings))
    assert dirty["versions"] == checkpoint["versions"]
    assert dirty["published"]["dirty_days"] == [day]

    from pipeline_tasks.local.stack import provision

    provision(settings)  # an empty CategoryKPIs: what the record says about the day no longer holds
    rerun = process_batch(settings, "exec-w2", keys, steps=steps, progress=lambda _: None)
    assert rerun.status == "SUCCEEDED", rerun.error
    ref = Reference()
    for name, data in first + second:
        ref.load(name, data)
    expected_orders, expected_categories = ref.kpis()
    assert set(expected_categories) == {("Tops", day), ("Jeans", day)}
    assert pipeline.order_kpis() == expected_orders
    assert pipeline.category_kpis() == expected_categories
    assert pipeline.recorded_kpis() == (expected_orders, expected_categories)
    report = TransformReport.from_json(
        s3io.get_json(s3, settings.bucket, layout.report_key(settings, "exec-w2", "transform"))
    )
    assert report.read_back_days == (day,)


@pytest.mark.spark
def test_without_its_published_record_the_transform_reads_dynamodb_until_a_full_run(pipeline, settings):
    pipeline.run_batch(
        [("orders.csv", csv_bytes("orders", [order(1)])), ("order_items.csv", csv_bytes("order_items", [item(1, 1)]))]
    )
    s3 = aws.client(settings, "s3")
    s3.delete_object(Bucket=settings.bucket, Key=layout.record_key(settings))

    second = pipeline.run_batch([("order_items_2.csv", csv_bytes("order_items", [item(1, 1, price="3.10")]))])
    report = TransformReport.from_json(
        s3io.get_json(s3, settings.bucket, layout.report_key(settings, second.execution_id, "transform"))
    )
    assert report.read_back_days == ("2024-03-01",)
    assert report.tables[settings.order_kpis_table].put == 1
    assert "published" not in s3io.get_json(s3, settings.bucket, layout.checkpoint_key(settings))

    pipeline.full_recompute()
    assert pipeline.recorded_kpis() == (pipeline.order_kpis(), pipeline.category_kpis())
