"""KPI tables that heal: the published-KPI record checked against the tables, and repaired from.

Real steps (moto over HTTP, delta-rs, local Spark). Each transform checks every KPI
table's identity and item count against what the checkpoint recorded and repairs a
table that fails from the record; ``reconcile`` compares every item on demand.
"""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest

from pipeline_tasks import layout
from pipeline_tasks.documents import TransformReport
from pipeline_tasks.io import aws, dynamodb
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.steps import transform
from tests.builders import csv_bytes, item, order, product
from tests.reference import reference_kpis

pytestmark = [pytest.mark.spark, pytest.mark.aws]

FIRST = [
    ("products.csv", csv_bytes("products", [product(1, "Tops"), product(2, "Jeans")])),
    (
        "orders.csv",
        csv_bytes("orders", [order(1, "2024-03-01 10:00:00"), order(2, "2024-03-02 10:00:00", user=2)]),
    ),
    (
        "order_items.csv",
        csv_bytes(
            "order_items",
            [item(1, 1, pid=1, price="10.00"), item(2, 1, pid=2, price="5.50"), item(3, 2, pid=2, price="7.25")],
        ),
    ),
]
#: Another day: a transform of this batch recomputes 2024-03-05 only.
OTHER_DAY = [
    ("orders_2.csv", csv_bytes("orders", [order(3, "2024-03-05 09:00:00", user=3)])),
    ("order_items_2.csv", csv_bytes("order_items", [item(4, 3, pid=1, price="20.00")])),
]


def _transform_report(pipeline: Any, execution_id: str) -> TransformReport:
    key = layout.report_key(pipeline.settings, execution_id, "transform")
    return TransformReport.from_json(s3io.get_json(pipeline.s3, pipeline.settings.bucket, key))


def _checks(report: TransformReport) -> dict[str, dict[str, Any]]:
    return {check["table"]: check for check in report.table_checks}


def _assert_tables_equal_the_reference(pipeline: Any, files: list[tuple[str, bytes]]) -> None:
    expected = reference_kpis(files)
    assert (pipeline.order_kpis(), pipeline.category_kpis()) == expected
    assert pipeline.recorded_kpis() == expected


def test_an_emptied_table_is_filled_again_by_the_next_batch(pipeline, settings):
    pipeline.run_and_check([FIRST])
    spec = transform.category_kpis_spec(settings)
    client = aws.client(settings, "dynamodb")
    keys = [spec.key_of(i) for i in dynamodb.scan_items(client, spec, spec.key)]
    assert len(keys) == 3
    dynamodb.write_diff(aws.resource(settings, "dynamodb"), spec, [], keys, {})  # emptied by hand

    execution = pipeline.run_batch(OTHER_DAY)

    _assert_tables_equal_the_reference(pipeline, FIRST + OTHER_DAY)
    report = _transform_report(pipeline, execution.execution_id)
    assert report.affected_dates == ("2024-03-05",)  # the repair is not a recompute
    checks = _checks(report)
    assert checks[spec.name] | {"identity": None, "changes": None} == {
        "table": spec.name,
        "identity": None,
        "identity_changed": False,
        "expected_items": 3,
        "found_items": 0,
        "action": "repaired",
        "put": 3,
        "deleted": 0,
        "matching": 0,
        "changes": None,
    }
    assert {c["change"] for c in checks[spec.name]["changes"]} == {"new"}
    orders = checks[settings.order_kpis_table]
    assert (orders["action"], orders["expected_items"], orders["found_items"]) == ("none", 2, 2)


