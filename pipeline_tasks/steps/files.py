"""HandleInvalidFiles and ArchiveValidFiles: move a batch's files out of ``input/``.

A batch moves exactly the versions it validated: each file's pinned version is copied
to ``archive/`` (valid) or ``rejected/`` (invalid). The older versions of the same key
that no execution pinned (uploads of the name superseded by the pinned one before the
batch started, never processed) are copied beside it under distinct names, with
``superseded-by`` in their metadata, so that every upload ends in ``archive/`` or
``rejected/``. Then those versions are deleted, oldest first, the pinned one last. An
older version a failed execution pinned is left in ``input/`` for that batch's rerun
(``batches.pinned_by_an_execution``). A newer upload of the same name is not
touched: it stays current in ``input/`` and its own event brings it to the next batch.

When the destination's plain name already holds another version of the same file (an
earlier upload of that name), the copy goes to a distinct name: a hash of the version
before the extension (``archive/orders~v1a2b3c4d5e6f.csv``). Every copy carries the
original key and version in its metadata (``keys.source_metadata``).

``move_plan`` decides (the validation result, ``documents.BatchValidation``, in; the
plan's JSON out); ``plan_moves`` gathers what it needs from S3; the state machine's
Map states, or ``reject``/``archive`` here, act on the plan.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pipeline_tasks import batches, keys
from pipeline_tasks.documents import BatchValidation, RejectedFile, ValidFile
from pipeline_tasks.errors import StepFailed
from pipeline_tasks.io import aws
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.layout import result_key
from pipeline_tasks.settings import Settings

log = logging.getLogger(__name__)

#: How the S3 API names the version of an object written while the bucket was unversioned.
NULL_VERSION = "null"


def move_plan(
    settings: Settings,
    result: BatchValidation | Mapping[str, Any],
    *,
    taken: Mapping[str, str | None] | None = None,
    older: Mapping[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The validation result as the state machine's Map states need it (no I/O; JSON out).

    Args:
        settings: The bucket and its prefixes.
        result: The validation result, or its JSON (of its files, only each ``key`` and
            its pinned ``version_id`` are read, and a rejected file's ``reason``).
        taken: The plain destinations that already exist, each with the
            ``source-version-id`` of the object there (None when it has none).
        older: For a source key, its versions older than the pinned one, oldest first.

    Returns:
        ``valid_files`` and ``invalid_files``, each entry with the file's ``key``, its
        ``version_id``, the URL-encoded ``copy_source`` of that version, its destination
        (``archive_key`` or ``rejected_key``), the copy's ``metadata`` and the versions
        to delete (``delete_versions``, oldest first, the pinned one last); the counts.
    """
    validation = BatchValidation.of(result)
    taken, older = taken or {}, older or {}
    valid = [
        _planned_move(settings, f.key, f.version_id, settings.archive_prefix, taken, older)
        for f in validation.valid_files
    ]
    invalid = [_planned_rejection(settings, f, taken, older) for f in validation.invalid_files]
    return {
        "has_valid_files": bool(valid),
        "valid_files": [v | {"archive_key": v.pop("destination_key")} for v in valid],
        "invalid_files": [i | {"rejected_key": i.pop("destination_key")} for i in invalid],
        "valid_count": len(valid),
        "invalid_count": len(invalid),
    }


def _planned_move(
    settings: Settings,
    key: str,
    pinned: str | None,
    to_prefix: str,
    taken: Mapping[str, str | None],
    older: Mapping[str, list[str]],
) -> dict[str, Any]:
    """One file's move to ``to_prefix``: its pinned version copied, then its versions deleted."""
    plain = keys.destination_key(key, settings.input_prefix, to_prefix)
    claimed = pinned is not None and plain in taken and taken[plain] != pinned
    destination = (
        keys.destination_key(key, settings.input_prefix, to_prefix, distinct=str(pinned)) if claimed else plain
    )
    version = pinned if pinned is not None else NULL_VERSION
    superseded = [_superseded_copy(settings, key, v, version, to_prefix) for v in older.get(key, [])]
    return {
        "key": key,
        "version_id": version,
        "copy_source": keys.copy_source(settings.bucket, key, version),
        "destination_key": destination,
        "metadata": keys.source_metadata(key, pinned),
        # Each older version is copied (it has a ``copy_source``), then deleted; the pinned one last.
        "delete_versions": [*superseded, {"key": key, "version_id": version}],
    }


