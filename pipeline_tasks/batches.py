"""Where a batch's documents live: its manifest (the keys to process) and its validation result.

Only boto3 underneath, so that the Lambda functions (the orchestrator writes manifests,
Read-Validation-Result reads results) package without the data libraries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pipeline_tasks.errors import ConfigurationError
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.settings import Settings


def result_key(settings: Settings, execution_id: str) -> str:
    return f"{settings.results_prefix}{execution_id}.json"


def manifest_key(settings: Settings, execution_id: str) -> str:
    return f"{settings.manifests_prefix}{execution_id}.json"


def write_manifest(settings: Settings, execution_id: str, keys: Sequence[str]) -> str:
    """Store a batch manifest (the keys of a batch, in arrival order); return its key.

    Large file lists travel through S3, not through task parameters.
    """
    key = manifest_key(settings, execution_id)
    document = {
        "execution_id": execution_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "keys": list(keys),
    }
    s3io.put_json(s3io.client(settings, "s3"), settings.bucket, key, document)
    return key


def read_manifest(settings: Settings, key: str) -> list[str]:
    """The keys of a batch manifest; a clear error when it is missing or malformed."""
    document = s3io.get_json_or_none(s3io.client(settings, "s3"), settings.bucket, key)
    if document is None:
        raise ConfigurationError(f"batch manifest not found: s3://{settings.bucket}/{key}")
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ConfigurationError(f"batch manifest s3://{settings.bucket}/{key} has no list of keys")
    return keys
