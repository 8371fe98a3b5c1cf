"""``ecom-pipeline local run``: batch folders through the whole flow on a local stack, in order.

``run`` gives each folder to the flow as on AWS: its files are uploaded to
``input/`` (in name order), S3 notifies the queue, the orchestrator Lambda starts
the state machine, whose ECS tasks run the step notebooks as local processes.
Every execution's states, its archived notebooks (copied to ``OUT/runs/``), the
KPI tables (dumped to CSV) and the bucket's listing are written to ``OUT``.

``process_batch`` runs one batch without the queue, Step Functions and ECS: the
state machine's own definition (statemachine/pipeline.asl.json) is interpreted in
this process (``asl.interpret``), each of its tasks done here (``LOCAL_TASKS``):
the steps as notebooks (``make lab`` seeds its stack so) or called directly (the
data-core tests, which may wrap the step callable to inject faults).
"""

from __future__ import annotations

import csv
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipeline_tasks import batches, executions, notebooks, runs
from pipeline_tasks.batches import BatchFile
from pipeline_tasks.contract import CATEGORY_KPIS, ORDER_KPIS, is_decimal
from pipeline_tasks.documents import BatchValidation, TransformReport
from pipeline_tasks.errors import PipelineError
from pipeline_tasks.io import aws, dynamodb
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.io.kpi_tables import category_kpis_spec, order_kpis_spec
from pipeline_tasks.layout import input_key, report_key, result_key
from pipeline_tasks.local import asl, template
from pipeline_tasks.local.stack import MotoServer
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps import files, stage, transform, validate

log = logging.getLogger(__name__)

#: Columns of the KPI dumps: the table's key, then its KPI attributes (contract order).
ORDER_KPI_HEADER = ORDER_KPIS.header
CATEGORY_KPI_HEADER = CATEGORY_KPIS.header


@dataclass
class Execution:
    """What happened to one batch."""

    execution_id: str
    status: str = "RUNNING"
    valid_files: list[dict[str, Any]] = field(default_factory=list)
    invalid_files: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    #: S3 keys of the execution's archived notebooks (``.ipynb``, ``.html``) and run records.
    notebooks: list[str] = field(default_factory=list)
    #: The top-level states the execution entered, in order (the state machine's flow).
    states: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "execution_id": self.execution_id,
            "status": self.status,
            "valid_files": self.valid_files,
            "invalid_files": self.invalid_files,
            "seconds": self.seconds,
            "notebooks": self.notebooks,
            "states": self.states,
        }
        if self.error:
            document["error"] = self.error
        return document


def execution_id_for(number: int, folder: Path) -> str:
    slug = re.sub(r"[^A-Za-z0-9-]+", "-", folder.name).strip("-")[:40] or "batch"
    return f"local-{number:04d}-{slug}"


def upload_batch(settings: Settings, folder: Path) -> list[str]:
    """Upload a folder's files (name order) to ``input/``; return their keys."""
    s3 = aws.client(settings, "s3")
    keys = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        key = input_key(settings, path.name)
        s3.upload_file(str(path), settings.bucket, key)
        keys.append(key)
    return keys


#: Runs one task step (``validate``, ``stage``, ``transform``) with its parameters.
StepRunner = Callable[[str, dict[str, Any]], None]


def notebook_steps(settings: Settings) -> StepRunner:
    """Steps run as papermill notebooks, as in the task containers (archived under ``runs/``)."""

    def run(step: str, parameters: dict[str, Any]) -> None:
        notebooks.run_step(settings, step, parameters)

    return run


def direct_steps(settings: Settings, spark: Any = None) -> StepRunner:
    """Steps called in this process, sharing one Spark session: the fast path of the data-core tests."""

    def run(step: str, parameters: dict[str, Any]) -> None:
        execution_id = parameters["execution_id"]
        if step == "validate":
            validate.run(settings, execution_id, manifest_key=parameters["manifest_key"])
        elif step == "stage":
            stage.run(settings, execution_id)
        elif step == "transform":
            transform.run(settings, execution_id, spark=spark)
        else:
            raise ValueError(f"no step {step!r}")

    return run


