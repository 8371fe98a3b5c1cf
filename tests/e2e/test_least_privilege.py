"""Least privilege, by running it: the local stack is infra/pipeline.yaml on an emulator that checks IAM.

Every actor runs under its own role from the template (the orchestrator and read-result
functions, the task role of the three ECS tasks, the state machine's role), and the
emulator answers as AWS does when a policy does not allow a call (docs/deploy.md, "What the
local stack checks, and what it cannot"). So removing one action the pipeline needs from
the template fails the run, with an AccessDenied that names the action and the role.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline_tasks import executions
from pipeline_tasks.errors import StepFailed
from pipeline_tasks.io import aws
from pipeline_tasks.local import template
from pipeline_tasks.settings import Settings
from tests.builders import csv_bytes, item, order, product
from tests.expected_states import FAILED_AT_TRANSFORM, PROCESSED
from tests.local_stacks import deployed

pytestmark = [pytest.mark.aws, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]

BATCH = [
    ("products.csv", csv_bytes("products", [product(1, "Tops")])),
    ("orders.csv", csv_bytes("orders", [order(1, "2024-03-01 10:00:00")])),
    ("order_items.csv", csv_bytes("order_items", [item(1, 1, pid=1)])),
]


def without(role: str, action: str) -> Any:
    """A template edit that removes ``action`` from every statement of ``role``'s policies."""

    def edit(body: dict[str, Any]) -> None:
        removed = 0
        for policy in body["Resources"][role]["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                kept = [a for a in actions if a != action]
                removed += len(actions) - len(kept)
                statement["Action"] = kept or ["none:NoAction"]
        assert removed, f"{role} has no {action} to remove"

    return edit


def _put(settings: Settings, files: list[tuple[str, bytes]]) -> None:
    s3 = aws.client(settings, "s3")
    for name, data in files:
        s3.put_object(Bucket=settings.bucket, Key=settings.input_prefix + name, Body=data)


def _physical_role(settings: Settings, logical: str) -> str:
    return template.physical_ids(aws.client(settings, "cloudformation"), "ecom-pipeline-local")[logical]


def test_the_orchestrator_without_start_execution_fails_naming_the_action_and_its_role(tmp_path):
    server, settings = deployed(tmp_path, without("OrchestratorRole", "states:StartExecution"))
    try:
        _put(settings, BATCH)
        with pytest.raises(StepFailed) as failure:
            executions.invoke_orchestrator(settings)
        message = str(failure.value)
        assert "AccessDenied" in message and "states:StartExecution" in message
        assert _physical_role(settings, "OrchestratorRole") in message
    finally:
        server.stop()


@pytest.mark.spark
def test_the_transformer_without_batch_write_fails_the_execution_naming_the_action_and_its_role(tmp_path):
    server, settings = deployed(tmp_path, without("TaskRole", "dynamodb:BatchWriteItem"))
    try:
        _put(settings, BATCH)
        outcome = executions.invoke_orchestrator(settings)
        report = executions.follow(settings, outcome["execution_arn"], progress=lambda _: None)
        assert report.status == "FAILED" and report.states == FAILED_AT_TRANSFORM
        [log] = (tmp_path / "task-logs").glob("transformer-*.log")
        text = log.read_text()
        assert "dynamodb:BatchWriteItem" in text and _physical_role(settings, "TaskRole") in text
    finally:
        server.stop()


@pytest.mark.parametrize("list_bucket", [True, False], ids=["template", "without-s3:ListBucket"])
def test_an_event_for_a_version_already_moved_is_dropped_only_by_an_orchestrator_that_may_list(tmp_path, list_bucket):
    """The orchestrator's HeadObject of a version the state machine already moved: 404 (dropped) when its
    role may list the bucket, 403 otherwise, as on AWS; the template's role must be the first."""
    server, settings = deployed(tmp_path, None if list_bucket else without("OrchestratorRole", "s3:ListBucket"))
    try:
        s3, sqs = aws.client(settings, "s3"), aws.client(settings, "sqs")
        s3.put_object(Bucket=settings.bucket, Key="input/orders.csv", Body=BATCH[1][1])
        events = sqs.receive_message(QueueUrl=settings.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        [body] = [m["Body"] for m in events["Messages"] if "Records" in json.loads(m["Body"])]
        version = json.loads(body)["Records"][0]["s3"]["object"]["versionId"]
        s3.delete_object(Bucket=settings.bucket, Key="input/orders.csv", VersionId=version)  # as a move does
        if list_bucket:
            assert not executions.invoke_orchestrator(settings)["started"]
            left = sqs.receive_message(QueueUrl=settings.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            assert left == []
        else:
            with pytest.raises(StepFailed, match=r"403|AccessDenied"):
                executions.invoke_orchestrator(settings)
    finally:
        server.stop()


@pytest.mark.spark
def test_the_whole_flow_runs_under_the_template_roles_and_a_duplicate_event_after_it_is_harmless(tmp_path):
    """A duplicate S3 event for a file already archived: HeadObject of a version that is gone. AWS answers
    404 only to a caller allowed s3:ListBucket, else 403 (which fails the orchestrator run and, after
    three receives, sends every queued event, valid files' too, to the dead-letter queue)."""
    server, settings = deployed(tmp_path)
    try:
        _put(settings, BATCH)
        sqs = aws.client(settings, "sqs")
        events = sqs.receive_message(QueueUrl=settings.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        bodies = [m["Body"] for m in events["Messages"] if "Records" in json.loads(m["Body"])]  # not s3:TestEvent
        assert len(bodies) == len(BATCH)
        outcome = executions.invoke_orchestrator(settings)
        report = executions.follow(settings, outcome["execution_arn"], progress=lambda _: None)
        assert report.status == "SUCCEEDED" and report.states == PROCESSED

        for body in bodies:  # S3 delivers an event at least once
            sqs.send_message(QueueUrl=settings.queue_url, MessageBody=body)
        again = executions.invoke_orchestrator(settings)
        assert not again["started"], again
        left = sqs.receive_message(QueueUrl=settings.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        assert left == []  # consumed, not left to reach the dead-letter queue
        assert json.loads(bodies[0])["Records"][0]["s3"]["object"]["versionId"]
    finally:
        server.stop()
