"""Review executions: what ran, how it ended, what it read, rejected and changed.

Reads what the steps leave in the bucket: the run records and executed
notebooks under ``runs/{execution_id}/``, the validation result
``results/{execution_id}.json`` and the step reports under
``reports/{execution_id}/``, as ``documents`` reads them. ``summarise`` is pure;
the rest does I/O.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_tasks.documents import BatchValidation, RunRecord, StageReport, TransformReport
from pipeline_tasks.errors import PipelineError
from pipeline_tasks.io import aws
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
    steps: dict[str, RunRecord] = field(default_factory=dict)
    result: BatchValidation | None = None
    stage_report: StageReport | None = None
    #: The transform report's JSON as stored (``transform`` reads it): ``cli`` reads it by key.
    transform_report: dict[str, Any] | None = None

    @property
    def transform(self) -> TransformReport | None:
        """The transform report, when the transform ran."""
        return None if self.transform_report is None else TransformReport.from_json(self.transform_report)


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
    failed = [r for r in records if r.status == FAILED]
    result = record.result or BatchValidation()
    valid, rejected = len(result.valid_files), len(result.invalid_files)
    validate, transform = record.steps.get("validate"), record.steps.get("transform")
    transformed = transform is not None and transform.status == SUCCEEDED
    validated = validate is not None and validate.status == SUCCEEDED
    nothing_to_stage = validated and record.result is not None and not valid
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
        started_at=min((r.started_at for r in records), default=""),
        files=valid + rejected,
        valid=valid,
        rejected=rejected,
        steps=" ".join(f"{r.step}:{marks.get(r.status, r.status)}" for r in records),
        error=failed[0].error if failed else None,
    )


def execution_ids(settings: Settings) -> list[str]:
    """Ids of every execution with archived notebooks, in key order."""
    s3 = aws.client(settings, "s3")
    paginator = s3.get_paginator("list_objects_v2")
    ids = []
    for page in paginator.paginate(Bucket=settings.bucket, Prefix=settings.runs_prefix, Delimiter="/"):
        for prefix in page.get("CommonPrefixes", []):
            ids.append(prefix["Prefix"][len(settings.runs_prefix) :].rstrip("/"))
    return ids


def load(settings: Settings, execution_id: str) -> ExecutionRecord:
    """Read an execution's run records, validation result and step reports."""
    s3 = aws.client(settings, "s3")

    def read(key: str) -> Any:
        return s3io.get_json_or_none(s3, settings.bucket, key)

    record = ExecutionRecord(execution_id)
    for step, notebook in STEPS.items():
        document = read(run_key(settings, execution_id, f"{notebook}.json"))
        if document is not None:
            record.steps[step] = RunRecord.from_json(document)
    result = read(result_key(settings, execution_id))
    record.result = None if result is None else BatchValidation.from_json(result)
    stage_report = read(report_key(settings, execution_id, "stage"))
    record.stage_report = None if stage_report is None else StageReport.from_json(stage_report)
    record.transform_report = read(report_key(settings, execution_id, "transform"))
    if not record.steps and record.result is None:
        raise PipelineError(f"no execution {execution_id!r} in s3://{settings.bucket}/")
    return record


def quarantined(settings: Settings, record: ExecutionRecord) -> list[dict[str, Any]]:
    """The quarantine table's records of the files an execution staged (empty when it staged none)."""
    report = record.stage_report
    if report is None or report.quarantine is None:
        return []
    from pipeline_tasks.io import delta

    files = [f.key for f in report.files]
    records = delta.read_quarantine(report.quarantine.table, delta.storage_options(settings), source_keys=files)
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
    s3 = aws.client(settings, "s3")
    return sorted(s3io.list_keys(s3, settings.bucket, run_prefix(settings, execution_id)))


def download_notebooks(settings: Settings, execution_id: str, dest: Path | None = None) -> list[Path]:
    """Copy an execution's archived notebooks, HTML pages and run records into ``dest/{execution_id}/``.

    ``dest`` defaults to ``ecom-pipeline-runs`` in the system's temporary folder.
    """
    dest = dest or Path(tempfile.gettempdir()) / "ecom-pipeline-runs"
    s3 = aws.client(settings, "s3")
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
