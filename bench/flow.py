"""End-to-end time of one batch through the whole local flow, split by state (``make bench-flow``).

A TheLook-shaped lake of ``--scale`` order items is staged and its KPIs computed
directly (not measured: that is the lake the batch lands on). Then an increment of
``--increment`` items (new orders over 3 days plus ~5 % updates of existing ones) is
uploaded to ``input/`` and goes through the flow as in production: S3 events →
SQS → orchestrator (Lambda) → state machine → ECS tasks run as local processes →
DynamoDB. The scheduler's wait is excluded: the orchestrator is invoked right after
the upload. Results: ``bench/results/flow-latest.json`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

from generate import generate_base, generate_increment  # noqa: E402
from run import stage_files  # noqa: E402

from pipeline_tasks import executions  # noqa: E402
from pipeline_tasks.documents import TransformReport  # noqa: E402
from pipeline_tasks.io import aws  # noqa: E402
from pipeline_tasks.io import s3 as s3io  # noqa: E402
from pipeline_tasks.local import template  # noqa: E402
from pipeline_tasks.local.stack import MotoServer  # noqa: E402
from pipeline_tasks.settings import Settings  # noqa: E402
from pipeline_tasks.steps import transform  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=5_000_000, help="order items in the lake")
    parser.add_argument("--increment", type=int, default=50_000, help="order items in the measured batch")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ecom-bench-flow")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "flow-latest.json")
    parser.add_argument(
        "--lake",
        type=Path,
        help="keep the Delta lake in this local folder instead of the emulated S3 (to weigh moto's S3 I/O)",
    )
    args = parser.parse_args()
    os.chdir(REPO)
    data = args.work / f"data-{args.scale}"
    base_dir, increment_dir = data / "base", data / f"increment-{args.increment}"
    if not (base_dir / "order_items.csv").exists() or not increment_dir.exists():
        print(f"generating {args.scale:,} items and an increment of {args.increment:,} …", flush=True)
        base = generate_base(base_dir, args.scale, seed=1)
        generate_increment(increment_dir, base, n_items=args.increment, days=3, seed=2)
    with MotoServer(emulator=True, workdir=REPO, log_dir=args.work / "task-logs") as server:
        lake = None
        if args.lake:
            shutil.rmtree(args.lake, ignore_errors=True)
            lake = str(args.lake.resolve())
        settings = template.deploy(server.settings(Settings(spark_jars_dir=str(REPO / ".jars"), lake_root=lake)))
        started = time.perf_counter()
        print("staging the lake and computing its KPIs (not measured) …", flush=True)
        stage_files(settings, sorted(base_dir.glob("*.csv")), "bench-base")
        transform.run(settings, "bench-base", full=True)
        prepare = time.perf_counter() - started

        s3 = aws.client(settings, "s3")
        started = time.perf_counter()
        for path in sorted(increment_dir.glob("*.csv")):
            s3.upload_file(str(path), settings.bucket, settings.input_prefix + path.name)
        upload = time.perf_counter() - started
        started = time.perf_counter()
        outcome = executions.invoke_orchestrator(settings)
        orchestrate = time.perf_counter() - started
        assert outcome["started"], outcome
        report = executions.follow(settings, outcome["execution_arn"], progress=lambda s: print(s, flush=True))
        execution = time.perf_counter() - started - orchestrate
        transform_report = TransformReport.from_json(
            s3io.get_json(s3, settings.bucket, f"reports/{outcome['execution_id']}/transform.json")
        )
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "scale": args.scale,
        "increment_items": args.increment,
        "lake": "local folder" if args.lake else "emulated S3 (moto)",
        "status": report.status,
        "prepare_lake_s": round(prepare, 1),
        "upload_s": round(upload, 2),
        "orchestrator_s": round(orchestrate, 2),
        "execution_s": round(execution, 1),
        "seconds_by_state": report.seconds_by_state,
        "transform_phases": transform_report.seconds_by_phase,
        "affected_days": len(transform_report.affected_dates or ()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(
        f"\n{args.increment:,} items onto {args.scale:,}: execution {execution:.1f} s "
        f"(+ orchestrator {orchestrate:.1f} s), {report.status}"
    )
    print("| state | seconds |\n|---|---|")
    for name, seconds in report.seconds_by_state.items():
        print(f"| {name} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
