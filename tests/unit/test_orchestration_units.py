"""Queue messages to batches, the move plan, and the state machine definition."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from pipeline_tasks.batches import BatchFile, parse_manifest
from pipeline_tasks.events import FileEvent, MessageKind, later, parse_message, plan_batch
from pipeline_tasks.executions import entered_states
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.local.moto_cloudformation import substitute
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps.files import move_plan
from pipeline_tasks.steps.validate import build_result
from pipeline_tasks.validation import ValidationResult

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
        (_s3_event("input/a%2B+b%25+%E6%97%A5.csv"), MessageKind.FILES, ["input/a+ b% 日.csv"]),
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


def test_a_record_gives_its_version_and_sequencer():
    record = {
        "eventName": "ObjectCreated:Put",
        "eventTime": "2026-11-27T10:00:00.000Z",
        "s3": {"object": {"key": "input/orders+1.csv", "versionId": "v-1", "eTag": "e", "sequencer": "0A1B"}},
    }
    [event] = parse_message(json.dumps({"Records": [record]}), "input/").events
    assert event == FileEvent("input/orders 1.csv", "2026-11-27T10:00:00.000Z", version_id="v-1", sequencer="0A1B")
    [bare] = parse_message(_s3_event("input/x.csv"), "input/").events  # moto sends neither
    assert (bare.version_id, bare.sequencer) == (None, None)


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


def test_the_newest_version_of_a_key_is_pinned_by_sequencer_then_event_time():
    t = "2026-11-27T10:00:00.000Z"
    v1 = FileEvent("input/o.csv", t, version_id="v1", sequencer="0055AED6DCD90281E5")
    v2 = FileEvent("input/o.csv", t, version_id="v2", sequencer="0055AED6DCD90281E6")  # same second, later
    v3 = FileEvent("input/o.csv", "2026-11-27T09:00:00Z", version_id="v3", sequencer="0055AED6DCD90281E6F")
    assert later(v2, v1) and not later(v1, v2)
    assert later(v3, v2)  # sequencers of different lengths: right-padded with zeros, then compared
    assert plan_batch([v2, v1], []).files == (v2,) and plan_batch([v1, v3, v2], []).files == (v3,)
    # Without sequencers (moto), the event time decides.
    old = FileEvent("input/o.csv", "2026-11-27T10:00:00Z", "a")
    new = FileEvent("input/o.csv", "2026-11-27T10:00:05Z", "b")
    assert plan_batch([new, old], []).files == (new,)


def test_a_manifest_lists_pinned_files_and_old_manifests_still_load():
    files = [BatchFile("input/a b.csv", "v1", "2026-11-27T10:00:00Z"), BatchFile("input/c.csv")]
    document = {"keys": [f.key for f in files], "files": [f.to_dict() for f in files]}
    assert parse_manifest(document) == files
    assert parse_manifest({"keys": ["input/a.csv"]}) == [BatchFile("input/a.csv", None, None)]
    for broken in ({"keys": "input/a.csv"}, {"files": [{"key": 1}]}, [1]):
        with pytest.raises(Exception, match=r"manifest|batch file"):
            parse_manifest(broken)


def test_every_result_entry_names_its_version_and_event_time():
    verdicts = [
        ValidationResult("input/orders.csv", "orders", True, rows_read=2),
        ValidationResult("input/junk.csv", None, False, "unknown dataset"),
    ]
    files = [BatchFile("input/orders.csv", "v1", "t1"), BatchFile("input/junk.csv", "v2", "t2")]
    result = build_result("e", verdicts, files)
    pinned = [(f.key, f.version_id, f.event_time) for f in result.valid_files + result.invalid_files]
    assert pinned == [("input/orders.csv", "v1", "t1"), ("input/junk.csv", "v2", "t2")]
    with pytest.raises(ValueError):
        build_result("e", verdicts, list(reversed(files)))


def test_the_move_plan_copies_and_deletes_the_pinned_version():
    result = {
        "valid_files": [{"key": "input/orders 1.csv", "version_id": "v2"}],
        "invalid_files": [{"key": "input/x.csv", "reason": "déjà vu", "version_id": "w1"}],
    }
    plan = move_plan(Settings(bucket="b"), result, older={"input/orders 1.csv": ["v0", "v1"]})
    assert plan["has_valid_files"] and (plan["valid_count"], plan["invalid_count"]) == (1, 1)
    [valid] = plan["valid_files"]
    assert valid["copy_source"] == "b/input/orders%201.csv?versionId=v2"
    assert valid["archive_key"] == "archive/orders 1.csv"
    assert valid["metadata"] == {"source-key": "input/orders%201.csv", "source-version-id": "v2"}
    # Oldest first, the pinned one last: a crash half-way never makes an older version current.
    assert [(d["key"], d["version_id"]) for d in valid["delete_versions"]] == [
        ("input/orders 1.csv", v) for v in ("v0", "v1", "v2")
    ]
    # The superseded uploads are copied beside the pinned one first, under distinct names.
    older = valid["delete_versions"][:2]
    assert [d["copy_source"] for d in older] == [f"b/input/orders%201.csv?versionId={v}" for v in ("v0", "v1")]
    assert all(d["destination_key"].startswith("archive/orders 1~v") for d in older)
    assert len({d["destination_key"] for d in older}) == 2
    assert [d["metadata"]["superseded-by"] for d in older] == ["v2", "v2"]
    assert "copy_source" not in valid["delete_versions"][2]
    [invalid] = plan["invalid_files"]
    assert invalid["rejected_key"] == "rejected/x.csv" and invalid["reason"] == "d?j? vu"
    assert invalid["metadata"]["rejection-reason"] == "d?j? vu"
    assert invalid["delete_versions"] == [{"key": "input/x.csv", "version_id": "w1"}]


def test_a_destination_holding_another_version_of_the_name_gives_a_distinct_name():
    result = {"valid_files": [{"key": "input/orders.csv", "version_id": "v2"}], "invalid_files": []}
    settings = Settings(bucket="b")
    [mine] = move_plan(settings, result, taken={"archive/orders.csv": "v2"})["valid_files"]  # a move retried
    assert mine["archive_key"] == "archive/orders.csv"
    [other] = move_plan(settings, result, taken={"archive/orders.csv": "v1"})["valid_files"]
    assert other["archive_key"].startswith("archive/orders~v") and other["archive_key"].endswith(".csv")


class _Head:
    """An S3 client whose HeadObject answers one error code."""

    def __init__(self, code: str) -> None:
        self.code = code

    def head_object(self, **_: object) -> dict:
        raise ClientError({"Error": {"Code": self.code, "Message": ""}}, "HeadObject")


@pytest.mark.parametrize(("code", "absent"), [("404", True), ("NoSuchKey", True), ("405", True), ("403", False)])
def test_a_missing_version_is_absent_but_a_403_is_an_error(code, absent):
    if absent:
        assert s3io.head_version(_Head(code), "b", "input/x.csv", "v1") is None
    else:
        with pytest.raises(ClientError):
            s3io.head_version(_Head(code), "b", "input/x.csv", "v1")


def test_the_definition_routes_every_failure_to_the_failure_topic():
    definition = json.loads(DEFINITION.read_text())
    states = definition["States"]
    for name, state in states.items():
        if state["Type"] in ("Task", "Map") and name not in ("NotifySuccess", "NotifyFailure"):
            assert state["Catch"][0]["ErrorEquals"] == ["States.ALL"], name
            assert state["Catch"][0]["Next"] == "FailureNotice", name
    assert states["FailureNotice"]["Next"] == "NotifyFailure"
    assert states["NotifyFailure"]["Next"] == "PipelineFailed" and states["PipelineFailed"]["Type"] == "Fail"
    for task, step in (("ValidationTask", "validate"), ("StagingTask", "stage"), ("TransformationTask", "transform")):
        command = states[task]["Parameters"]["Overrides"]["ContainerOverrides"][0]["Command.$"]
        assert f"'notebook', '{step}'" in command  # state names match the steps they run
        assert states[task]["Resource"] == "arn:aws:states:::ecs:runTask.sync"
        assert any("ECS.ThrottlingException" in r["ErrorEquals"] for r in states[task]["Retry"])
    assert "Environment" not in json.dumps(definition)  # file lists travel through S3, not overrides
    for mover, destination in (("HandleInvalidFiles", "$.rejected_key"), ("ArchiveValidFiles", "$.archive_key")):
        inner = states[mover]["ItemProcessor"]["States"]
        copy = inner["CopyObject"]["Parameters"]
        assert copy["CopySource.$"] == "$.copy_source" and copy["Key.$"] == destination  # encoded by the plan
        assert copy["MetadataDirective"] == "REPLACE" and copy["Metadata.$"] == "$.metadata"
        deletes = inner["DeleteVersions"]
        assert deletes["ItemsPath"] == "$.delete_versions" and deletes["MaxConcurrency"] == 1  # in order
        steps = deletes["ItemProcessor"]["States"]
        assert steps["DeleteObjectVersion"]["Parameters"]["VersionId.$"] == "$.version_id"  # never a plain delete
        # A superseded version (it has a copy_source) is copied beside the pinned one before its delete.
        [choice] = steps["IsSuperseded"]["Choices"]
        assert (choice["Variable"], choice["IsPresent"], choice["Next"]) == ("$.copy_source", True, "CopySuperseded")
        superseded = steps["CopySuperseded"]["Parameters"]
        assert superseded["CopySource.$"] == "$.copy_source" and superseded["Key.$"] == "$.destination_key"
        assert steps["CopySuperseded"]["Next"] == "DeleteObjectVersion"


def test_every_placeholder_of_the_definition_gets_a_value():
    template = DEFINITION.read_text()
    names = set(re.findall(r"\$\{(\w+)\}", template))
    rendered = substitute(template, {n: f"value-of-{n}" for n in names})
    assert "${" not in rendered
    json.loads(rendered)
    with pytest.raises(ValueError, match="no DefinitionSubstitutions value for BucketName"):
        substitute(template, {n: "v" for n in names - {"BucketName"}})


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


@pytest.mark.parametrize(
    ("source", "decoded"),
    [
        ("b/input/orders%202025.csv", {"Bucket": "b", "Key": "input/orders 2025.csv"}),
        (
            "b/input/a%2Bb%25c%23d%3F.csv?versionId=v.1",
            {"Bucket": "b", "Key": "input/a+b%c#d?.csv", "VersionId": "v.1"},
        ),
        ("b/input/%E6%97%A5.csv", {"Bucket": "b", "Key": "input/日.csv"}),
        ("b/input/a b.csv", None),  # not encoded: fails in moto as on AWS
        ("b/input/a#b.csv", None),
    ],
)
def test_the_local_stack_passes_an_encoded_copy_source_as_aws_reads_it(source, decoded):
    from pipeline_tasks.local.moto_workarounds import copy_source_as_dict

    assert copy_source_as_dict(source) == decoded


def test_moto_is_as_the_workarounds_expect():
    from pipeline_tasks.local import moto_workarounds

    moto_workarounds.check()  # raises, naming what moved, after a moto upgrade
