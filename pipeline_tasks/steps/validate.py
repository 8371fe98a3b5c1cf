"""ValidationTask: classify and validate a batch of input files.

Reads the batch's files — the versions its manifest pins — from S3; writes
``results/{execution_id}.json`` (``documents.BatchValidation``) with the valid
files, the invalid files with their reasons, and the row-level data-quality counts
of the valid ones. Every entry names
the version it judged (``version_id``) and when it arrived (``event_time``), so that
staging reads and the moves archive exactly that version.

A key of a shape the pipeline does not accept (``keys.key_problem``) is an invalid
file with that reason; its content is not read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pipeline_tasks.batches import (
    BatchFile,
    as_batch_files,
    pin,
    read_manifest,
    write_manifest,
)
from pipeline_tasks.contract import classify
from pipeline_tasks.documents import BatchValidation, RejectedFile, ValidFile
from pipeline_tasks.errors import ConfigurationError, StepFailed
from pipeline_tasks.io import aws
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.keys import key_problem
from pipeline_tasks.layout import result_key
from pipeline_tasks.settings import Settings
from pipeline_tasks.validation import ValidationResult, validate

log = logging.getLogger(__name__)

__all__ = ["batch_validation", "build_result", "read_manifest", "run", "write_manifest"]


def batch_validation(
    execution_id: str, verdicts: Sequence[ValidationResult], files: Sequence[BatchFile] | None = None
) -> BatchValidation:
    """The validation result document.

    Args:
        execution_id: Names the document.
        verdicts: One per file, in arrival order.
        files: The batch's files, in the same order: each entry of the result gets the
            file's ``version_id`` and ``event_time`` (None for both when not given).
    """
    pinned = list(files) if files is not None else [BatchFile(v.key) for v in verdicts]
    if [f.key for f in pinned] != [v.key for v in verdicts]:
        raise ValueError("the verdicts and the files of a batch must name the same keys in the same order")
    judged = list(zip(verdicts, pinned, strict=True))
    return BatchValidation(
        execution_id=execution_id,
        keys=tuple(v.key for v in verdicts),
        validated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        valid_files=tuple(
            ValidFile(v.key, v.dataset, v.rows_read, dict(v.rows_not_staged), f.version_id, f.event_time)
            for v, f in judged
            if v.valid
        ),
        invalid_files=tuple(
            RejectedFile(v.key, v.dataset, v.reason, f.version_id, f.event_time) for v, f in judged if not v.valid
        ),
    )


#: The validation result document (the name its callers knew it by).
build_result = batch_validation


def judge(s3: Any, settings: Settings, file: BatchFile) -> tuple[ValidationResult, BatchFile]:
    """The verdict on one file, and the file with the version that was read.

    A file of no pinned version (an old manifest) is pinned here to its current version.
    """
    if file.version_id is None:
        current = pin(s3, settings.bucket, file.key, event_time=file.event_time)
        if current is None:
            raise StepFailed(f"s3://{settings.bucket}/{file.key} is no longer in the bucket")
        file = current
    problem = key_problem(file.key, settings.input_prefix)
    if problem is not None:
        dataset = classify(file.key)
        return ValidationResult(file.key, dataset.name if dataset else None, False, problem), file
    source = s3io.S3Source(s3, settings.bucket, file.key, version_id=file.version_id)
    return validate(source, max_share=settings.max_share), file


def run(
    settings: Settings,
    execution_id: str,
    keys: Sequence[BatchFile | str] | None = None,
    *,
    manifest_key: str | None = None,
) -> BatchValidation:
    """Validate every file of the batch and store the result document in S3.

    Args:
        settings: Where the bucket is.
        execution_id: Id of the execution; names the result document.
        keys: The batch's files (or bare keys: their current versions), in arrival order.
        manifest_key: A batch manifest to read the files from instead.

    Returns:
        The result document; its ``to_json()`` is written to ``results/{execution_id}.json``.
    """
    if keys is None:
        if manifest_key is None:
            raise ConfigurationError("give the batch's keys or its manifest")
        keys = read_manifest(settings, manifest_key)
    files = as_batch_files(keys)
    s3 = aws.client(settings, "s3")
    verdicts, judged = [], []
    for number, file in enumerate(files, start=1):
        verdict, read = judge(s3, settings, file)
        state = "valid" if verdict.valid else f"INVALID: {verdict.reason}"
        log.info("validate %d/%d %s (version %s): %s", number, len(files), file.key, read.version_id, state)
        verdicts.append(verdict)
        judged.append(read)
    result = batch_validation(execution_id, verdicts, judged)
    s3io.put_json(s3, settings.bucket, result_key(settings, execution_id), result.to_json())
    return result
