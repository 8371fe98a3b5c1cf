"""Review executions: what ran, how it ended, what it read, rejected and changed.

Reads what the steps leave in the bucket: the run records and executed
notebooks under ``runs/{execution_id}/``, the validation result
``results/{execution_id}.json`` and the step reports under
``reports/{execution_id}/``, as ``documents`` reads them, and whether the
orchestrator wrote the batch manifest ``manifests/{execution_id}.json`` (without
one, the id is an ad-hoc ``ecom-pipeline notebook`` run, listed as AD-HOC).
An execution whose steps left no record (a task killed mid-run) is INCOMPLETE,
with the files that are there. ``summarise`` is pure; the rest does I/O.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_tasks.documents import BatchValidation, RunRecord, StageReport, TransformReport
from pipeline_tasks.errors import PipelineError
from pipeline_tasks.io import aws
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.layout import manifest_key, report_key, result_key, run_key, run_prefix
from pipeline_tasks.notebooks import FAILED, STEPS, SUCCEEDED
from pipeline_tasks.settings import Settings

log = logging.getLogger(__name__)

RUNNING = "RUNNING"
#: Runs of ``ecom-pipeline notebook`` with an id the orchestrator never started (no batch manifest).
ADHOC = "AD-HOC"
#: Something is archived, but no step left a run record (its task was killed, or is starting).
INCOMPLETE = "INCOMPLETE"


@dataclass
class ExecutionRecord:
    """Everything the bucket holds about one execution."""

    execution_id: str
    #: Run records of the steps that ran, by step name (``validate``, ``stage``, ``transform``).
    steps: dict[str, RunRecord] = field(default_factory=dict)
    result: BatchValidation | None = None
    stage_report: StageReport | None = None
    #: The transform report, when the transform ran.
    transform_report: TransformReport | None = None
    #: False when the orchestrator wrote no batch manifest for the id: an ad-hoc notebook run.
    has_manifest: bool = True
    #: Keys archived under ``runs/{execution_id}/`` (file names), what is there without a run record.
    archived: tuple[str, ...] = ()


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

    AD-HOC for a run the orchestrator did not start (no batch manifest; its steps
    column says how it ended); FAILED when a step failed; SUCCEEDED when the transform
    succeeded, or when the validation succeeded and found no valid file (nothing else
    runs then); INCOMPLETE when no step left a record (a killed task); RUNNING otherwise
    (a step is running, or the execution stopped between steps).
    """
    records = [record.steps[s] for s in STEPS if s in record.steps]
    failed = [r for r in records if r.status == FAILED]
    result = record.result or BatchValidation()
    valid, rejected = len(result.valid_files), len(result.invalid_files)
    validate, transform = record.steps.get("validate"), record.steps.get("transform")
    transformed = transform is not None and transform.status == SUCCEEDED
    validated = validate is not None and validate.status == SUCCEEDED
    nothing_to_stage = validated and record.result is not None and not valid
    if not record.has_manifest and records:
        status = ADHOC
    elif failed:
        status = FAILED
    elif transformed or nothing_to_stage:
        status = SUCCEEDED
    elif not records:
        status = INCOMPLETE
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
    """Ids of every execution with archived notebooks or a batch manifest, sorted."""
    s3 = aws.client(settings, "s3")
    paginator = s3.get_paginator("list_objects_v2")
    ids = set()
    for page in paginator.paginate(Bucket=settings.bucket, Prefix=settings.runs_prefix, Delimiter="/"):
        for prefix in page.get("CommonPrefixes", []):
            ids.add(prefix["Prefix"][len(settings.runs_prefix) :].rstrip("/"))
    for key in s3io.list_keys(s3, settings.bucket, settings.manifests_prefix):
        name = key[len(settings.manifests_prefix) :]
        if name.endswith(".json") and "/" not in name:
            ids.add(name.removesuffix(".json"))
    return sorted(ids)


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
    transform = read(report_key(settings, execution_id, "transform"))
    record.transform_report = None if transform is None else TransformReport.from_json(transform)
    record.has_manifest = s3io.head_version(s3, settings.bucket, manifest_key(settings, execution_id)) is not None
    prefix = run_prefix(settings, execution_id)
    record.archived = tuple(key[len(prefix) :] for key in sorted(s3io.list_keys(s3, settings.bucket, prefix)))
    found = (
        record.steps,
        record.result,
        record.stage_report,
        record.transform_report,
        record.archived,
        record.has_manifest,
    )
    if not any(found):
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

    ``dest`` defaults to ``ecom-pipeline-runs`` in the system's temporary folder. A key
    that would land outside that folder (``runs/X/../../f``) is refused: logged, not written.
    """
    dest = dest or Path(tempfile.gettempdir()) / "ecom-pipeline-runs"
    s3 = aws.client(settings, "s3")
    folder = dest / execution_id
    folder.mkdir(parents=True, exist_ok=True)
    prefix = run_prefix(settings, execution_id)
    paths = []
    for key in archived_keys(settings, execution_id):
        path = local_path(folder, key[len(prefix) :])
        if path is None:
            log.warning("not downloaded: the archived key %s would be written outside %s", key, folder)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(settings.bucket, key, str(path))
        paths.append(path)
    return paths


def local_path(folder: Path, name: str) -> Path | None:
    """Where an archived file named ``name`` goes in ``folder``; None when it would resolve outside it."""
    root = folder.resolve()
    path = (root / name).resolve()
    if not name or path == root or not path.is_relative_to(root):
        return None
    return path


def html_pages(paths: Sequence[Path]) -> dict[str, Path]:
    """The rendered notebooks among downloaded files, by step, in step order."""
    by_name = {path.name: path for path in paths}
    return {step: by_name[f"{notebook}.html"] for step, notebook in STEPS.items() if f"{notebook}.html" in by_name}
