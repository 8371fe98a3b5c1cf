"""``make lab``: JupyterLab on ``notebooks/`` against a seeded local stack, or against AWS.

Locally, a moto server is started and, when its KPI tables are empty, seeded by
running the sample batches through the pipeline notebooks (so the dashboard has
KPIs and the batch review has archived notebooks). The last sample batch is
then left in ``input/`` again with the manifest ``manifests/sample.json``: the
pipeline notebooks' default parameters run on it. The Jupyter server, its kernels and
its terminals get the stack's settings in their environment.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pipeline_tasks.errors import ConfigurationError, PipelineError
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.local.process import free_port
from pipeline_tasks.local.runner import execution_id_for, process_batch, upload_batch
from pipeline_tasks.local.stack import MotoServer, provision
from pipeline_tasks.notebooks import kernel_environment
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps import validate

log = logging.getLogger(__name__)

#: The execution the pipeline notebooks' default parameters name.
SAMPLE_EXECUTION = "sample"


def is_empty(settings: Settings) -> bool:
    """Whether the OrderKPIs table holds no item (one single-item Scan page)."""
    client = s3io.client(settings, "dynamodb")
    return not client.scan(TableName=settings.order_kpis_table, Limit=1).get("Items")


def seed(settings: Settings, batch_dirs: Sequence[Path], *, progress: Callable[[str], None] = print) -> list[str]:
    """Run the sample batches through the pipeline notebooks; leave the last one for the defaults.

    Returns:
        The execution ids of the seeding runs.
    """
    executions = []
    for number, folder in enumerate(batch_dirs, start=1):
        execution_id = execution_id_for(number, folder)
        progress(f"seeding: batch {folder} -> execution {execution_id}")
        execution = process_batch(settings, execution_id, upload_batch(settings, folder), progress=progress)
        if execution.status != "SUCCEEDED":
            raise PipelineError(f"seeding failed in {execution_id}: {execution.error}")
        executions.append(execution_id)
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


def jupyter_command(notebooks_dir: Path, port: int, *, open_browser: bool) -> list[str]:
    return [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--notebook-dir={notebooks_dir}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        *([] if open_browser else ["--no-browser"]),
        # Jupyter refuses to run as root unless told; CI machines and containers often are root.
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]


def start_jupyter(settings: Settings, *, port: int, open_browser: bool) -> subprocess.Popen[bytes]:
    """Start JupyterLab on the notebooks folder with the settings in its environment."""
    notebooks_dir = Path(settings.notebooks_dir).resolve()
    if not notebooks_dir.is_dir():
        raise ConfigurationError(f"notebook folder not found: {notebooks_dir} (run from the repository root)")
    env = dict(os.environ, **settings.to_env())
    return subprocess.Popen(jupyter_command(notebooks_dir, port, open_browser=open_browser), env=env)


def run_jupyter(settings: Settings, *, port: int | None, open_browser: bool) -> int:
    """Run JupyterLab until it exits (Ctrl-C stops it)."""
    process = start_jupyter(settings, port=port or free_port(), open_browser=open_browser)
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


def run(
    *,
    aws: bool,
    samples: Sequence[Path],
    port: int | None = None,
    open_browser: bool = True,
    refresh: bool = False,
    base: Settings | None = None,
    progress: Callable[[str], None] = print,
) -> int:
    """``ecom-pipeline lab``: the analysts' workbench, on the local stack or on AWS.

    With ``refresh``, execute the explore notebooks in place on the seeded stack and stop.
    """
    base = base or Settings.from_env()
    if aws:
        progress(
            f"JupyterLab against AWS: bucket {base.bucket}, tables {base.order_kpis_table}, {base.category_kpis_table}"
        )
        return run_jupyter(base.with_absolute_paths(), port=port, open_browser=open_browser)
    with MotoServer() as server:
        settings = local_stack_settings(server, base)
        progress(f"local stack: moto on {server.endpoint}, bucket {settings.bucket}")
        if is_empty(settings):
            seed(settings, samples, progress=progress)
        if refresh:
            refresh_outputs(settings, progress=progress)
            return 0
        progress(
            "in a JupyterLab terminal, `ecom-pipeline runs list` reviews the executions; "
            "notebooks/explore/kpi_dashboard.ipynb draws the KPIs. Ctrl-C stops JupyterLab and the stack."
        )
        return run_jupyter(settings, port=port, open_browser=open_browser)
