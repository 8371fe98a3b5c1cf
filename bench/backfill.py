"""A shop's whole history as one batch, through the three ECS tasks, with their memory (``make bench-backfill``).

Generates ``--items`` TheLook-shaped order items (``bench/generate.py``: products,
orders, items), starts the local stack (moto server, ``template.deploy`` of infra/pipeline.yaml),
uploads the files to ``input/`` and pins them in a batch manifest. Then each task
runs as its ECS task runs it: the container command the state machine gives it
(read from the provisioned state machine's definition) as a local process, with
the environment of its task definition on the local stack, as the local ECS agent
starts it. Between and after the tasks, the moves (rejected files, then the archive).

For each task the process tree (the CLI, the notebook kernel, Spark's JVM) is
polled every ``--interval`` seconds for its resident memory (the sum of the RSS
of its processes), and its peak is set against the task's memory in
``infra/pipeline.yaml``. With ``--limit cgroup`` (the default where the cgroup v1
memory controller is writable) each task also runs in a memory cgroup capped at
that size, as Fargate caps the container: a task over its memory is killed there too.

Results: ``bench/results/{date}-backfill-{items}.json`` and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # both come with the notebook runner (ipykernel, papermill)
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline_tasks import batches, layout  # noqa: E402
from pipeline_tasks.documents import BatchValidation, StageReport, TransformReport  # noqa: E402
from pipeline_tasks.io import aws  # noqa: E402
from pipeline_tasks.io import s3 as s3io  # noqa: E402
from pipeline_tasks.local import template  # noqa: E402
from pipeline_tasks.local.stack import MotoServer  # noqa: E402
from pipeline_tasks.settings import Settings  # noqa: E402
from pipeline_tasks.steps import files as moves  # noqa: E402

TEMPLATE = REPO / "infra" / "pipeline.yaml"
#: The state machine's task states, in order, and the step each runs.
TASK_STATES = {"ValidationTask": "validate", "StagingTask": "stage", "TransformationTask": "transform"}
#: What the issue asks of every task's peak at this scale.
TARGET_SHARE = 0.75
CGROUP_ROOT = Path("/sys/fs/cgroup/memory")


def task_memory_mib(template: Path = TEMPLATE) -> dict[str, int]:
    """Memory (MiB) of each ECS task definition in the CloudFormation template, by container name."""

    class Loader(yaml.SafeLoader):
        """Reads CloudFormation's short-form tags (``!Ref``, ``!Sub``, …) as plain values."""

    def tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        return loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else None

    Loader.add_multi_constructor("!", tagged)
    resources = yaml.load(template.read_text(), Loader=Loader)["Resources"]  # a SafeLoader
    memory = {}
    for resource in resources.values():
        if resource["Type"] == "AWS::ECS::TaskDefinition":
            properties = resource["Properties"]
            memory[properties["ContainerDefinitions"][0]["Name"]] = int(properties["Memory"])
    return memory


def _command(expression: str, values: dict[str, str]) -> list[str]:
    """A ``States.Array('a', 'b', $.name, …)`` intrinsic evaluated against ``values``."""
    inner = expression.strip().removeprefix("States.Array(").removesuffix(")")
    return [values[path] if path else literal for literal, path in _ARGUMENT.findall(inner)]


_ARGUMENT = re.compile(r"'([^']*)'|\$\.(\w+)")


def task_runs(settings: Settings, values: dict[str, str]) -> dict[str, dict[str, Any]]:
    """For each task state: its container's name, command and environment, as the local stack has them."""
    sfn, ecs = aws.client(settings, "stepfunctions"), aws.client(settings, "ecs")
    states = json.loads(sfn.describe_state_machine(stateMachineArn=settings.state_machine_arn)["definition"])["States"]
    runs = {}
    for state, step in TASK_STATES.items():
        parameters = states[state]["Parameters"]
        [override] = parameters["Overrides"]["ContainerOverrides"]
        definition = ecs.describe_task_definition(taskDefinition=parameters["TaskDefinition"])["taskDefinition"]
        [container] = [c for c in definition["containerDefinitions"] if c["name"] == override["Name"]]
        runs[step] = {
            "container": container["name"],
            "command": _command(override["Command.$"], values),
            "environment": {e["name"]: e["value"] for e in container.get("environment", [])},
        }
    return runs


class TreeMemory(threading.Thread):
    """Polls the resident memory of a process and its descendants; keeps the peak of the sum."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(name="tree-memory", daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.at_peak: dict[str, int] = {}
        self.samples = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.interval)

    def sample(self) -> None:
        with suppress(psutil.Error):
            processes = [self.root, *self.root.children(recursive=True)]
            sizes: dict[str, int] = {}
            for process in processes:
                with suppress(psutil.Error):
                    label = f"{_label(process)} ({process.pid})"
                    sizes[label] = process.memory_info().rss
            self.samples += 1
            total = sum(sizes.values())
            if total > self.peak:
                self.peak, self.at_peak = total, sizes

    def stop(self) -> None:
        self._done.set()
        self.join()


def _label(process: psutil.Process) -> str:
    """What a process of a task is: the CLI, the notebook kernel, Spark's JVM, …"""
    line = process.cmdline()
    text = " ".join(line)
    if "ipykernel" in text:
        return "notebook kernel"
    if line and line[0].endswith("java"):
        return "Spark JVM"
    if "ecom-pipeline" in text:
        return "ecom-pipeline CLI"
    return Path(line[0]).name if line else process.name()