def test_a_table_recreated_with_an_older_copy_is_repaired(pipeline, settings):
    spec = transform.category_kpis_spec(settings)
    client = aws.client(settings, "dynamodb")
    pipeline.run_batch(FIRST)
    older = list(dynamodb.scan_items(client, spec))  # a backup, with every attribute
    changed = [("order_items_fix.csv", csv_bytes("order_items", [item(2, 1, pid=2, price="6.75")]))]
    pipeline.run_batch(changed)  # Jeans on 2024-03-01 changes; the item count stays 3

    # Restored from the backup: a new table (new identity) with the old name and the older items.
    client.delete_table(TableName=spec.name)
    client.get_waiter("table_not_exists").wait(TableName=spec.name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    dynamodb.ensure_table(client, spec)
    dynamodb.write_diff(aws.resource(settings, "dynamodb"), spec, older, [], {})
    assert len(older) == 3 and pipeline.category_kpis() != reference_kpis(FIRST + changed)[1]

    execution = pipeline.run_batch(OTHER_DAY)

    _assert_tables_equal_the_reference(pipeline, FIRST + changed + OTHER_DAY)
    check = _checks(_transform_report(pipeline, execution.execution_id))[spec.name]
    # The count alone would not have noticed: the identity did.
    assert (check["identity_changed"], check["expected_items"], check["found_items"]) == (True, 3, 3)
    assert (check["action"], check["put"], check["deleted"], check["matching"]) == ("repaired", 1, 0, 2)
    assert [(c["category"], c["order_date"], c["change"]) for c in check["changes"]] == [
        ("Jeans", "2024-03-01", "changed")
    ]

    # The new identity is recorded: the next run's check passes without reading the table back.
    again = pipeline.run_batch([("orders_3.csv", csv_bytes("orders", [order(4, "2024-03-06 09:00:00")]))])
    assert _checks(_transform_report(pipeline, again.execution_id))[spec.name]["action"] == "none"
    assert not _checks(_transform_report(pipeline, again.execution_id))[spec.name]["identity_changed"]


def test_an_item_edited_in_place_is_found_by_reconcile_only(pipeline, settings, tmp_path):
    spec = transform.category_kpis_spec(settings)
    pipeline.run_and_check([FIRST])
    table = aws.resource(settings, "dynamodb").Table(spec.name)
    table.update_item(
        Key={"category": "Tops", "order_date": "2024-03-01"},
        UpdateExpression="SET daily_revenue = :v",
        ExpressionAttributeValues={":v": Decimal("999.99")},
    )

    # What the per-run check does not see: same table, same item count.
    execution = pipeline.run_batch(OTHER_DAY)
    assert {c["action"] for c in _transform_report(pipeline, execution.execution_id).table_checks} == {"none"}
    assert pipeline.category_kpis()[("Tops", "2024-03-01")]["daily_revenue"] == Decimal("999.99")

    dry = transform.reconcile(settings, dry_run=True)
    assert not dry.in_sync
    outcome = {t.table: t for t in dry.tables}
    assert (outcome[spec.name].action, outcome[spec.name].put, outcome[spec.name].deleted) == ("would repair", 1, 0)
    assert outcome[settings.order_kpis_table].action == "none"
    assert pipeline.category_kpis()[("Tops", "2024-03-01")]["daily_revenue"] == Decimal("999.99")  # nothing written

    # The CLI's dry run says so with exit code 1, and writes nothing either.
    env = {**os.environ, **settings.to_env()}
    cli = [sys.executable, "-m", "pipeline_tasks.cli", "reconcile"]
    shown = subprocess.run([*cli, "--dry-run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 1, shown.stderr
    assert f"{spec.name}: would put 1, delete 0 (4 items recorded, 4 found, 3 matching; dry run)" in shown.stdout
    assert f"{settings.order_kpis_table}: in sync" in shown.stdout

    repaired = transform.reconcile(settings, execution_id="reconcile-test")
    outcome = {t.table: t for t in repaired.tables}
    assert (outcome[spec.name].action, outcome[spec.name].put, outcome[spec.name].deleted) == ("repaired", 1, 0)
    assert outcome[spec.name].changes[0]["daily_revenue_before"] == "999.99"
    _assert_tables_equal_the_reference(pipeline, FIRST + OTHER_DAY)
    fixed = table.get_item(Key={"category": "Tops", "order_date": "2024-03-01"})["Item"]
    assert fixed["execution_id"] == "reconcile-test"

    # Nothing left to do: exit code 0.
    done = subprocess.run(cli, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(": in sync") == 2


def test_without_the_record_a_failed_check_recomputes_every_day(pipeline, settings):
    pipeline.run_and_check([FIRST])
    spec = transform.category_kpis_spec(settings)
    client = aws.client(settings, "dynamodb")
    keys = [spec.key_of(i) for i in dynamodb.scan_items(client, spec, spec.key)]
    dynamodb.write_diff(aws.resource(settings, "dynamodb"), spec, [], keys, {})
    pipeline.s3.delete_object(Bucket=settings.bucket, Key=layout.record_key(settings))

    execution = pipeline.run_batch(OTHER_DAY)

    _assert_tables_equal_the_reference(pipeline, FIRST + OTHER_DAY)
    report = _transform_report(pipeline, execution.execution_id)
    assert (report.mode, report.affected_dates) == ("full", None)
    assert _checks(report)[spec.name]["action"] == "full recompute"


def test_reconcile_without_a_record_fails_with_the_step_failed_code(pipeline, settings, tmp_path):
    pipeline.run_batch(FIRST)
    pipeline.s3.delete_object(Bucket=settings.bucket, Key=layout.record_key(settings))
    env = {**os.environ, **settings.to_env()}
    failed = subprocess.run(
        [sys.executable, "-m", "pipeline_tasks.cli", "reconcile"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 4
    assert "full recompute" in failed.stderr


def test_an_older_record_put_back_is_not_repaired_from(pipeline, settings):
    """Repairing from a stale record would write stale KPIs: the checkpoint names its record by ETag."""
    key = layout.record_key(settings)
    pipeline.run_batch(FIRST)
    older = pipeline.s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
    changed = [("order_items_fix.csv", csv_bytes("order_items", [item(2, 1, pid=2, price="6.75")]))]
    pipeline.run_batch(changed)
    pipeline.s3.put_object(Bucket=settings.bucket, Key=key, Body=older)
    spec = transform.category_kpis_spec(settings)
    client = aws.client(settings, "dynamodb")
    keys = [spec.key_of(i) for i in dynamodb.scan_items(client, spec, spec.key)]
    dynamodb.write_diff(aws.resource(settings, "dynamodb"), spec, [], keys, {})

    execution = pipeline.run_batch(OTHER_DAY)

    _assert_tables_equal_the_reference(pipeline, FIRST + changed + OTHER_DAY)
    report = _transform_report(pipeline, execution.execution_id)
    assert report.mode == "full"
    assert _checks(report)[spec.name]["action"] == "full recompute"
