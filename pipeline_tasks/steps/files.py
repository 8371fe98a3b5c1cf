"""HandleInvalidFiles and ArchiveValidFiles: move a batch's files out of ``input/``."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.settings import Settings

log = logging.getLogger(__name__)


def reject(settings: Settings, invalid_files: Iterable[Mapping[str, Any]]) -> list[str]:
    """Move invalid files to ``rejected/``, their reason kept in the object's metadata."""
    s3 = s3io.client(settings, "s3")
    moved = []
    for item in invalid_files:
        to_key = s3io.destination_key(item["key"], settings.input_prefix, settings.rejected_prefix)
        reason = str(item.get("reason") or "")
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
