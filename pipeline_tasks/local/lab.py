"""``make lab``: JupyterLab on a work folder of notebook copies, against a seeded local stack or AWS.

The work folder (``lab/`` beside ``notebooks/``, or ``Settings.lab_dir``, ``PIPELINE_LAB_DIR``; gitignored) gets a
copy of ``notebooks/explore`` and ``notebooks/pipeline`` at each start, file by file, only
where the copy does not exist yet: an analyst's edited copies are kept, the tracked notebooks
are never saved over (``reset`` copies them all afresh). JupyterLab serves that folder.

Locally, a moto server is started and seeded by running the sample batches through the
pipeline notebooks (so the dashboard has KPIs and the batch review has archived notebooks).
The seeded stack (every S3 object, every KPI item) is then saved under ``.lab-cache/``,
named by a fingerprint of the samples, the pipeline notebooks and the package's code: the
next start restores it into its fresh moto server in seconds instead of seeding again.
The last sample batch is then left in ``input/`` again with the manifest
``manifests/sample.json``: the pipeline notebooks' default parameters run on it. The
Jupyter server, its kernels and its terminals get the stack's settings in their
environment, and the virtualenv's ``bin`` first on their ``PATH``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pipeline_tasks.errors import ConfigurationError, PipelineError
from pipeline_tasks.io import aws
from pipeline_tasks.local.process import free_port
from pipeline_tasks.local.runner import execution_id_for, process_batch, upload_batch
from pipeline_tasks.local.saved_stack import restore_stack, save_stack, saved_stack_dir
from pipeline_tasks.local.stack import MotoServer, provision
from pipeline_tasks.notebooks import kernel_environment
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps import validate

log = logging.getLogger(__name__)

#: The execution the pipeline notebooks' default parameters name.
SAMPLE_EXECUTION = "sample"

#: The folders of ``notebooks/`` copied into the work folder.
WORK_FOLDERS = ("explore", "pipeline")


def is_empty(settings: Settings) -> bool:
    """Whether the OrderKPIs table holds no item (one single-item Scan page)."""
    client = aws.client(settings, "dynamodb")
    return not client.scan(TableName=settings.order_kpis_table, Limit=1).get("Items")


def seed_batches(
    settings: Settings, batch_dirs: Sequence[Path], *, progress: Callable[[str], None] = print
) -> list[str]:
    """Run the sample batches through the pipeline notebooks, saying which batch and step runs.

    Returns:
        The execution ids of the seeding runs.
    """
    executions = []
    for number, folder in enumerate(batch_dirs, start=1):
        execution_id = execution_id_for(number, folder)
        progress(f"seeding batch {number} of {len(batch_dirs)}: {folder} -> execution {execution_id}")
        execution = process_batch(settings, execution_id, upload_batch(settings, folder), progress=progress)
        if execution.status != "SUCCEEDED":
            raise PipelineError(f"seeding failed in {execution_id}: {execution.error}")
        executions.append(execution_id)
    return executions


def seed(settings: Settings, batch_dirs: Sequence[Path], *, progress: Callable[[str], None] = print) -> list[str]:
    """Run the sample batches through the pipeline notebooks; leave the last one for the defaults.

    Returns:
        The execution ids of the seeding runs.
    """
    executions = seed_batches(settings, batch_dirs, progress=progress)
    if batch_dirs:
        leave_sample_batch(settings, batch_dirs[-1])
    return executions


def leave_sample_batch(settings: Settings, folder: Path) -> str:
    """Upload a batch to ``input/`` with the manifest the pipeline notebooks' defaults read.

    The last seeded batch again: running the notebooks with their defaults then shows a
    whole batch (a rejected file included) and changes no KPI (the same files twice
    change nothing). Returns the manifest's key.
    """
    return validate.write_manifest(settings, SAMPLE_EXECUTION, upload_batch(settings, folder))


def local_stack_settings(server: MotoServer, base: Settings | None = None) -> Settings:
    settings = server.settings(base).with_absolute_paths()
    provision(settings)
    return settings


# --- The work folder: copies of the tracked notebooks -------------------------------------------


def work_dir(settings: Settings) -> Path:
    """The folder JupyterLab serves: ``Settings.lab_dir``, else ``lab/`` beside the notebooks folder."""
    if settings.lab_dir:
        return Path(settings.lab_dir).resolve()
    return Path(settings.notebooks_dir).resolve().parent / "lab"


def prepare_work_dir(notebooks_dir: Path, work: Path, *, reset: bool = False) -> list[Path]:
    """Copy ``explore/`` and ``pipeline/`` of the notebooks folder into the work folder.

    A notebook whose copy exists already is left as it is (the analyst's edits and outputs),
    unless ``reset``. Returns the copies written.
    """
    if not notebooks_dir.is_dir():
        raise ConfigurationError(f"notebook folder not found: {notebooks_dir} (run from the repository root)")
    written = []
    for folder in WORK_FOLDERS:
        for source in sorted((notebooks_dir / folder).glob("*.ipynb")):
            copy = work / folder / source.name
            if copy.exists() and not reset:
                continue
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy)
            written.append(copy)
    return written


# --- The seeded stack, saved once and restored at the next starts -------------------------------


def seed_or_restore(settings: Settings, samples: Sequence[Path], *, progress: Callable[[str], None] = print) -> None:
    """Bring an empty local stack to its seeded state: restored when saved before, else seeded and saved.

    The last sample batch is left in ``input/`` either way (its manifest pins the versions of
    this stack's uploads).
    """
    saved = saved_stack_dir(settings, samples)
    if (saved / "stack.json").is_file():
        progress(f"restoring the seeded stack saved in {saved} …")
        try:
            counts = restore_stack(settings, saved)
        except Exception as error:
            shutil.rmtree(saved, ignore_errors=True)
            raise PipelineError(
                f"the saved stack {saved} could not be restored ({error}); it was removed: start the lab again"
            ) from error
        progress(f"restored {counts['objects']} S3 objects and {counts['items']} KPI items")
    else:
        progress(f"no seeded stack saved for these samples and this code: seeding ({len(samples)} batch(es))")
        seed_batches(settings, samples, progress=progress)
        progress(f"saving the seeded stack to {saved} for the next starts …")
        counts = save_stack(settings, saved)
        progress(f"saved {counts['objects']} S3 objects and {counts['items']} KPI items")
    if samples:
        progress(f"leaving {samples[-1]} in input/ for the pipeline notebooks' defaults")
        leave_sample_batch(settings, samples[-1])


# --- JupyterLab -----------------------------------------------------------------------------------


def jupyter_command(root_dir: Path, port: int, *, open_browser: bool) -> list[str]:
    return [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--notebook-dir={root_dir}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        # Terminals: the user's shell, not a login shell. Jupyter starts a login shell when its
        # output is no terminal (make, a test), and /etc/profile would then reset PATH.
        f"--ServerApp.terminado_settings=shell_command={os.environ.get('SHELL') or shutil.which('sh') or '/bin/sh'}",
        *([] if open_browser else ["--no-browser"]),
        # Jupyter refuses to run as root unless told; CI machines and containers often are root.
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]


def jupyter_environment(settings: Settings, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The Jupyter server's environment (its kernels' and terminals' too): the settings, and this
    Python's ``bin`` first on ``PATH`` (``ecom-pipeline`` in a terminal is this virtualenv's)."""
    env = dict(os.environ if environ is None else environ, **settings.to_env())
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, *(p for p in env.get("PATH", "").split(os.pathsep) if p and p != bin_dir)])
    return env