def pin_current(settings: Settings, keys: Sequence[str | BatchFile]) -> list[BatchFile]:
    """Bare keys as batch files: each pinned to its current version, its ``LastModified`` as event time.

    What the orchestrator does for an event without a version id. Files already pinned
    are kept; a key not in the bucket is left unpinned (the validate step fails, naming it).
    """
    s3 = aws.client(settings, "s3")
    pinned = [k if isinstance(k, BatchFile) else batches.pin(s3, settings.bucket, k) for k in keys]
    return [p or BatchFile(str(k)) for p, k in zip(pinned, keys, strict=True)]


class _Batch:
    """One batch run in this process: what each task of the state machine does here."""

    def __init__(
        self, settings: Settings, execution: Execution, run_step: StepRunner, progress: Callable[[str], None]
    ) -> None:
        self.settings, self.execution, self.run_step, self.progress = settings, execution, run_step, progress
        self.s3 = aws.client(settings, "s3")

    def act(self, task: asl.Task, inputs: dict[str, Any]) -> Any:
        if task.key not in LOCAL_TASKS:
            raise asl.Unsupported(f"nothing runs the state machine's task {task.key} in this process")
        return LOCAL_TASKS[task.key](self, task, inputs)

    def timed(self, name: str, action: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        self.progress(f"  {name} …")
        value = action()
        self.execution.seconds[name] = round(time.perf_counter() - started, 2)
        return value

    def notebook(self, task: asl.Task, inputs: dict[str, Any]) -> dict[str, Any]:
        """An ECS task: the step run by ``run_step`` (which raises when it fails: exit code 0 otherwise)."""
        self.timed(task.name, lambda: self.run_step(task.name, inputs))
        if task.name == "transform":
            key = report_key(self.settings, inputs["execution_id"], "transform")
            report = TransformReport.from_json(s3io.get_json(self.s3, self.settings.bucket, key))
            for table, writes in report.tables.items():
                self.progress(f"    {table}: {writes.put} put, {writes.deleted} deleted, {writes.unchanged} unchanged")
        return {"exit_code": 0}

    def read_validation_result(self, task: asl.Task, inputs: dict[str, Any]) -> dict[str, Any]:
        """The validation result's files (its own entries: the moves here plan themselves)."""
        document = s3io.get_json(self.s3, self.settings.bucket, result_key(self.settings, inputs["execution_id"]))
        result = BatchValidation.from_json(document)
        self.execution.valid_files = [{"key": f.key} for f in result.valid_files]
        for item in result.valid_files:
            dropped = ", ".join(f"{n} {reason}" for reason, n in item.rows_not_staged.items())
            detail = f" ({dropped} not staged)" if dropped else ""
            self.progress(f"    valid {item.key}: {item.rows_read} rows{detail}")
        self.execution.invalid_files = [{"key": f.key, "reason": f.reason} for f in result.invalid_files]
        for rejected in result.invalid_files:
            self.progress(f"    rejected {rejected.key}: {rejected.reason}")
        return {
            "has_valid_files": result.has_valid_files,
            # The entries as stored: the state machine hands them to the moves.
            "valid_files": document["valid_files"],
            "invalid_files": document["invalid_files"],
            "valid_count": len(result.valid_files),
            "invalid_count": len(result.invalid_files),
        }

    def reject(self, task: asl.Task, inputs: dict[str, Any]) -> None:
        self.timed("reject", lambda: files.reject(self.settings, inputs["items"]))

    def archive(self, task: asl.Task, inputs: dict[str, Any]) -> None:
        for key in self.timed("archive", lambda: files.archive(self.settings, inputs["items"])):
            self.progress(f"    archived {key}")

    def notify(self, task: asl.Task, inputs: dict[str, Any]) -> None:
        """Nothing is published here: the ``Execution`` and the progress lines report the outcome."""


#: The state machine's tasks (``asl.Task.key``) and what does each one in this process.
LOCAL_TASKS: dict[str, Callable[[_Batch, asl.Task, dict[str, Any]], Any]] = {
    "ecs:validate": _Batch.notebook,
    "lambda:ReadValidationResult": _Batch.read_validation_result,
    "move:rejected": _Batch.reject,
    "ecs:stage": _Batch.notebook,
    "ecs:transform": _Batch.notebook,
    "move:archive": _Batch.archive,
    "sns:Success": _Batch.notify,
    "sns:Failure": _Batch.notify,
}


def process_batch(
    settings: Settings,
    execution_id: str,
    keys: Sequence[str | BatchFile],
    *,
    steps: StepRunner | None = None,
    progress: Callable[[str], None] = print,
) -> Execution:
    """Run statemachine/pipeline.asl.json for one batch of keys in this process (``asl.interpret``).

    Bare keys are pinned to their current versions and written to the batch's manifest
    first, as the orchestrator does: the batch validates, stages and archives those
    versions, whatever is uploaded meanwhile. The states entered are the execution's
    ``states``; a step that fails takes the definition's Catch to ``FailureNotice`` and
    the execution fails, its error the step's. By default validate, stage and transform
    run as papermill notebooks (as in the task containers); each executed notebook is
    archived under ``runs/{execution_id}/``.
    """
    execution = Execution(execution_id)
    batch = _Batch(settings, execution, steps or notebook_steps(settings), progress)
    try:
        pinned = pin_current(settings, keys)
        manifest = validate.write_manifest(settings, execution_id, pinned)
        document = {"execution_id": execution_id, "manifest_key": manifest, "files": len(pinned)}
        outcome = asl.interpret(asl.load(), batch.act, document, entered=execution.states.append)
        execution.status = outcome.status
        if outcome.status != "SUCCEEDED":
            execution.error = _describe(outcome.error) if outcome.error else "{Error}: {Cause}".format_map(outcome.fail)
    except Exception as error:  # a batch failure is reported in its Execution, not raised
        execution.status, execution.error = "FAILED", _describe(error)
    if execution.status != "SUCCEEDED":
        log.warning("batch %s failed: %s", execution_id, execution.error)
        progress(f"    FAILED: {execution.error}")
    execution.notebooks = runs.archived_keys(settings, execution_id)
    return execution


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _format(name: str, value: Any) -> str:
    if is_decimal(name):
        return f"{Decimal(str(value)):.2f}"
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else str(value)
    return str(value)


def dump_kpis(settings: Settings, out: Path) -> tuple[int, int]:
    """Write ``order_kpis.csv`` and ``category_kpis.csv`` from the DynamoDB tables."""
    client = aws.client(settings, "dynamodb")
    counts = []
    for spec, header, name, sort in (
        (order_kpis_spec(settings), ORDER_KPI_HEADER, "order_kpis.csv", ORDER_KPIS.key),
        (category_kpis_spec(settings), CATEGORY_KPI_HEADER, "category_kpis.csv", CATEGORY_KPIS.key),
    ):
        items = sorted(dynamodb.scan_items(client, spec), key=lambda i: tuple(str(i[k]) for k in sort))
        with (out / name).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for item in items:
                writer.writerow([_format(column, item[column]) for column in header])
        counts.append(len(items))
    return counts[0], counts[1]


def run_batch_through_the_flow(
    settings: Settings, folder: Path, *, progress: Callable[[str], None] = print
) -> Execution:
    """Upload a folder (S3 events reach the queue), run the orchestrator, follow the execution."""
    upload_batch(settings, folder)
    outcome = executions.invoke_orchestrator(settings)
    if not outcome.get("started"):
        return Execution(execution_id="", status="NOT STARTED", error=outcome.get("reason"))
    execution = Execution(str(outcome["execution_id"]))
    progress(f"  execution {execution.execution_id}: {len(outcome['keys'])} file(s)")
    report = executions.follow(settings, str(outcome["execution_arn"]), progress=progress)
    execution.status, execution.states = report.status, report.states
    execution.seconds = report.seconds_by_state
    if report.status != "SUCCEEDED":
        execution.error = f"{report.error}: {report.cause}"
        progress(
            f"    {report.status}: {execution.error} "
            "(the failed step's notebook is under runs/, its log under task-logs/)"
        )
    s3 = aws.client(settings, "s3")
    document = s3io.get_json_or_none(s3, settings.bucket, result_key(settings, execution.execution_id))
    if document:
        result = BatchValidation.from_json(document)
        execution.valid_files = [{"key": f.key} for f in result.valid_files]
        execution.invalid_files = [{"key": f.key, "reason": f.reason} for f in result.invalid_files]
        fate = "archived" if report.status == "SUCCEEDED" else "left in input/ for a re-run"
        for item in result.valid_files:
            dropped = ", ".join(f"{n} {reason}" for reason, n in item.rows_not_staged.items())
            detail = f"{item.rows_read} rows" + (f", {dropped} not staged" if dropped else "")
            progress(f"    valid    {item.key} ({detail}): {fate}")
        for rejected in result.invalid_files:
            progress(f"    rejected {rejected.key}: {rejected.reason}")
    execution.notebooks = runs.archived_keys(settings, execution.execution_id)
    return execution


def list_bucket(settings: Settings) -> str:
    """The objects under ``input/``, ``archive/`` and ``rejected/`` (rejected ones with their reason)."""
    s3 = aws.client(settings, "s3")
    lines = []
    for prefix in (settings.input_prefix, settings.archive_prefix, settings.rejected_prefix):
        keys = sorted(s3io.list_keys(s3, settings.bucket, prefix))
        lines.append(f"{prefix} ({len(keys)})")
        for key in keys:
            reason = ""
            if prefix == settings.rejected_prefix:
                metadata = s3.head_object(Bucket=settings.bucket, Key=key).get("Metadata", {})
                reason = f"  # {metadata.get('rejection-reason', '')}"
            lines.append(f"  {key}{reason}")
    return "\n".join(lines) + "\n"


def run(
    batch_dirs: Sequence[Path],
    out: Path,
    *,
    base: Settings | None = None,
    progress: Callable[[str], None] = print,
) -> list[Execution]:
    """Each folder is one batch, through the whole flow on a fresh local stack; outputs in ``out``.

    Upload → S3 event → SQS → orchestrator (Lambda) → state machine (moto's interpreter)
    → ECS tasks (``ecom-pipeline notebook …`` run as local processes) → DynamoDB.
    """
    for folder in batch_dirs:
        if not folder.is_dir():
            raise PipelineError(f"not a folder: {folder}")
    out.mkdir(parents=True, exist_ok=True)
    done = []
    with MotoServer(emulator=True, workdir=Path.cwd(), log_dir=(out / "task-logs").resolve()) as server:
        settings = template.deploy(server.settings(base))
        progress(f"local stack: moto on {server.endpoint}, bucket {settings.bucket}; task logs in {out / 'task-logs'}")
        for number, folder in enumerate(batch_dirs, start=1):
            progress(f"batch {number}/{len(batch_dirs)}: {folder}")
            execution = run_batch_through_the_flow(settings, folder, progress=progress)
            if execution.execution_id:
                runs.download_notebooks(settings, execution.execution_id, out / "runs")
            progress(
                f"  {execution.status} in {sum(execution.seconds.values()):.1f} s"
                + (f"; notebooks in {out / 'runs' / execution.execution_id}" if execution.execution_id else "")
            )
            done.append(execution)
        orders, categories = dump_kpis(settings, out)
        (out / "bucket.txt").write_text(list_bucket(settings))
    (out / "executions.json").write_text(json.dumps([e.to_dict() for e in done], indent=2) + "\n")
    progress(
        f"wrote {out}/order_kpis.csv ({orders} days), category_kpis.csv ({categories} rows), "
        "executions.json, bucket.txt"
    )
    return done
