"""Run a pipeline step's notebook with papermill and archive the executed copy.

The executed notebook is the audit record of a batch: it is saved with every
output (the failing cell's traceback included), rendered to HTML and uploaded
to ``s3://BUCKET/runs/{execution_id}/`` before any error is raised. A small run
record (``{notebook}.json`` beside them, ``documents.RunRecord``) says how the
step ended and how long each part took; ``ecom-pipeline runs`` reads it.

papermill is imported only when a step runs (``_execute``: importing it is slow),
so the rest of the package and the CLI start fast.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline_tasks import errors
from pipeline_tasks import parameters as declared_parameters
from pipeline_tasks.documents import RunRecord
from pipeline_tasks.io import aws
from pipeline_tasks.layout import run_key
from pipeline_tasks.settings import Settings

log = logging.getLogger(__name__)
#: Run in each step kernel first: the ``pipeline_tasks`` loggers write to the task's output.
_TASK_LOGGING = "from pipeline_tasks.progress import log_to_task_output; log_to_task_output()"

#: The pipeline's steps in state-machine order: step name -> notebook (in ``notebooks/pipeline/``).
STEPS: dict[str, str] = {
    "validate": "10_validate",
    "stage": "20_stage",
    "transform": "30_transform_kpis",
}

SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"


@dataclass
class NotebookRun:
    """How one step's notebook run ended and where its executed copy lives.

    Filled in as the run goes; ``record()`` is the document archived once it ended.
    """

    execution_id: str
    step: str
    notebook: str
    status: str
    started_at: str
    parameters: dict[str, Any]
    exit_code: int = 0
    error: str | None = None
    #: S3 keys of the archived ``.ipynb``, ``.html`` and run record.
    keys: dict[str, str] = field(default_factory=dict)
    #: Local path of the executed ``.ipynb`` (kept when an output folder was given).
    local_path: str | None = None
    #: Wall-clock seconds of each part: ``execute`` (kernel start + cells), ``render``, ``archive``.
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED

    def record(self) -> RunRecord:
        """The run record as archived: ``runs/{execution_id}/{notebook}.json``."""
        return RunRecord(
            execution_id=self.execution_id,
            step=self.step,
            notebook=self.notebook,
            status=self.status,
            started_at=self.started_at,
            parameters=dict(self.parameters),
            exit_code=self.exit_code,
            error=self.error,
            keys=dict(self.keys),
            local_path=self.local_path,
            seconds=dict(self.seconds),
        )

    def to_dict(self) -> dict[str, Any]:
        return self.record().to_json()


def notebook_path(settings: Settings, step: str) -> Path:
    """The notebook of a step; a clear error when the step or the folder is unknown."""
    if step not in STEPS:
        raise errors.ConfigurationError(f"unknown step {step!r}; the steps are {', '.join(STEPS)}")
    path = Path(settings.notebooks_dir) / "pipeline" / f"{STEPS[step]}.ipynb"
    if not path.is_file():
        raise errors.ConfigurationError(
            f"notebook not found: {path} (run from the repository root or set PIPELINE_NOTEBOOKS_DIR)"
        )
    return path


def archived_uri(settings: Settings, execution_id: str, step: str, suffix: str) -> str:
    """``s3://`` URI of a step's archived notebook (``ipynb``) or its HTML (``html``)."""
    return f"s3://{settings.bucket}/{run_key(settings, execution_id, f'{STEPS[step]}.{suffix}')}"


def run_step(
    settings: Settings,
    step: str,
    parameters: Mapping[str, Any],
    *,
    output_dir: Path | None = None,
    progress: bool = False,
) -> NotebookRun:
    """Execute a step's notebook with papermill, archive it, and raise on failure.

    Args:
        settings: Passed to the kernel through its environment; ``bucket`` and
            ``aws_endpoint_url`` are also injected as parameters, so the executed
            notebook shows where it ran.
        step: ``validate``, ``stage`` or ``transform``.
        parameters: The notebook's parameters; ``execution_id`` is required. They are
            checked against the types the notebook's ``parameters`` cell declares
            (``pipeline_tasks.parameters``) and converted to them before the kernel starts.
        output_dir: Where to keep the executed notebook and its HTML (a
            temporary folder, removed afterwards, when None).
        progress: Show papermill's cell-by-cell progress bar on stderr.

    Returns:
        The run, once archived, when every cell succeeded.

    Raises:
        KernelDied, CellTimeout, KernelStartTimeout: the kernel failed; the
            notebook as far as it ran is archived.
        PipelineError (or a subclass): a cell raised it; other cell errors are
            StepFailed. The archived notebook shows the failing cell.
        ConfigurationError: a parameter is unknown, missing or of the wrong type (nothing ran).
        ArchiveFailed: the step ran but its notebook could not be uploaded.

    A raised failure's ``notebook_uri`` is the archived notebook's, when it was archived.
    """
    settings = settings.with_absolute_paths()
    source = notebook_path(settings, step)
    typed = declared_parameters.check_step(source, parameters)
    run = _new_run(settings, step, source, typed)
    with _work_dir(output_dir) as folder:
        executed = folder / f"{source.stem}.ipynb"
        failure = _execute_run(settings, run, source, executed, progress=progress)
        _archive_run(settings, run, executed, failure)
        if output_dir is not None:
            run.local_path = str(executed)
    if failure is not None:
        if "html" in run.keys:
            failure.notebook_uri = f"s3://{settings.bucket}/{run.keys['html']}"
        raise failure
    return run