def start_jupyter(
    settings: Settings, *, port: int, open_browser: bool, root_dir: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start JupyterLab on ``root_dir`` (the notebooks folder by default) with the settings in its environment."""
    root = (root_dir or Path(settings.notebooks_dir)).resolve()
    if not root.is_dir():
        raise ConfigurationError(f"notebook folder not found: {root} (run from the repository root)")
    return subprocess.Popen(jupyter_command(root, port, open_browser=open_browser), env=jupyter_environment(settings))


def run_jupyter(settings: Settings, *, port: int | None, open_browser: bool, root_dir: Path | None = None) -> int:
    """Run JupyterLab until it exits (Ctrl-C stops it)."""
    process = start_jupyter(settings, port=port or free_port(), open_browser=open_browser, root_dir=root_dir)
    try:
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


#: The analysts' notebooks whose committed outputs nbval checks (``make test``).
EXPLORE_NOTEBOOKS = ("kpi_dashboard.ipynb", "batch_review.ipynb")


def execute_in_place(settings: Settings, path: Path, *, timeout: int = 600) -> None:
    """Execute a notebook top to bottom in its folder and save it with its outputs.

    nbclient rather than papermill: the committed notebook stays free of run metadata.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    with kernel_environment(settings.to_env()):
        NotebookClient(notebook, timeout=timeout, resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(notebook, path)


def refresh_outputs(settings: Settings, *, progress: Callable[[str], None] = print) -> list[Path]:
    """Re-execute the explore notebooks against a seeded stack, for nbval's committed outputs."""
    folder = Path(settings.notebooks_dir) / "explore"
    paths = [folder / name for name in EXPLORE_NOTEBOOKS]
    for path in paths:
        progress(f"executing {path}")
        execute_in_place(settings, path)
    return paths


def _timed(progress: Callable[[str], None]) -> Callable[[str], None]:
    """``progress`` with the seconds since the start in front of each line."""
    started = time.monotonic()

    def say(message: str) -> None:
        progress(f"[lab {time.monotonic() - started:5.1f}s] {message}")

    return say


def _banner(work: Path, *, local: bool) -> str:
    lines = [
        f"work folder: {work} (your copies of notebooks/explore and notebooks/pipeline; the tracked "
        "notebooks stay as committed; a copy you delete comes back fresh at the next start)",
        "in a JupyterLab terminal, `ecom-pipeline runs list` reviews the executions; "
        "explore/kpi_dashboard.ipynb draws the KPIs.",
        "Ctrl-C stops JupyterLab" + (" and the stack." if local else "."),
        "JupyterLab is starting: it prints its URL (with its token) below …",
    ]
    return "\n".join(lines)


def run(
    *,
    aws: bool,
    samples: Sequence[Path],
    port: int | None = None,
    open_browser: bool = True,
    refresh: bool = False,
    reset: bool = False,
    base: Settings | None = None,
    progress: Callable[[str], None] = print,
) -> int:
    """``ecom-pipeline lab``: the analysts' workbench, on the local stack or on AWS.

    With ``refresh``, execute the explore notebooks in place on a freshly seeded stack and stop.
    With ``reset``, copy every notebook into the work folder afresh and seed the stack anew.
    """
    base = base or Settings.from_env()
    say = _timed(progress)
    work = work_dir(base)
    if not refresh:
        copied = prepare_work_dir(Path(base.notebooks_dir).resolve(), work, reset=reset)
        say(f"work folder {work}: {len(copied)} notebook(s) copied from {base.notebooks_dir}/")
    if aws:
        say(f"JupyterLab against AWS: bucket {base.bucket}, tables {base.order_kpis_table}, {base.category_kpis_table}")
        say(_banner(work, local=False))
        return run_jupyter(base.with_absolute_paths(), port=port, open_browser=open_browser, root_dir=work)
    say("starting the emulator (moto server) …")
    with MotoServer() as server:
        say(f"deploying the stack on {server.endpoint} (bucket, KPI tables) …")
        settings = local_stack_settings(server, base)
        say(f"local stack: moto on {server.endpoint}, bucket {settings.bucket}")
        if refresh:
            if is_empty(settings):
                seed(settings, samples, progress=say)
            refresh_outputs(settings, progress=say)
            return 0
        if reset:
            shutil.rmtree(saved_stack_dir(settings, samples), ignore_errors=True)
        if is_empty(settings):
            seed_or_restore(settings, samples, progress=say)
        say(_banner(work, local=True))
        return run_jupyter(settings, port=port, open_browser=open_browser, root_dir=work)
