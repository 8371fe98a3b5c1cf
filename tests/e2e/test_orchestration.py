"""The whole flow on the local stack: S3 events → SQS → orchestrator → state machine → ECS tasks.

Each test gets its own emulator process (moto with the documented workarounds) and
the pipeline provisioned on it as infra/ provisions AWS.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from urllib.parse import unquote

import pytest

from pipeline_tasks import executions, orchestrator, state_payload
from pipeline_tasks.io import aws, delta, delta_scan, dynamodb
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.keys import copy_source
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps import transform
from tests.builders import csv_bytes, item, order, product
from tests.expected_states import FAILED_AT_STAGING, FLOW, PROCESSED
from tests.local_stacks import deployed
from tests.reference import Reference

pytestmark = [pytest.mark.aws, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def stack(tmp_path):
    server, settings = deployed(tmp_path)
    yield settings
    server.stop()


def _put(settings: Settings, files: list[tuple[str, bytes]]) -> None:
    s3 = aws.client(settings, "s3")
    for name, data in files:
        s3.put_object(Bucket=settings.bucket, Key=settings.input_prefix + name, Body=data)


def _keys(settings: Settings, prefix: str) -> list[str]:
    return sorted(s3io.list_keys(aws.client(settings, "s3"), settings.bucket, prefix))


def _run(settings: Settings) -> executions.ExecutionReport:
    outcome = executions.invoke_orchestrator(settings)
    assert outcome["started"], outcome
    return executions.follow(settings, outcome["execution_arn"], progress=lambda _: None)


def _kpis(settings: Settings) -> tuple[dict, dict]:
    client = aws.client(settings, "dynamodb")
    order_spec, category_spec = transform.order_kpis_spec(settings), transform.category_kpis_spec(settings)
    number = lambda v: __import__("decimal").Decimal(str(v))  # noqa: E731
    orders = {
        i["order_date"]: {k: number(i[k]) for k in order_spec.values} for i in dynamodb.scan_items(client, order_spec)
    }
    categories = {
        (i["category"], i["order_date"]): {k: number(i[k]) for k in category_spec.values}
        for i in dynamodb.scan_items(client, category_spec)
    }
    return orders, categories


def _subscribe(settings: Settings, topic_name: str) -> str:
    """An SQS queue subscribed to a topic, to read what the state machine published."""
    sns, sqs = aws.client(settings, "sns"), aws.client(settings, "sqs")
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":" + topic_name))
    url = sqs.create_queue(QueueName=f"{topic_name}-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return url


def _messages(settings: Settings, url: str) -> list[str]:
    sqs = aws.client(settings, "sqs")
    bodies = []
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        body = json.loads(message["Body"])
        bodies.append(body.get("Message", message["Body"]))
    return bodies


BATCH = [
    ("products.csv", csv_bytes("products", [product(1, "Tops"), product(2, "Jeans")])),
    ("orders.csv", csv_bytes("orders", [order(1, "2024-03-01 10:00:00"), order(2, "2024-03-02 11:00:00")])),
    ("order_items.csv", csv_bytes("order_items", [item(1, 1, pid=1), item(2, 2, pid=2, price="5.5")])),
    ("junk.csv", b"not,a,dataset\n1,2,3\n"),
]


@pytest.mark.spark
def test_a_failed_task_fails_the_execution_notifies_and_a_rerun_succeeds(stack):
    failures = _subscribe(stack, stack.failure_topic_name)
    # Break the orders table: the staging task cannot open it.
    s3 = aws.client(stack, "s3")
    broken_log = "staging/orders/_delta_log/00000000000000000000.json"
    s3.put_object(Bucket=stack.bucket, Key=broken_log, Body=b"{not json")
    _put(stack, BATCH)

    failed = _run(stack)
    assert failed.status == "FAILED"
    assert failed.states == FAILED_AT_STAGING
    assert _keys(stack, "input/") == ["input/order_items.csv", "input/orders.csv", "input/products.csv"]
    assert _keys(stack, "rejected/") == ["rejected/junk.csv"] and _keys(stack, "archive/") == []
    [notice] = _messages(stack, failures)
    assert failed.name in notice and "failed" in notice
    record = s3io.get_json(s3, stack.bucket, f"runs/{failed.name}/20_stage.json")
    assert record["status"] == "FAILED" and record["exit_code"] == 4

    s3.delete_object(Bucket=stack.bucket, Key=broken_log)  # the cause is fixed
    outcome = orchestrator.rerun(stack, failed.name)
    assert outcome.started and outcome.execution_id == f"{failed.name}-rerun-1"
    assert outcome.keys == ["input/products.csv", "input/orders.csv", "input/order_items.csv"]
    assert outcome.keys_skipped == ["input/junk.csv"]  # its pinned version was moved to rejected/
    rerun = executions.follow(stack, str(outcome.execution_arn), progress=lambda _: None)
    assert rerun.status == "SUCCEEDED" and rerun.states == PROCESSED
    assert _keys(stack, "input/") == []
    assert _keys(stack, "archive/") == ["archive/order_items.csv", "archive/orders.csv", "archive/products.csv"]
    ref = Reference()
    for name, data in BATCH:
        ref.load(name, data)
    assert _kpis(stack) == ref.kpis()
    again = orchestrator.rerun(stack, failed.name)  # every pinned version is gone now
    assert not again.started and sorted(again.keys_skipped) == sorted(f"input/{name}" for name, _ in BATCH)


#: Keys as real exports name them: each ends in archive/ (valid) or rejected/ (invalid).
ODD_VALID = {
    "input/products é.csv": csv_bytes("products", [product(1, "Tops"), product(2, "Jeans")]),
    "input/orders 2025-03.csv": csv_bytes("orders", [order(1, "2024-03-01 10:00:00")]),
    "input/orders+plus.csv": csv_bytes("orders", [order(2, "2024-03-02 11:00:00")]),
    "input/orders%25 100%.csv": csv_bytes("orders", [order(3, "2024-03-02 12:00:00")]),
    "input/orders_日本.csv": csv_bytes("orders", [order(4, "2024-03-03 12:00:00")]),
    "input/2025/03/order_items#1.csv": csv_bytes("order_items", [item(1, 1, pid=1), item(2, 2, pid=2, price="5.5")]),
    "input/order_items?2.csv": csv_bytes("order_items", [item(3, 3, pid=1), item(4, 4, pid=2, price="7.25")]),
}
ODD_INVALID = {
    "input/junk #?+%é日本.csv": (b"x\n1\n", "unknown dataset"),
    "input/orders\u200b.csv": (csv_bytes("orders", [order(9)]), "invisible character U+200B"),
    "input/2025/ orders.csv": (csv_bytes("orders", [order(9)]), "the file name starts with whitespace"),
}


@pytest.mark.spark
def test_any_key_ends_in_archive_or_rejected_through_the_state_machine(stack):
    s3 = aws.client(stack, "s3")
    for key, data in [*ODD_VALID.items(), *((k, d) for k, (d, _) in ODD_INVALID.items())]:
        s3.put_object(Bucket=stack.bucket, Key=key, Body=data)
    report = _run(stack)
    assert report.status == "SUCCEEDED", (report.error, report.cause)
    assert report.states == PROCESSED
    assert _keys(stack, "input/") == []
    assert _keys(stack, "archive/") == sorted("archive/" + k.removeprefix("input/") for k in ODD_VALID)
    assert _keys(stack, "rejected/") == sorted("rejected/" + k.removeprefix("input/") for k in ODD_INVALID)
    for key, (data, reason) in ODD_INVALID.items():
        moved = s3.get_object(Bucket=stack.bucket, Key="rejected/" + key.removeprefix("input/"))
        assert moved["Body"].read() == data and reason in moved["Metadata"]["rejection-reason"]
        assert unquote(moved["Metadata"]["source-key"]) == key
    ref = Reference()
    for key, data in ODD_VALID.items():
        ref.load(key.rsplit("/", 1)[1], data)
    assert _kpis(stack) == ref.kpis()


def _wait_for_state(settings: Settings, execution_arn: str, state: str, timeout: float = 600) -> None:
    sfn = aws.client(settings, "stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        if any(e.get("stateEnteredEventDetails", {}).get("name") == state for e in events):
            return
        if any(e["type"] in ("ExecutionSucceeded", "ExecutionFailed") for e in events):
            raise AssertionError(f"the execution ended before entering {state}")
        time.sleep(0.5)
    raise AssertionError(f"the execution did not enter {state} within {timeout} s")


def _staged_order_ids(settings: Settings) -> list[int]:
    table = delta.open_table(settings.table_uri("orders"), delta.storage_options(settings))
    assert table is not None
    return sorted(delta_scan.read_rows(table, ["order_id"]).column("order_id").to_pylist())


@pytest.mark.spark
def test_a_version_uploaded_during_a_run_stays_in_input_and_the_next_batch_processes_it(stack):
    s3 = aws.client(stack, "s3")
    first = csv_bytes("orders", [order(1, "2024-03-01 10:00:00")])
    changed = csv_bytes("orders", [order(1, "2024-03-01 10:00:00", status="Returned"), order(2, "2024-03-02 11:00:00")])
    _put(stack, [("products.csv", BATCH[0][1]), ("orders_part1.csv", first)])
    outcome = executions.invoke_orchestrator(stack)
    assert outcome["started"], outcome
    pinned = {f["key"]: f["version_id"] for f in outcome["files"]}
    # The changed export arrives once the batch has staged the first one, before it archives.
    _wait_for_state(stack, outcome["execution_arn"], "TransformationTask")
    v2 = s3.put_object(Bucket=stack.bucket, Key="input/orders_part1.csv", Body=changed)["VersionId"]
    report = executions.follow(stack, outcome["execution_arn"], progress=lambda _: None)
    assert report.status == "SUCCEEDED" and report.states == PROCESSED

    archived = s3.get_object(Bucket=stack.bucket, Key="archive/orders_part1.csv")
    assert archived["Body"].read() == first  # exactly the version the batch read
    assert archived["Metadata"]["source-version-id"] == pinned["input/orders_part1.csv"] != v2
    assert _keys(stack, "input/") == ["input/orders_part1.csv"]
    current = s3.get_object(Bucket=stack.bucket, Key="input/orders_part1.csv")
    assert current["VersionId"] == v2 and current["Body"].read() == changed
    assert _staged_order_ids(stack) == [1]

    # The next trigger finds the new version's event and processes it.
    second = executions.invoke_orchestrator(stack)
    assert second["started"], second
    assert [(f["key"], f["version_id"]) for f in second["files"]] == [("input/orders_part1.csv", v2)]
    report = executions.follow(stack, second["execution_arn"], progress=lambda _: None)
    assert report.status == "SUCCEEDED" and report.states == PROCESSED
    assert _keys(stack, "input/") == []
    assert _staged_order_ids(stack) == [1, 2]
    # The plain archive name holds the first version; the second is archived beside it.
    names = _keys(stack, "archive/")
    [distinct] = [k for k in names if k.startswith("archive/orders_part1~v")]
    assert sorted(names) == sorted(["archive/orders_part1.csv", "archive/products.csv", distinct])
    moved = s3.get_object(Bucket=stack.bucket, Key=distinct)
    assert moved["Body"].read() == changed and moved["Metadata"]["source-version-id"] == v2
    assert s3.get_object(Bucket=stack.bucket, Key="archive/orders_part1.csv")["Body"].read() == first


def test_the_local_state_machine_copies_an_encoded_source_and_refuses_a_raw_one_as_aws_does(stack):
    s3, sfn = aws.client(stack, "s3"), aws.client(stack, "stepfunctions")
    key = "input/orders #1 + 100% é日本?.csv"
    version = s3.put_object(Bucket=stack.bucket, Key=key, Body=b"v1")["VersionId"]
    s3.put_object(Bucket=stack.bucket, Key=key, Body=b"v2")
    copy = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:copyObject",
        "Parameters": {"Bucket": stack.bucket, "CopySource.$": "$.source", "Key": "archive/probe.csv"},
        "ResultPath": None,  # moto cannot serialise CopyObject's datetime into the execution's output
        "End": True,
    }
    role = sfn.describe_state_machine(stateMachineArn=stack.state_machine_arn)["roleArn"]  # the template's
    machine = sfn.create_state_machine(
        name="copy-probe", definition=json.dumps({"StartAt": "Copy", "States": {"Copy": copy}}), roleArn=role
    )["stateMachineArn"]

    def run(name: str, source: str) -> str:
        started = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps({"source": source}))
        arn = started["executionArn"]
        for _ in range(120):
            status = sfn.describe_execution(executionArn=arn)["status"]
            if status != "RUNNING":
                return str(status)
            time.sleep(0.25)
        raise AssertionError("the probe did not end")

    assert run("encoded", copy_source(stack.bucket, key, version)) == "SUCCEEDED"
    assert s3.get_object(Bucket=stack.bucket, Key="archive/probe.csv")["Body"].read() == b"v1"
    assert run("raw", f"{stack.bucket}/{key}") == "FAILED"  # not URL-encoded: AWS would not find it either


def test_a_batch_of_invalid_files_only_rejects_them_and_succeeds(stack):
    _put(stack, [("junk.csv", b"x\n1\n"), ("orders_bad.csv", b"order_id,user_id\n1,2\n")])
    report = _run(stack)
    assert report.status == "SUCCEEDED"
    assert report.states == [*FLOW, "NoValidFiles"]
    assert _keys(stack, "input/") == []
    assert _keys(stack, "rejected/") == ["rejected/junk.csv", "rejected/orders_bad.csv"]
    head = aws.client(stack, "s3").head_object(Bucket=stack.bucket, Key="rejected/orders_bad.csv")
    assert "missing required column" in head["Metadata"]["rejection-reason"]


def test_two_triggers_at_once_start_one_execution(stack):
    _put(stack, [("junk.csv", b"x\n1\n")])
    outcomes: list[dict] = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(executions.invoke_orchestrator(stack))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    started = [o for o in outcomes if o["started"]]
    assert len(started) == 1, outcomes
    other = next(o for o in outcomes if not o["started"])
    assert "lock" in other["reason"] or "running" in other["reason"] or "no new file" in other["reason"]
    executions.follow(stack, started[0]["execution_arn"], progress=lambda _: None)
    sfn = aws.client(stack, "stepfunctions")
    assert len(sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"]) == 1


def test_while_an_execution_runs_the_messages_stay_queued(stack):
    _put(stack, [("junk.csv", b"x\n1\n")])
    first = executions.invoke_orchestrator(stack)
    _put(stack, [("junk2.csv", b"y\n2\n")])
    second = executions.invoke_orchestrator(stack)
    assert first["started"] and not second["started"] and "running" in second["reason"]
    executions.follow(stack, first["execution_arn"], progress=lambda _: None)
    third = executions.invoke_orchestrator(stack)
    assert third["started"] and third["keys"] == ["input/junk2.csv"]
    executions.follow(stack, third["execution_arn"], progress=lambda _: None)


def test_duplicate_s3_events_for_one_object_make_one_file(stack):
    sqs = aws.client(stack, "sqs")
    _put(stack, [("junk.csv", b"x\n1\n")])
    [message] = [
        m
        for m in sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
        if "junk.csv" in m["Body"]
    ]
    [record] = json.loads(message["Body"])["Records"]  # as AWS sends it: the version created, a sequencer
    head = aws.client(stack, "s3").head_object(Bucket=stack.bucket, Key="input/junk.csv")
    assert record["s3"]["object"]["versionId"] == head["VersionId"] and record["s3"]["object"]["sequencer"]
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody=message["Body"])  # SQS delivers at least once
    outcome = executions.invoke_orchestrator(stack)
    assert outcome["keys"] == ["input/junk.csv"]
    executions.follow(stack, outcome["execution_arn"], progress=lambda _: None)
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody=message["Body"])  # a late duplicate
    late = executions.invoke_orchestrator(stack)
    assert not late["started"] and late["keys_skipped"] == ["input/junk.csv"]
    assert late["messages_deleted"] == 1


def test_two_uploads_of_one_name_before_a_trigger_make_one_file_of_the_newest(stack):
    s3 = aws.client(stack, "s3")
    s3.put_object(Bucket=stack.bucket, Key="input/junk.csv", Body=b"x\n1\n")
    newest = s3.put_object(Bucket=stack.bucket, Key="input/junk.csv", Body=b"y\n2\n")["VersionId"]
    outcome = executions.invoke_orchestrator(stack)
    assert [(f["key"], f["version_id"]) for f in outcome["files"]] == [("input/junk.csv", newest)]
    report = executions.follow(stack, outcome["execution_arn"], progress=lambda _: None)
    assert report.status == "SUCCEEDED" and report.states == [*FLOW, "NoValidFiles"]
    moved = s3.get_object(Bucket=stack.bucket, Key="rejected/junk.csv")
    assert moved["Body"].read() == b"y\n2\n" and moved["Metadata"]["source-version-id"] == newest
    # The older version is kept beside the newest, by the state machine's move: nothing comes back to input/.
    assert _keys(stack, "input/") == []
    assert s3.list_object_versions(Bucket=stack.bucket, Prefix="input/").get("Versions", []) == []
    [superseded] = [k for k in _keys(stack, "rejected/") if k.startswith("rejected/junk~v")]
    older = s3.get_object(Bucket=stack.bucket, Key=superseded)
    assert older["Body"].read() == b"x\n1\n" and older["Metadata"]["superseded-by"] == newest


def test_a_poison_message_ends_in_the_dead_letter_queue(tmp_path):
    def quick_redrive(body: dict) -> None:  # the template's queue, redriven after 2 receives 1 s apart
        queue = body["Resources"]["FileQueue"]["Properties"]
        queue["VisibilityTimeout"] = 1
        queue["RedrivePolicy"]["maxReceiveCount"] = 2
        variables = body["Resources"]["OrchestratorFunction"]["Properties"]["Environment"]["Variables"]
        variables["PIPELINE_VISIBILITY_TIMEOUT"] = "1"

    server, settings = deployed(tmp_path, edit=quick_redrive)
    try:
        sqs = aws.client(settings, "sqs")
        sqs.send_message(QueueUrl=settings.queue_url, MessageBody="this is not an S3 event")
        dlq = sqs.get_queue_url(QueueName=settings.dead_letter_queue_name)["QueueUrl"]
        for _ in range(3):
            outcome = executions.invoke_orchestrator(settings)
            assert not outcome["started"]
            time.sleep(1.2)
        moved = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
        assert [m["Body"] for m in moved] == ["this is not an S3 event"]
        left = sqs.receive_message(QueueUrl=settings.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        assert left == []
    finally:
        server.stop()


def test_local_up_leaves_a_stack_that_commands_attach_to_and_down_stops(tmp_path):
    from pipeline_tasks.local import stack as local_stack

    state_dir = tmp_path / ".local-stack"
    started = local_stack.up(Settings(notebooks_dir=str(REPO / "notebooks")), state_dir=state_dir)
    try:
        assert local_stack.attached(state_dir)["pid"] == started["pid"]
        attached = local_stack.attached_settings({}, state_dir=state_dir)
        assert attached.aws_endpoint_url == started["endpoint"] and attached.state_machine_arn
        sqs = aws.client(attached, "sqs")
        assert sqs.get_queue_url(QueueName=attached.dead_letter_queue_name)["QueueUrl"]
        with pytest.raises(Exception, match="already runs"):
            local_stack.up(Settings(), state_dir=state_dir)
    finally:
        assert local_stack.down(state_dir) is True
    assert local_stack.attached(state_dir) is None and not local_stack._alive(started["pid"])
    assert local_stack.down(state_dir) is False


def _state_outputs(settings: Settings, execution_arn: str) -> dict[str, int]:
    """The largest output each state left in the execution's history, in bytes of UTF-8."""
    sfn = aws.client(settings, "stepfunctions")
    sizes: dict[str, int] = {}
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        for event in page["events"]:
            exited = event.get("stateExitedEventDetails")
            if exited:
                found = len(exited.get("output", "").encode())
                sizes[exited["name"]] = max(found, sizes.get(exited["name"], 0))
    return sizes


