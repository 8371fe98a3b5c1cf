"""S3 event notifications, as they arrive on the queue, turned into a batch (pure).

A queue message holds an S3 event (``Records``), S3's ``s3:TestEvent`` when the
notification is configured, or — with S3 → SNS → SQS — an SNS envelope around
either. Keys arrive URL-encoded as in an HTML form: a space is ``+`` and a literal
``+`` is ``%2B`` (``input/my+file%2B1.csv`` is ``input/my file+1.csv``).

An object-created record names the version it created (``s3.object.versionId``, when
the bucket is versioned) and a ``sequencer`` that orders the events of one key.
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
    """One object-created event: the decoded key, when S3 says it happened, and what it created.

    Attributes:
        key: The object key, decoded.
        event_time: The record's ``eventTime`` (ISO 8601).
        version_id: The version the event created; None when the record has none
            (an unversioned bucket, or moto, whose records carry no ``versionId``).
        sequencer: The record's ``sequencer``: orders the events of one key.
    """

    key: str
    event_time: str
    version_id: str | None = None
    sequencer: str | None = None


@dataclass(frozen=True)
class ParsedMessage:
    kind: MessageKind
    events: tuple[FileEvent, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class Batch:
    """The files of one execution, one event per key, in the order their events arrived."""

    files: tuple[FileEvent, ...]
    first_event_time: str
    message_ids: tuple[str, ...] = field(default=())

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.files)

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
            name, s3_object, when = record["eventName"], record["s3"]["object"], record["eventTime"]
            key = unquote_plus(s3_object["key"])
        except (KeyError, TypeError):
            return ParsedMessage(MessageKind.POISON, reason="a record without eventName, s3.object.key or eventTime")
        if str(name).startswith("ObjectCreated:") and key.startswith(input_prefix) and not key.endswith("/"):
            version, sequencer = s3_object.get("versionId"), s3_object.get("sequencer")
            events.append(
                FileEvent(
                    key,
                    str(when),
                    version_id=str(version) if version else None,
                    sequencer=str(sequencer) if sequencer else None,
                )
            )
    return ParsedMessage(MessageKind.FILES, tuple(events))


def later(event: FileEvent, other: FileEvent) -> bool:
    """Whether ``event`` happened after ``other`` (two events of one key).

    By the sequencers when both have one — S3's rule: right-pad the shorter with zeros,
    then compare as text — otherwise by event time.
    """
    if event.sequencer and other.sequencer:
        width = max(len(event.sequencer), len(other.sequencer))
        return event.sequencer.upper().ljust(width, "0") > other.sequencer.upper().ljust(width, "0")
    return event.event_time > other.event_time


def plan_batch(events: Iterable[FileEvent], message_ids: Sequence[str]) -> Batch:
    """One event per key — the newest — ordered by event time, ties by key.

    A key seen several times (duplicate notifications, or the object written again)
    is pinned to its newest event (``later``): the batch processes the version that
    event created, and older versions of the key are superseded by it.
    """
    newest: dict[str, FileEvent] = {}
    for event in events:
        if event.key not in newest or later(event, newest[event.key]):
            newest[event.key] = event
    ordered = sorted(newest.values(), key=lambda e: (e.event_time, e.key))
    return Batch(
        files=tuple(ordered),
        first_event_time=ordered[0].event_time if ordered else "",
        message_ids=tuple(message_ids),
    )
