"""ValidationTask: classify and validate a batch of input files.

Reads the batch's files from S3; writes ``results/{execution_id}.json`` with the
valid files, the invalid files with their reasons, and the row-level
data-quality counts of the valid ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pipeline_tasks.batches import manifest_key, read_manifest, result_key, write_manifest
from pipeline_tasks.errors import ConfigurationError
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.settings import Settings
from pipeline_tasks.validation import ValidationResult, validate

log = logging.getLogger(__name__)

__all__ = ["build_result", "manifest_key", "read_manifest", "result_key", "run", "write_manifest"]


def build_result(execution_id: str, verdicts: Sequence[ValidationResult]) -> dict[str, Any]:
    """The validation result document (dict in, dict out)."""
    valid = [
        {"key": v.key, "dataset": v.dataset, "rows_read": v.rows_read, "rows_not_staged": v.rows_not_staged}
        for v in verdicts
        if v.valid
    ]
    invalid = [{"key": v.key, "dataset": v.dataset, "reason": v.reason} for v in verdicts if not v.valid]
    return {
        "execution_id": execution_id,
        "keys": [v.key for v in verdicts],
        "validated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "valid_files": valid,
        "invalid_files": invalid,
        "has_valid_files": bool(valid),
    }


def run(
    settings: Settings,
    execution_id: str,
    keys: Sequence[str] | None = None,
    *,
    manifest_key: str | None = None,
) -> dict[str, Any]:
    """Validate every key of the batch and store the result document in S3.

    Args:
        settings: Where the bucket is.
        execution_id: Id of the execution; names the result document.
        keys: Object keys of the batch, in arrival order.
        manifest_key: A batch manifest to read the keys from instead.

    Returns:
        The result document (also written to ``results/{execution_id}.json``).
    """
    if keys is None:
        if manifest_key is None:
            raise ConfigurationError("give the batch's keys or its manifest")
        keys = read_manifest(settings, manifest_key)
    s3 = s3io.client(settings, "s3")
    verdicts = []
    for number, key in enumerate(keys, start=1):
        verdict = validate(s3io.S3Source(s3, settings.bucket, key))
        state = "valid" if verdict.valid else f"INVALID: {verdict.reason}"
        log.info("validate %d/%d %s: %s", number, len(keys), key, state)
        verdicts.append(verdict)
    result = build_result(execution_id, verdicts)
    s3io.put_json(s3, settings.bucket, result_key(settings, execution_id), result)
    return result
