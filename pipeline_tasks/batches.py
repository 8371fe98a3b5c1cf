"""Where a batch's documents live: its manifest (the files to process) and its validation result.

Only boto3 underneath, so that the Lambda functions (the orchestrator writes manifests,
Read-Validation-Result reads results) package without the data libraries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline_tasks.errors import ConfigurationError
from pipeline_tasks.io import aws
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.layout import manifest_key, pin_marker_key
from pipeline_tasks.settings import Settings


@dataclass(frozen=True)
class BatchFile:
    """One file of a batch: its key and the version the batch pinned.

    Attributes:
        key: The object key under ``input/``.
        version_id: The pinned version; None means the current version (a manifest
            written before versions were pinned, or an unversioned bucket).
        event_time: When S3 created that version (its event's ``eventTime``, or the
            object's ``LastModified``); None when unknown.
    """

    key: str
    version_id: str | None = None
    event_time: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> BatchFile:
        key, version, when = document.get("key"), document.get("version_id"), document.get("event_time")
        if not isinstance(key, str) or not all(v is None or isinstance(v, str) for v in (version, when)):
            raise ConfigurationError(f"not a batch file entry: {dict(document)!r}")
        return cls(key, version, when)


def pin(
    s3: Any, bucket: str, key: str, version_id: str | None = None, event_time: str | None = None
) -> BatchFile | None:
    """The file to process: ``version_id`` if still there, else None; without one, the current version.

    The event time defaults to the version's ``LastModified``. A 403 is raised, not read
    as "gone" (``s3io.head_version``).
    """
    head = s3io.head_version(s3, bucket, key, version_id)
    if head is None:
        return None
    return BatchFile(key, version_id or head.get("VersionId"), event_time or head["LastModified"].isoformat())


def as_batch_files(files: Sequence[BatchFile | str]) -> list[BatchFile]:
    """Bare keys become files of their current version."""
    return [f if isinstance(f, BatchFile) else BatchFile(f) for f in files]


def pinned_by_an_execution(s3: Any, settings: Settings, key: str, version_id: str) -> bool:
    """Whether an execution's manifest pinned this version (so it is that batch's file, not superseded)."""
    return s3io.head_version(s3, settings.bucket, pin_marker_key(settings, key, version_id)) is not None


def write_manifest(settings: Settings, execution_id: str, files: Sequence[BatchFile | str]) -> str:
    """Store a batch manifest (the files of a batch, in arrival order); return its key.

    The document holds ``files`` (key, pinned version, event time) and, for older
    readers, ``keys``. Large file lists travel through S3, not through task parameters.
    Each pinned version is also marked (``pin_marker_key``): when a later batch moves a
    newer upload of the same name, a version a failed execution pinned is its file,
    waiting for the rerun, not a superseded upload (``steps.files.plan_moves``).
    """
    entries = as_batch_files(files)
    s3 = aws.client(settings, "s3")
    for entry in entries:
        if entry.version_id is not None:
            marker = pin_marker_key(settings, entry.key, entry.version_id)
            s3.put_object(Bucket=settings.bucket, Key=marker, Body=execution_id.encode())
    key = manifest_key(settings, execution_id)
    document = {
        "execution_id": execution_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "keys": [f.key for f in entries],
        "files": [f.to_dict() for f in entries],
    }
    s3io.put_json(s3, settings.bucket, key, document)
    return key


def read_manifest(settings: Settings, key: str) -> list[BatchFile]:
    """The files of a batch manifest; a clear error when it is missing or malformed.

    A manifest with only ``keys`` (written before versions were pinned) gives files of
    their current version.
    """
    document = s3io.get_json_or_none(aws.client(settings, "s3"), settings.bucket, key)
    if document is None:
        raise ConfigurationError(f"batch manifest not found: s3://{settings.bucket}/{key}")
    return parse_manifest(document, f"s3://{settings.bucket}/{key}")


def parse_manifest(document: Any, where: str = "the batch manifest") -> list[BatchFile]:
    """The files of a manifest document (dict in, entries out)."""
    if isinstance(document, dict) and isinstance(document.get("files"), list):
        if not all(isinstance(f, dict) for f in document["files"]):
            raise ConfigurationError(f"{where} has a malformed list of files")
        return [BatchFile.from_dict(f) for f in document["files"]]
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ConfigurationError(f"{where} has no list of keys")
    return [BatchFile(k) for k in keys]