def test_long_names_split_a_backlog_into_batches_whose_state_aws_can_carry(stack):
    """Step Functions carries at most 256 KiB per state (moto any size): a batch's move plan stays within it."""
    room = 900 - len(stack.input_prefix.encode())
    names = [f"{n:02d} {'日' * (room // 3 - 8)}.csv" for n in range(45)]
    _put(stack, [(name, b"not,a,dataset\n1,2,3\n") for name in names])
    batches = []
    while True:
        outcome = executions.invoke_orchestrator(stack)
        if not outcome["started"]:
            break
        report = executions.follow(stack, outcome["execution_arn"], progress=lambda _: None)
        assert report.status == "SUCCEEDED" and report.states == [*FLOW, "NoValidFiles"], report
        outputs = _state_outputs(stack, outcome["execution_arn"])
        assert outputs["ReadValidationResult"] <= state_payload.MOVE_PLAN_LIMIT < state_payload.STATE_PAYLOAD_LIMIT
        assert max(outputs.values()) <= state_payload.STATE_PAYLOAD_LIMIT, outputs
        batches.append(outcome["keys"])
    assert len(batches) >= 2 and sorted(k for keys in batches for k in keys) == sorted("input/" + n for n in names)
    assert _keys(stack, "input/") == [] and len(_keys(stack, "rejected/")) == len(names)
