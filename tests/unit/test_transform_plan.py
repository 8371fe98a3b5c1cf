"""The transform's plan and stored state as data: the checkpoint read, the plan printed and recorded."""

from __future__ import annotations

import json
from datetime import date

from pipeline_tasks.io import published
from pipeline_tasks.io.dynamodb import TableSpec
from pipeline_tasks.io.kpi_state import Checkpoint, PublishedState
from pipeline_tasks.money import MoneyPlan
from pipeline_tasks.steps.transform import TransformPlan

SPECS = (TableSpec("O", ("order_date",), ("total_orders",)), TableSpec("C", ("category", "order_date"), ("x",)))


def test_a_checkpoint_reads_its_versions_dirty_days_and_table_states():
    state = PublishedState(
        ("O", "C"),
        ("2024-03-02",),
        "etag-1",
        {"O": published.TableState({"arn": "a"}, 3), "C": published.TableState(None, 0)},
    )
    checkpoint = Checkpoint(json.loads(json.dumps({"versions": {"orders": 4}, "published": state.to_json()})))
    assert checkpoint.versions == {"orders": 4}
    assert checkpoint.dirty_days == {date(2024, 3, 2)}
    assert checkpoint.record_etag == "etag-1"
    assert checkpoint.vouches_for(SPECS)
    assert not checkpoint.vouches_for(SPECS[::-1])
    assert checkpoint.table_states == dict(state.table_states)


def test_a_checkpoint_without_a_record_vouches_for_none_and_has_no_dirty_days():
    checkpoint = Checkpoint({"versions": {"orders": 1}, "execution_id": "x"})
    assert not checkpoint.vouches_for(SPECS)
    assert checkpoint.dirty_days == set()
    assert checkpoint.record_etag is None
    assert checkpoint.table_states == {}


def test_a_plan_prints_a_short_summary_and_records_itself_as_json():
    plan = TransformPlan(
        mode="incremental",
        versions={"orders": 3},
        previous_versions={"orders": 2},
        dates=(date(2024, 3, 1), date(2024, 3, 4)),
        dirty_days=frozenset({date(2024, 3, 1)}),
        categories=frozenset({"Tops"}),
        order_files=("a",),
        item_files=("b", "c"),
        needs_spark=True,
        little_work=True,
        money=MoneyPlan.PARTS,
        hash_join=True,
    )
    assert str(plan) == plan.describe()
    assert "2 day(s), 2024-03-01 to 2024-03-04 (1 dirty)" in str(plan)
    assert "short-lived Spark" in str(plan) and "int64 parts" in str(plan)
    document = json.loads(json.dumps(plan.to_json()))
    assert document["dates"] == ["2024-03-01", "2024-03-04"]
    assert document["money"] == "int64 parts"
    assert plan.computes


def test_a_full_plan_recomputes_every_day_and_an_empty_one_nothing():
    full = TransformPlan(
        "full", {}, None, None, frozenset(), frozenset(), None, None, True, False, MoneyPlan.DECIMAL, False
    )
    assert full.computes and "every day" in full.describe()
    idle = TransformPlan(
        "incremental", {}, {}, (), frozenset(), frozenset(), (), (), False, False, MoneyPlan.DECIMAL, False
    )
    assert not idle.computes and "no Spark" in idle.describe()