def _new_run(settings: Settings, step: str, source: Path, parameters: Mapping[str, Any]) -> NotebookRun:
    """A run about to start (FAILED until every cell succeeded); ``bucket`` and ``aws_endpoint_url`` injected."""
    return NotebookRun(
        execution_id=str(parameters["execution_id"]),
        step=step,
        notebook=source.stem,
        status=FAILED,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        parameters={"bucket": settings.bucket, "aws_endpoint_url": settings.aws_endpoint_url, **parameters},
    )


def _execute_run(
    settings: Settings, run: NotebookRun, source: Path, executed: Path, *, progress: bool
) -> errors.PipelineError | None:
    """Execute the notebook and record how it ended in ``run``; the step's failure is returned, not raised.

    A failed notebook gets a banner with the failure at its top (``_mark_failure``).
    """
    failure: errors.PipelineError | None = None
    started = time.perf_counter()
    jvm_log = executed.with_name("spark-jvm.log")
    try:
        task_settings = settings.with_overrides(spark_jvm_log=str(jvm_log))
        _execute(task_settings, source, executed, run.parameters, progress=progress)
        run.status = SUCCEEDED
    except errors.PipelineError as error:
        failure = error
        run.exit_code, run.error = error.exit_code, str(error)
        _mark_failure(executed, str(error))
    finally:
        _forward_jvm_log(jvm_log)
    run.seconds["execute"] = round(time.perf_counter() - started, 3)
    log.info("%s %s in %.1f s", source.stem, run.status.lower(), run.seconds["execute"])
    return failure


def _forward_jvm_log(path: Path) -> None:
    """Copy what the step's Spark driver JVM wrote to this process's stderr: the task's log, not the notebook."""
    if path.is_file() and path.stat().st_size:
        sys.stderr.write(f"--- Spark driver JVM output ({path.name}) ---\n")
        sys.stderr.write(path.read_text(encoding="utf-8", errors="replace"))
        sys.stderr.write("--- end of Spark driver JVM output ---\n")
        sys.stderr.flush()


def _archive_run(settings: Settings, run: NotebookRun, executed: Path, failure: errors.PipelineError | None) -> None:
    """Archive the run; ArchiveFailed when that fails, unless the step failed (its failure is the one to report)."""
    try:
        _archive(settings, run, executed)
    except Exception as error:
        if failure is None:
            raise errors.ArchiveFailed(f"could not archive {executed.name}: {error}") from error
        log.exception("could not archive the failed notebook %s", executed.name)


@contextmanager
def _work_dir(output_dir: Path | None) -> Iterator[Path]:
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        yield output_dir
        return
    with tempfile.TemporaryDirectory(prefix="ecom-notebook-") as folder:
        yield Path(folder)


