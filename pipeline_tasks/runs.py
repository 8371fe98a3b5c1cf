"""Review executions: what ran, how it ended, what it read, rejected and changed.

Reads what the steps leave in the bucket: the run records and executed
notebooks under ``runs/{execution_id}/``, the validation result
``results/{execution_id}.json`` and the step reports under
``reports/{execution_id}/``. ``summarise`` is pure; the rest does I/O.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_tasks.errors import PipelineError
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.layout import report_key, result_key, run_key, run_prefix
from pipeline_tasks.notebooks import FAILED, STEPS, SUCCEEDED
from pipeline_tasks.settings import Settings

RUNNING = "RUNNING"


@dataclass
class ExecutionRecord:
    """Everything the bucket holds about one execution."""

    execution_id: str
    #: Run records of the steps that ran, by step name (``validate``, ``stage``, ``transform``).
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    stage_report: dict[str, Any] | None = None
    transform_report: dict[str, Any] | None = None


@dataclass(frozen=True)
class ExecutionSummary:
    """One line of ``ecom-pipeline runs list``."""

    execution_id: str
    status: str
    started_at: str
    files: int
    valid: int
    rejected: int
    steps: str
    error: str | None


def summarise(record: ExecutionRecord) -> ExecutionSummary:
    """Status and counts of an execution from its run records and validation result.

    FAILED when a step failed; SUCCEEDED when the transform succeeded, or when the
    validation succeeded and found no valid file (nothing else runs then); RUNNING
    otherwise (a step is running, or the execution stopped between steps).
    """
    records = [record.steps[s] for s in STEPS if s in record.steps]
    failed = [r for r in records if r["status"] == FAILED]
    result = record.result or {}
    valid, rejected = len(result.get("valid_files", [])), len(result.get("invalid_files", []))
    transformed = record.steps.get("transform", {}).get("status") == SUCCEEDED
    nothing_to_stage = record.steps.get("validate", {}).get("status") == SUCCEEDED and bool(result) and not valid
    if failed:
        status = FAILED
    elif transformed or nothing_to_stage:
        status = SUCCEEDED
    else:
        status = RUNNING
    marks = {SUCCEEDED: "ok", FAILED: "FAILED"}
    return ExecutionSummary(
        execution_id=record.execution_id,
        status=status,
        started_at=min((r["started_at"] for r in records), default=""),
        files=valid + rejected,
        valid=valid,
        rejected=rejected,
        steps=" ".join(f"{r['step']}:{marks.get(r['status'], r['status'])}" for r in records),
        error=failed[0].get("error") if failed else None,
    )


def execution_ids(settings: Settings) -> list[str]:
    """Ids of every execution with archived notebooks, in key order."""
    s3 = s3io.client(settings, "s3")
    paginator = s3.get_paginator("list_objects_v2")
    ids = []
    for page in paginator.paginate(Bucket=settings.bucket, Prefix=settings.runs_prefix, Delimiter="/"):
        for prefix in page.get("CommonPrefixes", []):
            ids.append(prefix["Prefix"][len(settings.runs_prefix) :].rstrip("/"))
    return ids


def load(settings: Settings, execution_id: str) -> ExecutionRecord:
    """Read an execution's run records, validation result and step reports."""
    s3 = s3io.client(settings, "s3")
    record = ExecutionRecord(execution_id)
    for step, notebook in STEPS.items():
        document = s3io.get_json_or_none(s3, settings.bucket, run_key(settings, execution_id, f"{notebook}.json"))
        if document is not None:
            record.steps[step] = document
    record.result = s3io.get_json_or_none(s3, settings.bucket, result_key(settings, execution_id))
    record.stage_report = s3io.get_json_or_none(s3, settings.bucket, report_key(settings, execution_id, "stage"))
    record.transform_report = s3io.get_json_or_none(
        s3, settings.bucket, report_key(settings, execution_id, "transform")
    )
    if not record.steps and record.result is None:
        raise PipelineError(f"no execution {execution_id!r} in s3://{settings.bucket}/")
    return record


def quarantined(settings: Settings, record: ExecutionRecord) -> list[dict[str, Any]]:
    """The quarantine table's records of the files an execution staged (empty when it staged none)."""
    report = record.stage_report
    if not report or "quarantine" not in report:
        return []
    from pipeline_tasks.io import delta

    files = [f["key"] for f in report["files"]]
    records = delta.read_quarantine(report["quarantine"]["table"], delta.storage_options(settings), source_keys=files)
    return records.to_pylist()


def list_executions(settings: Settings, *, limit: int | None = None) -> list[ExecutionSummary]:
    """Summaries of the executions, the most recent first (at most ``limit``)."""
    summaries = [summarise(load(settings, execution_id)) for execution_id in execution_ids(settings)]
    summaries.sort(key=lambda s: (s.started_at, s.execution_id), reverse=True)
    return summaries[:limit] if limit else summaries


def latest(settings: Settings) -> str:
    """Id of the most recent execution (by the start of its first step)."""
    summaries = list_executions(settings, limit=1)
    if not summaries:
        raise PipelineError(f"no executions in s3://{settings.bucket}/{settings.runs_prefix}")
    return summaries[0].execution_id


def archived_keys(settings: Settings, execution_id: str) -> list[str]:
    """S3 keys of an execution's archived notebooks, HTML pages and run records, sorted."""
    s3 = s3io.client(settings, "s3")
    return sorted(s3io.list_keys(s3, settings.bucket, run_prefix(settings, execution_id)))


def download_notebooks(settings: Settings, execution_id: str, dest: Path | None = None) -> list[Path]:
    """Copy an execution's archived notebooks, HTML pages and run records into ``dest/{execution_id}/``.

    ``dest`` defaults to ``ecom-pipeline-runs`` in the system's temporary folder.
    """
    dest = dest or Path(tempfile.gettempdir()) / "ecom-pipeline-runs"
    s3 = s3io.client(settings, "s3")
    folder = dest / execution_id
    folder.mkdir(parents=True, exist_ok=True)
    prefix = run_prefix(settings, execution_id)
    paths = []
    for key in archived_keys(settings, execution_id):
        path = folder / key[len(prefix) :]
        s3.download_file(settings.bucket, key, str(path))
        paths.append(path)
    return paths


def html_pages(paths: Sequence[Path]) -> dict[str, Path]:
    """The rendered notebooks among downloaded files, by step, in step order."""
    by_name = {path.name: path for path in paths}
    return {step: by_name[f"{notebook}.html"] for step, notebook in STEPS.items() if f"{notebook}.html" in by_name}
