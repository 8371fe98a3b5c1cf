"""The scheduled orchestrator: turn the queued S3 events into one batch and start its execution.

Run every 5 minutes (EventBridge Scheduler → the Pipeline-Orchestrator Lambda), or
by ``ecom-pipeline trigger``. One run:

1. takes a lock (an S3 object written only if absent), so two runs at once start at
   most one execution; a stale lock (a crashed run) expires;
2. does nothing while an execution of the state machine is running — the messages
   stay queued for the next run;
3. receives the queue in pages of 10 until it is empty or the batch is full;
   ``s3:TestEvent`` messages and events outside ``input/`` are dropped; a message
   that is not an S3 event is left alone, so SQS moves it to the dead-letter queue
   after ``max_receive_count`` receives;
4. pins one version per key — the newest event's (``events.plan_batch``) — orders
   the files by event time, and drops the versions no longer in ``input/`` (a
   duplicate event of a version already processed); an event without a version id
   (an unversioned bucket, moto) is pinned to the key's current version;
5. writes the batch manifest (each file's key, version and event time), starts the
   execution under a name derived from the messages, and only then deletes the messages.

Whether a version is there is asked with HeadObject. A missing key answers 404 only to
a caller allowed s3:ListBucket, 403 otherwise; the orchestrator's role has it, and a
403 is an error, not "absent": it also answers a missing s3:GetObjectVersion or KMS
grant, and a file taken for absent would lose its message and stay in ``input/``.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from pipeline_tasks import batches, state_payload
from pipeline_tasks.batches import BatchFile
from pipeline_tasks.errors import ConfigurationError
from pipeline_tasks.events import FileEvent, MessageKind, parse_message, plan_batch
from pipeline_tasks.io import aws
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.layout import lock_key, manifest_key, rerun_manifests_prefix
from pipeline_tasks.settings import Settings

log = logging.getLogger(__name__)

#: A lock older than this belongs to a run that died; the next run takes it over.
LOCK_EXPIRY = timedelta(minutes=15)


@dataclass
class OrchestratorRun:
    """What one orchestrator run did."""

    started: bool = False
    reason: str = ""
    execution_id: str | None = None
    execution_arn: str | None = None
    keys: list[str] = field(default_factory=list)
    #: The pinned files: key, version_id, event_time.
    files: list[dict[str, Any]] = field(default_factory=list)
    messages_deleted: int = 0
    messages_left_for_the_dlq: int = 0
    keys_skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def queue_url(settings: Settings) -> str:
    if settings.queue_url:
        return settings.queue_url
    return str(aws.client(settings, "sqs").get_queue_url(QueueName=settings.queue_name)["QueueUrl"])


def state_machine_arn(settings: Settings) -> str:
    if settings.state_machine_arn:
        return settings.state_machine_arn
    sfn = aws.client(settings, "stepfunctions")
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == settings.state_machine_name:
                return str(machine["stateMachineArn"])
    raise ConfigurationError(f"no state machine named {settings.state_machine_name!r}")


@contextmanager
def orchestrator_lock(settings: Settings) -> Iterator[bool]:
    """Hold the orchestrator's lock for the block; yields False when another run holds it."""
    s3 = aws.client(settings, "s3")
    key = lock_key(settings)
    body = json.dumps({"owner": str(uuid.uuid4()), "acquired_at": datetime.now(UTC).isoformat()}).encode()
    acquired = _put_if_absent(s3, settings.bucket, key, body)
    if not acquired and _expired(s3, settings.bucket, key):
        log.warning("taking over an expired orchestrator lock")
        s3.delete_object(Bucket=settings.bucket, Key=key)
        acquired = _put_if_absent(s3, settings.bucket, key, body)
    try:
        yield acquired
    finally:
        if acquired:
            s3.delete_object(Bucket=settings.bucket, Key=key)


def _put_if_absent(s3: Any, bucket: str, key: str, body: bytes) -> bool:
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
            return False
        raise
    return True


def _expired(s3: Any, bucket: str, key: str) -> bool:
    try:
        modified = s3.head_object(Bucket=bucket, Key=key)["LastModified"]
    except ClientError:
        return True
    return bool(datetime.now(UTC) - modified > LOCK_EXPIRY)


@contextmanager
def _sole_starter(settings: Settings, outcome: OrchestratorRun) -> Iterator[str | None]:
    """Yield the state machine's ARN while this run alone may start an execution, else None.

    None when another run holds the lock or an execution is running; ``outcome.reason`` says which.
    """
    with orchestrator_lock(settings) as acquired:
        if not acquired:
            outcome.reason = "another orchestrator run holds the lock"
            yield None
            return
        machine = state_machine_arn(settings)
        sfn = aws.client(settings, "stepfunctions")
        running = sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING", maxResults=1)["executions"]
        if running:
            outcome.reason = f"execution {running[0]['name']} is running; the messages stay queued"
            yield None
            return
        yield machine


