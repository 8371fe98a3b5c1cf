"""S3 event notifications, as they arrive on the queue, turned into a batch (pure).

A queue message holds an S3 event (``Records``), S3's ``s3:TestEvent`` when the
notification is configured, or — with S3 → SNS → SQS — an SNS envelope around
either. Keys arrive URL-encoded (``input/my+file.csv``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import unquote_plus


class MessageKind(StrEnum):
    FILES = "files"  # object-created events (possibly none under input/)
    TEST = "test"  # s3:TestEvent: nothing to do
    POISON = "poison"  # not an S3 event: left on the queue until SQS moves it to the DLQ


@dataclass(frozen=True)
class FileEvent:
    """One object-created event: the decoded key and when S3 says it happened."""

    key: str
    event_time: str


@dataclass(frozen=True)
class ParsedMessage:
    kind: MessageKind
    events: tuple[FileEvent, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class Batch:
    """The keys of one execution, in the order their creation events arrived."""

    keys: tuple[str, ...]
    first_event_time: str
    message_ids: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        """A deterministic execution name: the same messages always give the same name.

        Step Functions refuses a second execution of one name, so an orchestrator run
        retried after a crash cannot start the batch twice.
        """
        digest = hashlib.sha256("\n".join(sorted(self.message_ids) or self.keys).encode()).hexdigest()[:12]
        stamp = re.sub(r"[^0-9T]", "", self.first_event_time.split(".")[0])[:15] or "unknown"
        return f"batch-{stamp}-{digest}"


def parse_message(body: str, input_prefix: str) -> ParsedMessage:
    """What one queue message says; object-created events outside ``input_prefix`` are dropped."""
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, TypeError):
        return ParsedMessage(MessageKind.POISON, reason="not JSON")
    if isinstance(document, dict) and document.get("Type") == "Notification" and "Message" in document:
        return parse_message(document["Message"], input_prefix)  # S3 -> SNS -> SQS
    if not isinstance(document, dict):
        return ParsedMessage(MessageKind.POISON, reason="not a JSON object")
    if document.get("Event") == "s3:TestEvent":
        return ParsedMessage(MessageKind.TEST)
    records = document.get("Records")
    if not isinstance(records, list):
        return ParsedMessage(MessageKind.POISON, reason="no Records")
    events = []
    for record in records:
        try:
            name, key, when = record["eventName"], record["s3"]["object"]["key"], record["eventTime"]
        except (KeyError, TypeError):
            return ParsedMessage(MessageKind.POISON, reason="a record without eventName, s3.object.key or eventTime")
        key = unquote_plus(key)
        if str(name).startswith("ObjectCreated:") and key.startswith(input_prefix) and not key.endswith("/"):
            events.append(FileEvent(key, str(when)))
    return ParsedMessage(MessageKind.FILES, tuple(events))


def plan_batch(events: Iterable[FileEvent], message_ids: Sequence[str]) -> Batch:
    """Dedupe the events' keys and order them by event time, ties by key.

    A key seen several times (duplicate notifications, or the object written again)
    takes the time of its latest event: the object as it is now was created then.
    """
    latest: dict[str, str] = {}
    for event in events:
        if event.key not in latest or event.event_time > latest[event.key]:
            latest[event.key] = event.event_time
    ordered = sorted(latest.items(), key=lambda kv: (kv[1], kv[0]))
    return Batch(
        keys=tuple(key for key, _ in ordered),
        first_event_time=ordered[0][1] if ordered else "",
        message_ids=tuple(message_ids),
    )