@contextmanager
def memory_cgroup(name: str, limit_mib: int | None) -> Iterator[Path | None]:
    """A cgroup v1 memory group capped at ``limit_mib`` (None: no group); removed afterwards."""
    if limit_mib is None:
        yield None
        return
    group = CGROUP_ROOT / name
    group.mkdir()
    try:
        (group / "memory.limit_in_bytes").write_text(str(limit_mib << 20))
        yield group
    finally:
        for _ in range(50):  # the group can only go once its last process is gone
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def _join(procs: Path) -> None:
    """Move the calling process into a cgroup (run in the child, before the command starts)."""
    procs.write_text(str(os.getpid()))


def _cgroup_figures(group: Path) -> dict[str, Any]:
    oom = dict(line.split() for line in (group / "memory.oom_control").read_text().splitlines())
    return {
        "cgroup_limit_mib": int((group / "memory.limit_in_bytes").read_text()) >> 20,
        "cgroup_max_usage_mib": int((group / "memory.max_usage_in_bytes").read_text()) >> 20,
        "cgroup_failcnt": int((group / "memory.failcnt").read_text()),
        "cgroup_oom_kills": int(oom.get("oom_kill", 0)),
    }


def run_task(
    step: str, spec: dict[str, Any], memory_mib: int, *, log_dir: Path, interval: float, limit: bool
) -> dict[str, Any]:
    """Run one task's container command as the local ECS agent does; time it and poll its memory."""
    env = dict(os.environ) | spec["environment"]
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    log_path = log_dir / f"{spec['container']}.log"
    print(f"$ {' '.join(spec['command'])}", flush=True)
    with memory_cgroup(f"ecom-backfill-{step}-{os.getpid()}", memory_mib if limit else None) as group:
        join = None if group is None else functools.partial(_join, group / "cgroup.procs")
        with log_path.open("wb") as output:
            started = time.perf_counter()
            process = subprocess.Popen(
                spec["command"], env=env, cwd=REPO, stdout=output, stderr=subprocess.STDOUT, preexec_fn=join
            )
            poller = TreeMemory(process.pid, interval)
            poller.start()
            code = process.wait()
            seconds = time.perf_counter() - started
            poller.stop()
        figures = _cgroup_figures(group) if group is not None else {}
    peak = poller.peak / 2**20
    row = {
        "step": step,
        "container": spec["container"],
        "command": spec["command"],
        "exit_code": code,
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(peak),
        "task_memory_mib": memory_mib,
        "peak_share": round(peak / memory_mib, 3),
        "within_target": peak <= TARGET_SHARE * memory_mib,
        "processes_at_peak_mib": {k: round(v / 2**20) for k, v in sorted(poller.at_peak.items())},
        "samples": poller.samples,
        "log": str(log_path),
        **figures,
    }
    print(
        f"  {step}: exit {code}, {row['seconds']} s, peak {row['peak_rss_mib']} MiB of {memory_mib} MiB "
        f"({100 * row['peak_share']:.0f} %)",
        flush=True,
    )
    return row