def run(settings: Settings) -> OrchestratorRun:
    """One orchestrator run (see the module's docstring)."""
    outcome = OrchestratorRun()
    with _sole_starter(settings, outcome) as machine:
        if machine is not None:
            _drain_and_start(settings, machine, outcome)
    return outcome


def rerun(settings: Settings, execution_id: str) -> OrchestratorRun:
    """Start a failed execution's batch again: the versions of its manifest still in ``input/``.

    The queue no longer holds their messages (deleted when the first execution started);
    the new execution is named ``{execution_id}-rerun-{n}``. A pinned version that is
    gone (moved, or deleted as superseded by a newer upload) is skipped and reported in
    ``keys_skipped``.
    """
    outcome = OrchestratorRun()
    with _sole_starter(settings, outcome) as machine:
        if machine is None:
            return outcome
        s3 = aws.client(settings, "s3")
        original = re.sub(r"-rerun-\d+$", "", execution_id)
        files = batches.read_manifest(settings, manifest_key(settings, execution_id))
        present = []
        for file in files:
            pinned = batches.pin(s3, settings.bucket, file.key, file.version_id, file.event_time)
            if pinned is None:
                outcome.keys_skipped.append(file.key)
            else:
                present.append(pinned)
        if not present:
            outcome.reason = f"no file of {execution_id} is left in {settings.input_prefix}"
            return outcome
        earlier = s3io.list_keys(s3, settings.bucket, rerun_manifests_prefix(settings, original))
        name = f"{original}-rerun-{sum(1 for _ in earlier) + 1}"
        _start(settings, machine, name, present, outcome)
    return outcome


def _start(settings: Settings, machine: str, name: str, files: list[BatchFile], outcome: OrchestratorRun) -> None:
    manifest = batches.write_manifest(settings, name, files)
    document = {"execution_id": name, "manifest_key": manifest, "files": len(files)}
    sfn = aws.client(settings, "stepfunctions")
    try:
        started = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(document))
        outcome.execution_arn = started["executionArn"]
    except sfn.exceptions.ExecutionAlreadyExists:
        outcome.execution_arn = f"{machine.replace(':stateMachine:', ':execution:')}:{name}"
    outcome.started, outcome.execution_id = True, name
    outcome.keys, outcome.files = [f.key for f in files], [f.to_dict() for f in files]
    log.info("started %s with %d file(s)", name, len(files))


def _drain_and_start(settings: Settings, machine: str, outcome: OrchestratorRun) -> None:
    sqs, s3 = aws.client(settings, "sqs"), aws.client(settings, "s3")
    url = queue_url(settings)
    events: list[FileEvent] = []
    used: dict[str, str] = {}  # message id -> receipt handle, deleted once the execution started
    planned: dict[str, int] = {}  # key -> the most its move-plan entry can take (state_payload.entry_bytes)
    largest = state_payload.largest_entry_bytes(settings)
    while len(planned) < settings.max_batch_files and sum(planned.values()) < state_payload.MOVE_PLAN_BUDGET:
        page = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=_messages_with_room(sum(planned.values()), largest),
            WaitTimeSeconds=0,
            VisibilityTimeout=settings.visibility_timeout,
        ).get("Messages", [])
        if not page:
            break
        for message in page:
            parsed = parse_message(message.get("Body", ""), settings.input_prefix)
            if parsed.kind is MessageKind.POISON:
                log.warning("message %s is not an S3 event (%s): left for the DLQ", message["MessageId"], parsed.reason)
                outcome.messages_left_for_the_dlq += 1
                continue
            used[message["MessageId"]] = message["ReceiptHandle"]
            events.extend(parsed.events)
            for event in parsed.events:
                planned.setdefault(event.key, state_payload.entry_bytes(settings, event.key))
    batch = plan_batch(events, list(used))
    files = []
    for event in batch.files:
        pinned = batches.pin(s3, settings.bucket, event.key, event.version_id, event.event_time)
        if pinned is None:
            outcome.keys_skipped.append(event.key)
        else:
            files.append(pinned)
    if files:
        _start(settings, machine, batch.name, files, outcome)
    else:
        outcome.reason = "no new file in input/"
    outcome.messages_deleted = _delete(sqs, url, used)


def _messages_with_room(planned_bytes: int, largest_entry: int) -> int:
    """Messages to receive next: as many as the budget has room for at the largest entry, 1 to 10.

    A receive then never passes the budget, except the last one, by one file at most.
    """
    room = state_payload.MOVE_PLAN_BUDGET - planned_bytes
    return max(1, min(10, room // largest_entry))


def _delete(sqs: Any, url: str, receipts: dict[str, str]) -> int:
    entries = [{"Id": str(n), "ReceiptHandle": handle} for n, handle in enumerate(receipts.values())]
    deleted = 0
    for start in range(0, len(entries), 10):
        response = sqs.delete_message_batch(QueueUrl=url, Entries=entries[start : start + 10])
        deleted += len(response.get("Successful", []))
        for failure in response.get("Failed", []):
            log.warning("could not delete a message (%s); it will come back", failure.get("Message"))
    return deleted
