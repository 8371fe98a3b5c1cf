"""Queue messages to batches, the move plan, and the state machine definition."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline_tasks.events import FileEvent, MessageKind, parse_message, plan_batch
from pipeline_tasks.executions import entered_states
from pipeline_tasks.local.stack import render_definition
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps.files import metadata_safe, move_plan

REPO = Path(__file__).resolve().parents[2]
DEFINITION = REPO / "statemachine" / "pipeline.asl.json"


def _s3_event(*keys: str, when: str = "2026-11-27T10:00:00.000Z", name: str = "ObjectCreated:Put") -> str:
    records = [{"eventName": name, "eventTime": when, "s3": {"object": {"key": k}}} for k in keys]
    return json.dumps({"Records": records})


@pytest.mark.parametrize(
    ("body", "kind", "keys"),
    [
        (_s3_event("input/orders+2024.csv"), MessageKind.FILES, ["input/orders 2024.csv"]),
        (_s3_event("input/a%2Bb.csv"), MessageKind.FILES, ["input/a+b.csv"]),
        (_s3_event("archive/orders.csv", "input/"), MessageKind.FILES, []),
        (_s3_event("input/x.csv", name="ObjectRemoved:Delete"), MessageKind.FILES, []),
        (json.dumps({"Event": "s3:TestEvent", "Bucket": "b"}), MessageKind.TEST, []),
        (json.dumps({"Type": "Notification", "Message": _s3_event("input/p.csv")}), MessageKind.FILES, ["input/p.csv"]),
        ("not json", MessageKind.POISON, []),
        ("[1, 2]", MessageKind.POISON, []),
        (json.dumps({"hello": "world"}), MessageKind.POISON, []),
        (json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}), MessageKind.POISON, []),
    ],
)
def test_parse_message(body, kind, keys):
    parsed = parse_message(body, "input/")
    assert parsed.kind is kind
    assert [e.key for e in parsed.events] == keys


def test_a_batch_dedupes_and_orders_by_event_time_then_key():
    events = [
        FileEvent("input/b.csv", "2026-11-27T10:00:02Z"),
        FileEvent("input/a.csv", "2026-11-27T10:00:02Z"),
        FileEvent("input/c.csv", "2026-11-27T10:00:01Z"),
        FileEvent("input/c.csv", "2026-11-27T10:00:01Z"),  # a duplicate delivery
        FileEvent("input/d.csv", "2026-11-27T10:00:00Z"),
        FileEvent("input/d.csv", "2026-11-27T10:00:03Z"),  # written again: its latest event counts
    ]
    batch = plan_batch(events, ["m1", "m2"])
    assert batch.keys == ("input/c.csv", "input/a.csv", "input/b.csv", "input/d.csv")
    assert batch.name == plan_batch(list(reversed(events)), ["m2", "m1"]).name  # deterministic
    assert batch.name != plan_batch(events, ["m3"]).name
    assert re.fullmatch(r"batch-\d{8}T\d{6}-[0-9a-f]{12}", batch.name)


def test_the_move_plan_names_destinations_and_encodes_copy_sources():
    result = {
        "valid_files": [{"key": "input/orders 1.csv"}],
        "invalid_files": [{"key": "input/x.csv", "reason": "déjà vu"}],
    }
    plan = move_plan(Settings(bucket="b"), result)
    assert plan["has_valid_files"] and (plan["valid_count"], plan["invalid_count"]) == (1, 1)
    assert plan["valid_files"] == [
        {"key": "input/orders 1.csv", "copy_source": "b/input/orders%201.csv", "archive_key": "archive/orders 1.csv"}
    ]
    assert plan["invalid_files"][0]["rejected_key"] == "rejected/x.csv"
    assert plan["invalid_files"][0]["reason"] == "d?j? vu"
    assert len(metadata_safe("x" * 5000)) == 1024


def test_the_definition_routes_every_failure_to_the_failure_topic():
    definition = json.loads(DEFINITION.read_text())
    states = definition["States"]
    for name, state in states.items():
        if state["Type"] in ("Task", "Map") and name not in ("NotifySuccess", "NotifyFailure"):
            assert state["Catch"][0]["ErrorEquals"] == ["States.ALL"], name
            assert state["Catch"][0]["Next"] == "NotifyFailure", name
    assert states["NotifyFailure"]["Next"] == "PipelineFailed" and states["PipelineFailed"]["Type"] == "Fail"
    for task, step in (("ValidationTask", "validate"), ("StagingTask", "stage"), ("TransformationTask", "transform")):
        command = states[task]["Parameters"]["Overrides"]["ContainerOverrides"][0]["Command.$"]
        assert f"'notebook', '{step}'" in command  # state names match the steps they run
        assert states[task]["Resource"] == "arn:aws:states:::ecs:runTask.sync"
        assert any("ECS.ThrottlingException" in r["ErrorEquals"] for r in states[task]["Retry"])
    assert "Environment" not in json.dumps(definition)  # file lists travel through S3, not overrides


def test_every_placeholder_of_the_definition_gets_a_value():
    template = DEFINITION.read_text()
    names = set(re.findall(r"\$\{(\w+)\}", template))
    rendered = render_definition(template, {n: f"value-of-{n}" for n in names})
    assert "${" not in rendered
    json.loads(rendered)
    with pytest.raises(Exception, match="no value for BucketName"):
        render_definition(template, {n: "v" for n in names - {"BucketName"}})


def test_states_entered_in_order_with_their_durations():
    from datetime import datetime, timedelta

    t0 = datetime(2026, 1, 1)
    events = [
        {"type": "ExecutionStarted", "timestamp": t0},
        {"type": "TaskStateEntered", "timestamp": t0, "stateEnteredEventDetails": {"name": "ValidationTask"}},
        {
            "type": "TaskStateEntered",
            "timestamp": t0 + timedelta(seconds=1),
            "stateEnteredEventDetails": {"name": "CopyObject"},
        },
        {
            "type": "ChoiceStateEntered",
            "timestamp": t0 + timedelta(seconds=5),
            "stateEnteredEventDetails": {"name": "Check"},
        },
        {"type": "ExecutionSucceeded", "timestamp": t0 + timedelta(seconds=6)},
    ]
    assert entered_states(events, {"ValidationTask", "Check"}) == [("ValidationTask", 5.0), ("Check", 1.0)]


def test_moto_is_as_the_workarounds_expect():
    from pipeline_tasks.local import moto_workarounds

    moto_workarounds.check()  # raises, naming what moved, after a moto upgrade