def _superseded_copy(settings: Settings, key: str, older: str, pinned: str, to_prefix: str) -> dict[str, Any]:
    """An older, never processed upload of ``key``: copied beside the pinned version, then deleted."""
    return {
        "key": key,
        "version_id": older,
        "copy_source": keys.copy_source(settings.bucket, key, older),
        "destination_key": keys.destination_key(key, settings.input_prefix, to_prefix, distinct=older),
        "metadata": keys.source_metadata(key, older) | {"superseded-by": keys.metadata_text(pinned)},
    }


def _planned_rejection(
    settings: Settings, item: RejectedFile, taken: Mapping[str, str | None], older: Mapping[str, list[str]]
) -> dict[str, Any]:
    """A rejected file's move to ``rejected/``, its reason in the copy's metadata and in the entry."""
    reason = keys.metadata_text(str(item.reason or ""))
    planned = _planned_move(settings, item.key, item.version_id, settings.rejected_prefix, taken, older)
    planned["metadata"] = planned["metadata"] | {"rejection-reason": reason}
    return planned | {"reason": reason}


def plan_moves(settings: Settings, result: BatchValidation | Mapping[str, Any]) -> dict[str, Any]:
    """``move_plan`` with what it needs read from S3: the destinations taken, the older versions."""
    validation = BatchValidation.of(result)
    s3 = aws.client(settings, "s3")
    taken: dict[str, str | None] = {}
    older: dict[str, list[str]] = {}
    moves: tuple[tuple[Sequence[ValidFile | RejectedFile], str], ...] = (
        (validation.valid_files, settings.archive_prefix),
        (validation.invalid_files, settings.rejected_prefix),
    )
    for items, prefix in moves:
        for item in items:
            plain = keys.destination_key(item.key, settings.input_prefix, prefix)
            head = s3io.head_version(s3, settings.bucket, plain)
            if head is not None:
                taken[plain] = head.get("Metadata", {}).get("source-version-id")
            if item.version_id is not None:
                versions = s3io.older_versions(s3, settings.bucket, item.key, item.version_id) or []
                # A version another execution pinned is that batch's file, waiting for its rerun.
                older[item.key] = [v for v in versions if not batches.pinned_by_an_execution(s3, settings, item.key, v)]
    return move_plan(settings, validation, taken=taken, older=older)


def read_move_plan(settings: Settings, execution_id: str) -> dict[str, Any]:
    """Read ``results/{execution_id}.json`` and return its move plan (Read-Validation-Result)."""
    key = result_key(settings, execution_id)
    result = s3io.get_json_or_none(aws.client(settings, "s3"), settings.bucket, key)
    if result is None:
        raise StepFailed(f"no validation result s3://{settings.bucket}/{key}")
    return plan_moves(settings, BatchValidation.from_json(result))


def reject(settings: Settings, invalid_files: Iterable[RejectedFile | Mapping[str, Any]]) -> list[str]:
    """Move invalid files (validation result entries) to ``rejected/``, their reason in the metadata."""
    plan = plan_moves(settings, BatchValidation(invalid_files=tuple(RejectedFile.of(f) for f in invalid_files)))
    moved = _execute(settings, plan["invalid_files"], "rejected_key")
    for item in plan["invalid_files"]:
        log.info("rejected %s -> %s (%s)", item["key"], item["rejected_key"], item["reason"])
    return moved


def archive(settings: Settings, valid_files: Iterable[ValidFile | Mapping[str, Any]]) -> list[str]:
    """Move processed files (validation result entries) to ``archive/``."""
    plan = plan_moves(settings, BatchValidation(valid_files=tuple(ValidFile.of(f) for f in valid_files)))
    moved = _execute(settings, plan["valid_files"], "archive_key")
    log.info("archived %d file(s)", len(moved))
    return moved


def _execute(settings: Settings, entries: list[dict[str, Any]], destination: str) -> list[str]:
    """What the state machine's Map states do: copy the version, then delete the versions listed.

    A version already gone (a move retried) is not copied again; its deletes still run.
    """
    s3 = aws.client(settings, "s3")

    def api(version: str) -> str | None:
        return None if version == NULL_VERSION else version

    for item in entries:
        copied = s3io.copy_version(
            s3, settings.bucket, item["key"], api(item["version_id"]), item[destination], item["metadata"]
        )
        if not copied:
            log.info("%s (version %s) was moved already", item["key"], item["version_id"])
        for older in item["delete_versions"]:
            if "copy_source" in older:  # a superseded upload: kept beside the pinned one
                s3io.copy_version(
                    s3,
                    settings.bucket,
                    older["key"],
                    api(older["version_id"]),
                    older["destination_key"],
                    older["metadata"],
                )
        s3io.delete_versions(s3, settings.bucket, item["key"], [api(d["version_id"]) for d in item["delete_versions"]])
    return [item[destination] for item in entries]
