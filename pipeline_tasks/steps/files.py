"""HandleInvalidFiles and ArchiveValidFiles: move a batch's files out of ``input/``."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from pipeline_tasks import batches
from pipeline_tasks.errors import StepFailed
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.settings import Settings

log = logging.getLogger(__name__)


def reject(settings: Settings, invalid_files: Iterable[Mapping[str, Any]]) -> list[str]:
    """Move invalid files to ``rejected/``, their reason kept in the object's metadata."""
    s3 = s3io.client(settings, "s3")
    moved = []
    for item in invalid_files:
        to_key = s3io.destination_key(item["key"], settings.input_prefix, settings.rejected_prefix)
        reason = metadata_safe(str(item.get("reason") or ""))
        s3io.move_object(s3, settings.bucket, item["key"], to_key, metadata={"rejection-reason": reason})
        log.info("rejected %s -> %s (%s)", item["key"], to_key, reason)
        moved.append(to_key)
    return moved


def archive(settings: Settings, keys: Iterable[str]) -> list[str]:
    """Move processed files to ``archive/``."""
    s3 = s3io.client(settings, "s3")
    moved = []
    for key in keys:
        to_key = s3io.destination_key(key, settings.input_prefix, settings.archive_prefix)
        s3io.move_object(s3, settings.bucket, key, to_key)
        moved.append(to_key)
    log.info("archived %d file(s)", len(moved))
    return moved


def move_plan(settings: Settings, result: Mapping[str, Any]) -> dict[str, Any]:
    """The validation result as the state machine's Map states need it (dict in, dict out).

    Every file gets its destination key and its URL-encoded ``CopySource``; a rejected
    file keeps its reason, made ASCII and short enough for S3 object metadata.
    """

    def entry(key: str, to_prefix: str) -> dict[str, str]:
        return {
            "key": key,
            "copy_source": quote(f"{settings.bucket}/{key}", safe="/"),
            "destination_key": s3io.destination_key(key, settings.input_prefix, to_prefix),
        }

    valid = [entry(f["key"], settings.archive_prefix) for f in result["valid_files"]]
    invalid = [
        entry(f["key"], settings.rejected_prefix) | {"reason": metadata_safe(str(f.get("reason") or ""))}
        for f in result["invalid_files"]
    ]
    return {
        "has_valid_files": bool(valid),
        "valid_files": [v | {"archive_key": v.pop("destination_key")} for v in valid],
        "invalid_files": [i | {"rejected_key": i.pop("destination_key")} for i in invalid],
        "valid_count": len(valid),
        "invalid_count": len(invalid),
    }


def metadata_safe(text: str, limit: int = 1024) -> str:
    """S3 user metadata travels in HTTP headers: ASCII only, and 2 KB in all."""
    return text.encode("ascii", "replace").decode()[:limit]


def read_move_plan(settings: Settings, execution_id: str) -> dict[str, Any]:
    """Read ``results/{execution_id}.json`` and return its move plan (Read-Validation-Result)."""
    key = batches.result_key(settings, execution_id)
    result = s3io.get_json_or_none(s3io.client(settings, "s3"), settings.bucket, key)
    if result is None:
        raise StepFailed(f"no validation result s3://{settings.bucket}/{key}")
    return move_plan(settings, result)