def generate(data: Path, items: int) -> float:
    """TheLook-shaped CSVs in ``data`` (kept and reused); the seconds it took (0 when reused)."""
    if all((data / f"{name}.csv").exists() for name in ("products", "orders", "order_items")):
        return 0.0
    print(f"generating {items:,} order items into {data} …", flush=True)
    started = time.perf_counter()
    # A process of its own: the generator's memory is not the harness's while the tasks run.
    command = [sys.executable, str(REPO / "bench" / "generate.py"), str(data), "--items", str(items), "--seed", "1"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000_000, help="order items of the generated history")
    parser.add_argument("--work", type=Path, default=Path("/tmp/ecom-backfill"), help="data, logs (GBs)")
    parser.add_argument("--steps", nargs="+", choices=list(TASK_STATES.values()), default=list(TASK_STATES.values()))
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between memory samples")
    parser.add_argument("--limit", choices=["cgroup", "none"], default=None, help="cap each task's memory")
    parser.add_argument("--out", type=Path, help="result file (default bench/results/{date}-backfill-{items}.json)")
    parser.add_argument("--note", default="", help="conditions of the run, recorded in the result")
    args = parser.parse_args()
    writable = os.access(CGROUP_ROOT, os.W_OK)
    limit = (args.limit or ("cgroup" if writable else "none")) == "cgroup"
    data = args.work / f"data-{args.items}"
    run_dir = args.work / f"run-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    run_dir.mkdir(parents=True)
    generate_s = generate(data, args.items)
    memory = task_memory_mib()
    execution_id = f"backfill-{args.items}"
    load_before = os.getloadavg()
    with MotoServer(emulator=True, workdir=REPO, log_dir=run_dir / "agent") as server:
        settings = template.deploy(server.settings(Settings(spark_jars_dir=str(REPO / ".jars"))))
        s3 = aws.client(settings, "s3")
        started = time.perf_counter()
        pinned = []
        for name in ("products", "orders", "order_items"):  # arrival order
            key = settings.input_prefix + f"{name}.csv"
            s3.upload_file(str(data / f"{name}.csv"), settings.bucket, key)
            pinned.append(batches.pin(s3, settings.bucket, key))
        upload_s = time.perf_counter() - started
        manifest = batches.write_manifest(settings, execution_id, [f for f in pinned if f is not None])
        runs = task_runs(settings, {"execution_id": execution_id, "manifest_key": manifest})
        # What the agent gives a task besides its definition's environment: the endpoint and credentials
        # (here the deployer's; this bench measures memory, tests/e2e the roles).
        access = {k: v for k, v in settings.to_env().items() if k.startswith("AWS_")}
        for spec in runs.values():
            spec["environment"] = access | spec["environment"]
        moto = psutil.Process(server.server.process.pid)  # type: ignore[union-attr]
        tasks, moves_s = [], {}
        for step in args.steps:
            spec = runs[step]
            row = run_task(step, spec, memory[spec["container"]], log_dir=run_dir, interval=args.interval, limit=limit)
            tasks.append(row)
            if row["exit_code"] != 0:
                break
            document = s3io.get_json_or_none(s3, settings.bucket, layout.result_key(settings, execution_id))
            result = None if document is None else BatchValidation.from_json(document)
            if step == "validate" and result is not None:
                if result.invalid_files:
                    print(f"  invalid: {[(f.key, f.reason) for f in result.invalid_files]}", flush=True)
                moved = time.perf_counter()
                moves.reject(settings, result.invalid_files)
                moves_s["HandleInvalidFiles"] = round(time.perf_counter() - moved, 1)
            if step == "stage":
                stage_report = s3io.get_json(s3, settings.bucket, f"reports/{execution_id}/stage.json")
                row["report"] = _stage_summary(StageReport.from_json(stage_report))
            if step == "transform" and result is not None:
                key = f"reports/{execution_id}/transform.json"
                report = TransformReport.from_json(s3io.get_json(s3, settings.bucket, key))
                row["report"] = {"mode": report.mode, "seconds_by_phase": report.seconds_by_phase}
                moved = time.perf_counter()
                moves.archive(settings, result.valid_files)
                moves_s["ArchiveValidFiles"] = round(time.perf_counter() - moved, 1)
        moto_rss = round(moto.memory_info().rss / 2**20)
    summary = {
        "started": run_dir.name.removeprefix("run-"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "note": args.note,
        "items": args.items,
        "csv_bytes": {p.name: p.stat().st_size for p in sorted(data.glob("*.csv"))},
        "memory_limit": "cgroup v1 memory.limit_in_bytes = task memory" if limit else "none (measured peak only)",
        "target": f"every task's peak RSS under {TARGET_SHARE:.0%} of its task memory (infra/pipeline.yaml)",
        "generate_s": round(generate_s, 1),
        "upload_s": round(upload_s, 1),
        "tasks": tasks,
        "moves_s": moves_s,
        "moto_server_rss_mib_at_end": moto_rss,
    }
    out = args.out or REPO / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%d}-backfill-{_scale(args.items)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\n{args.items:,} order items in one batch ({sum(summary['csv_bytes'].values()) / 2**20:,.0f} MiB of CSV)")
    print("| task | seconds | peak RSS MiB | task memory MiB | share | under 75 % |\n|---|---:|---:|---:|---:|---|")
    for row in tasks:
        print(
            f"| {row['step']} | {row['seconds']} | {row['peak_rss_mib']:,} | {row['task_memory_mib']:,} "
            f"| {100 * row['peak_share']:.0f} % | {'yes' if row['within_target'] else 'no'} |"
        )
    print(f"moves: {moves_s}; results: {out}")


def _scale(items: int) -> str:
    return f"{items // 1_000_000}m" if items % 1_000_000 == 0 else str(items)


def _stage_summary(report: StageReport) -> dict[str, Any]:
    """What the stage report says about the batch: rows per file and the chunked merges per table."""
    keep = ("chunks", "inserted", "updated", "unchanged", "rows_superseded_in_batch", "seconds", "version")
    return {
        "files": {
            f.key: {k: getattr(f, k) for k in ("rows_read", "rows_staged", "rows_quarantined")} for f in report.files
        },
        "tables": {name: {k: getattr(merge, k) for k in keep} for name, merge in report.tables.items()},
        "quarantined": None if report.quarantine is None else report.quarantine.rows,
    }


if __name__ == "__main__":
    main()