@contextmanager
def kernel_environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set variables for the kernel papermill starts (it inherits this process's environment)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _execute(
    settings: Settings, source: Path, executed: Path, parameters: Mapping[str, Any], *, progress: bool
) -> None:
    """Run the notebook; translate papermill's and the kernel's failures into ours."""
    _skip_slow_format_checker()
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    try:
        with kernel_environment(settings.to_env()):
            papermill.execute_notebook(
                str(source),
                str(executed),
                parameters=dict(parameters),
                kernel_name=settings.kernel_name,
                progress_bar=progress,
                start_timeout=settings.kernel_start_timeout,
                execution_timeout=settings.cell_timeout,
                cwd=str(source.parent),
                # The kernel's own start-up warnings (plain-TCP transport…) are noise in task logs; the
                # steps' progress lines go to the task's log (where heartbeats read them), not the notebook.
                extra_arguments=["--IPKernelApp.log_level=ERROR", f"--IPKernelApp.exec_lines={_TASK_LOGGING}"],
            )
    except PapermillExecutionError as error:
        raise _cell_failure(error.ename, error.evalue, error.exec_count) from None
    except DeadKernelError as error:
        raise errors.KernelDied(
            f"the kernel died while running {source.name} ({error}); it is most often killed for lack of "
            "memory: give the task more memory or lower PIPELINE_SPARK_DRIVER_MEMORY"
        ) from None
    except CellTimeoutError:
        raise errors.CellTimeout(
            f"a cell of {source.name} ran longer than {settings.cell_timeout} s (PIPELINE_CELL_TIMEOUT)"
        ) from None
    except NoSuchKernel:
        raise errors.ConfigurationError(
            f"no Jupyter kernel named {settings.kernel_name!r} (PIPELINE_KERNEL_NAME); "
            "`jupyter kernelspec list` shows the installed ones"
        ) from None
    except RuntimeError as error:
        if "didn't respond" not in str(error) and "Kernel died before replying" not in str(error):
            raise
        raise errors.KernelStartTimeout(
            f"the kernel did not start within {settings.kernel_start_timeout} s "
            f"(PIPELINE_KERNEL_START_TIMEOUT): {error}"
        ) from None


def _cell_failure(name: str, value: str, cell: int | None) -> errors.PipelineError:
    """A cell's exception as ours: our kinds keep their class (their message, not their name, is shown);
    botocore's missing credentials or unreachable endpoint are ConfigurationError; any other is StepFailed.
    """
    from pipeline_tasks.cli_errors import CONFIGURATION_NAMES, HOW_TO_CONNECT

    ours = errors.by_name().get(name)
    if ours is not None:
        return ours(f"in cell [{cell}]: {value}")
    if name in CONFIGURATION_NAMES:
        return errors.ConfigurationError(f"in cell [{cell}]: {name}: {value}; {HOW_TO_CONNECT}")
    return errors.StepFailed(f"{name} in cell [{cell}]: {value}")


def _skip_slow_format_checker() -> None:
    """Keep jsonschema (imported by nbformat) from importing ``rfc3987_syntax``.

    When installed (jupyter-events pulls it in), it builds a Lark grammar at import, which
    slows every task's start, for the ``iri`` formats that notebook validation never
    checks. jsonschema imports it under ``suppress(ImportError)``; a None entry makes that
    import fail. Nothing is changed when it is already imported.
    """
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def _mark_failure(executed: Path, message: str) -> None:
    """Put the failure at the top of the executed notebook, as papermill does for cell errors."""
    if not executed.is_file():
        return
    import nbformat

    notebook = nbformat.read(executed, as_version=4)
    if any("papermill-error-cell-tag" in c.metadata.get("tags", []) for c in notebook.cells):
        return  # papermill already marked the failing cell
    banner = nbformat.v4.new_markdown_cell(
        f'<span style="color:red; font-weight:bold">Execution failed: {_escape(message)}</span>'
    )
    banner.metadata["tags"] = ["papermill-error-cell-tag"]
    notebook.cells.insert(0, banner)
    nbformat.write(notebook, executed)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_html(executed: Path) -> Path:
    """Render an executed notebook to a standalone HTML page beside it."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter()
    # nbconvert warns about every chart without alt text; our charts carry titles instead.
    level = exporter.log.level
    exporter.log.setLevel(logging.ERROR)
    try:
        body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    finally:
        exporter.log.setLevel(level)
    page = executed.with_suffix(".html")
    page.write_text(body, encoding="utf-8")
    return page


def _archive(settings: Settings, run: NotebookRun, executed: Path) -> None:
    """Upload the executed notebook, its HTML and the run record to ``runs/{execution_id}/``."""
    s3 = aws.client(settings, "s3")
    if executed.is_file():
        started = time.perf_counter()
        page = render_html(executed)
        run.seconds["render"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        for path, kind in ((executed, "application/x-ipynb+json"), (page, "text/html; charset=utf-8")):
            key = run_key(settings, run.execution_id, path.name)
            s3.upload_file(str(path), settings.bucket, key, ExtraArgs={"ContentType": kind})
            run.keys[path.suffix.lstrip(".")] = key
        run.seconds["archive"] = round(time.perf_counter() - started, 3)
    record = run_key(settings, run.execution_id, f"{run.notebook}.json")
    run.keys["record"] = record
    s3.put_object(
        Bucket=settings.bucket,
        Key=record,
        Body=json.dumps(run.record().to_json(), indent=2).encode(),
        ContentType="application/json",
    )
