"""The notebook runner's per-step overhead (``make bench-notebooks``).

For each step of the pipeline, on the sample batches and a local moto server,
the same work is run three ways: called directly in this (warm) process, called
in a fresh Python process (what a task container would run without papermill:
the baseline), and through ``ecom-pipeline notebook``'s function (papermill:
kernel start, parameter injection, the step, the display cells; HTML
rendering; archiving to S3). An empty notebook (parameters only) isolates the fixed cost of a kernel.
Each step runs on a fresh bucket and fresh tables so both variants do the same
work. Results: ``bench/results/notebooks-latest.json`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline_tasks import layout, notebooks  # noqa: E402
from pipeline_tasks.local.runner import upload_batch  # noqa: E402
from pipeline_tasks.local.stack import MotoServer, provision  # noqa: E402
from pipeline_tasks.settings import Settings  # noqa: E402
from pipeline_tasks.steps import stage, transform, validate  # noqa: E402

SAMPLES = [REPO / "samples" / "batch_01", REPO / "samples" / "batch_02"]

#: The step alone in a new Python process: what a task container would run without papermill.
FRESH_PROCESS = (
    "from pipeline_tasks import layout\n"
    "from pipeline_tasks.settings import Settings\n"
    "from pipeline_tasks.steps import stage, transform, validate\n"
    "s, e = Settings.from_env(), {execution_id!r}\n"
    "{call}\n"
)


def fresh(server: MotoServer) -> Settings:
    suffix = uuid.uuid4().hex[:8]
    settings = server.settings(
        Settings(
            bucket=f"bench-{suffix}",
            order_kpis_table=f"OrderKPIs-{suffix}",
            category_kpis_table=f"CategoryKPIs-{suffix}",
            notebooks_dir=str(REPO / "notebooks"),
            spark_jars_dir=str(REPO / ".jars"),
        )
    )
    provision(settings)
    return settings


def prepared(server: MotoServer, upto: str) -> tuple[Settings, str]:
    """A fresh stack with the first sample batch taken through the steps before ``upto``."""
    settings = fresh(server)
    execution_id = "bench-1"
    keys = upload_batch(settings, SAMPLES[0])
    validate.write_manifest(settings, execution_id, keys)
    if upto in ("stage", "transform"):
        validate.run(settings, execution_id, keys)
    if upto == "transform":
        stage.run(settings, execution_id)
    return settings, execution_id


def empty_notebook_dir(folder: Path) -> Path:
    cell = new_code_cell('execution_id = "x"\nbucket = None\naws_endpoint_url = None')
    cell.metadata["tags"] = ["parameters"]
    notebook = new_notebook(
        cells=[cell], metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}
    )
    (folder / "pipeline").mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / "pipeline" / "10_validate.ipynb")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant (the median is reported)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "notebooks-latest.json")
    args = parser.parse_args()
    os.chdir(REPO)
    rows = []
    with MotoServer() as server, tempfile.TemporaryDirectory() as scratch:
        empty_dir = empty_notebook_dir(Path(scratch))
        empty = []
        for n in range(args.repeat):
            settings = fresh(server).with_overrides(notebooks_dir=str(empty_dir))
            run = notebooks.run_step(settings, "validate", {"execution_id": f"empty-{n}"})
            empty.append(run.seconds)
        fresh_process_calls = {
            "validate": "validate.run(s, e, manifest_key=layout.manifest_key(s, e))",
            "stage": "stage.run(s, e)",
            "transform": "transform.run(s, e)",
        }
        direct_calls: dict[str, Callable[[Settings, str], Any]] = {
            "validate": lambda s, e: validate.run(s, e, manifest_key=layout.manifest_key(s, e)),
            "stage": lambda s, e: stage.run(s, e),
            "transform": lambda s, e: transform.run(s, e),  # starts and stops its own Spark, as the notebook does
        }
        for step, call in direct_calls.items():
            direct, cold, through = [], [], []
            for _ in range(args.repeat):
                settings, execution_id = prepared(server, step)
                started = time.perf_counter()
                call(settings, execution_id)
                direct.append(time.perf_counter() - started)
                settings, execution_id = prepared(server, step)
                started = time.perf_counter()
                subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        FRESH_PROCESS.format(execution_id=execution_id, call=fresh_process_calls[step]),
                    ],
                    env=dict(os.environ, **settings.with_absolute_paths().to_env()),
                    check=True,
                    capture_output=True,
                )
                cold.append(time.perf_counter() - started)
                settings, execution_id = prepared(server, step)
                parameters: dict[str, Any] = {"execution_id": execution_id}
                if step == "validate":
                    parameters["manifest_key"] = layout.manifest_key(settings, execution_id)
                started = time.perf_counter()
                run = notebooks.run_step(settings, step, parameters)
                through.append({"total": time.perf_counter() - started, **run.seconds})
            rows.append(
                {
                    "step": step,
                    "direct_s": statistics.median(direct),
                    "fresh_process_s": statistics.median(cold),
                    "notebook_s": statistics.median(t["total"] for t in through),
                    "execute_s": statistics.median(t["execute"] for t in through),
                    "render_s": statistics.median(t["render"] for t in through),
                    "archive_s": statistics.median(t["archive"] for t in through),
                }
            )
    fixed = {
        "kernel_and_injection_s": statistics.median(e["execute"] for e in empty),
        "render_s": statistics.median(e["render"] for e in empty),
        "archive_s": statistics.median(e["archive"] for e in empty),
    }
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "repeat": args.repeat,
        "empty_notebook": fixed,
        "steps": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"empty notebook (kernel start + parameter injection): {fixed['kernel_and_injection_s']:.2f} s, "
        f"render {fixed['render_s']:.2f} s, archive {fixed['archive_s']:.2f} s"
    )
    print(
        "| step | in-process call (s) | fresh process (s) | notebook (s) | overhead vs fresh process (s) "
        "| ratio notebook / fresh process | of which render + archive (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['step']} | {r['direct_s']:.2f} | {r['fresh_process_s']:.2f} | {r['notebook_s']:.2f} "
            f"| {r['notebook_s'] - r['fresh_process_s']:.2f} | {r['notebook_s'] / r['fresh_process_s']:.2f} "
            f"| {r['render_s'] + r['archive_s']:.2f} |"
        )


if __name__ == "__main__":
    main()
