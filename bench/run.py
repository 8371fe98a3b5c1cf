"""Benchmarks: time and peak memory per stage at chosen scales (``make bench``).

Per scale (order items): generate TheLook-shaped CSVs, validate them, stage them
into an empty local Delta lake, then compute the full KPI aggregates with Spark
and with DuckDB on the same staged files (the yardstick, same process, same
run); then run two incremental batches (stage + Spark transform, DynamoDB on a
local moto server) into the big lake and into an empty lake: the issue's batch,
50k items of new orders over 3 days, and a harder one with 5 % updates of the last
30 days' orders, which first gets its 50k items merged into the lake alone (the
merge figure). Figures are ratios against the baseline of the same run.

The full recompute runs several times in one process: Spark's first run is cold
(class loading, code generation, interpreted bytecode); two more warm the JIT
up; the warm figure of each engine is the median of its last three runs, which
alternate with the other engine's. The first warm run is reported too.

Each incremental batch is replayed: the lake and the transform's state objects
are saved once and restored before each run. After one warm-up run per lake,
three measured runs per lake alternate which lake goes first; the ratio is of
the two medians.

Results: ``bench/results/latest.json`` and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from duckdb_kpis import duckdb_kpis
from generate import generate_base, generate_increment

from pipeline_tasks.contract import DATASETS_BY_NAME, ORDER_ITEMS, ORDERS, PRODUCTS, Dataset, classify
from pipeline_tasks.io import aws, delta
from pipeline_tasks.io import spark as spark_io
from pipeline_tasks.io.s3 import LocalSource
from pipeline_tasks.local.stack import MotoServer, provision
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps import stage, transform
from pipeline_tasks.transforms.staging import Provenance, dedupe_last_wins, with_execution_id
from pipeline_tasks.validation import validate

REPO = Path(__file__).resolve().parents[1]

#: Full-recompute runs after the cold one that only warm the JVM up: its JIT keeps compiling
#: Spark's hot paths over the first few runs (5M items: 41 s, 23, 24, 21, 19 in one process).
SPARK_WARMUP_RUNS = 2
#: DuckDB compiles nothing; one run to warm the page cache.
DUCKDB_WARMUP_RUNS = 1
#: Runs whose median is the warm figure of each engine (and of each lake's incremental batch).
MEASURED_RUNS = 3
#: Incremental batches into each lake before the measured ones: the first compiles the
#: code of the incremental queries, which every later run reuses.
INCREMENTAL_WARMUP_RUNS = 1


def _hwm_kib(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _reset_hwm(pid: int | str = "self") -> None:
    with suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def _jvm_pid(spark: Any) -> int | None:
    try:
        return int(spark.sparkContext._jvm.ProcessHandle.current().pid())
    except Exception:
        return None


class Recorder:
    """Times stages and records the peak RSS of this process and of Spark's JVM."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.jvm: int | None = None

    @contextmanager
    def stage(self, scale: int, name: str) -> Iterator[dict[str, Any]]:
        _reset_hwm()
        if self.jvm:
            _reset_hwm(self.jvm)
        row: dict[str, Any] = {"scale": scale, "stage": name}
        started = time.perf_counter()
        yield row
        row["seconds"] = round(time.perf_counter() - started, 2)
        row["python_peak_mib"] = round(_hwm_kib() / 1024)
        if self.jvm:
            row["jvm_peak_mib"] = round(_hwm_kib(self.jvm) / 1024)
        self.rows.append(row)
        print(
            f"  {name:<42} {row['seconds']:>8.2f} s  py {row['python_peak_mib']:>6} MiB"
            + (f"  jvm {row['jvm_peak_mib']:>6} MiB" if self.jvm else ""),
            flush=True,
        )


def stage_files(settings: Settings, files: list[Path], execution_id: str) -> dict[str, Any]:
    """The StagingTask's work on local files: read, type, dedupe and merge each dataset into the lake."""
    merges = {}
    options = delta.storage_options(settings)
    quarantine = stage.QuarantineWriter(settings.table_uri(delta.QUARANTINE_TABLE), options)
    now = datetime.now(UTC)
    for dataset in (PRODUCTS, ORDERS, ORDER_ITEMS):
        staged = [
            stage.FileToStage(LocalSource(f), Provenance(str(f), None, execution_id, now))
            for f in files
            if classify(f.name) is dataset
        ]
        if staged:
            merges[dataset.name] = stage.stage_dataset(settings, execution_id, dataset, staged, quarantine)[1]
    quarantine.close()
    return merges


def typed_rows(path: Path, dataset: Dataset) -> pa.Table:
    """The staged rows of one local file, as the StagingTask types them (duplicates kept)."""
    origin = Provenance(str(path), None, "bench", datetime.now(UTC))
    funnel = stage.Funnel(str(path), dataset)
    return pa.concat_tables([b.rows for b in stage.read_file_batches(LocalSource(path), dataset, origin, funnel)])


def _save_state(settings: Settings, tag: str) -> tuple[Path, dict[str, bytes]]:
    """A copy of the lake (beside it, named by ``tag``) and the transform's state objects, to replay a batch."""
    lake = Path(settings.lake_root)
    copy = lake.with_name(f"{lake.name}.{tag}")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(lake, copy)
    s3 = aws.client(settings, "s3")
    listing = s3.list_objects_v2(Bucket=settings.bucket, Prefix=settings.state_prefix).get("Contents", [])
    objects = {o["Key"]: s3.get_object(Bucket=settings.bucket, Key=o["Key"])["Body"].read() for o in listing}
    return copy, objects


def _restore_state(settings: Settings, saved: tuple[Path, dict[str, bytes]]) -> None:
    """Put the lake, the state objects and the KPI tables back as ``_save_state`` found them.

    The KPI tables are repaired to the restored published-KPI record (``transform.reconcile``,
    not timed): otherwise the replayed transform's own check would find the last replay's
    items and repair them first, which a real batch does not do.
    """
    copy, objects = saved
    lake = Path(settings.lake_root)
    shutil.rmtree(lake)
    shutil.copytree(copy, lake)
    s3 = aws.client(settings, "s3")
    for listed in s3.list_objects_v2(Bucket=settings.bucket, Prefix=settings.state_prefix).get("Contents", []):
        s3.delete_object(Bucket=settings.bucket, Key=listed["Key"])
    for key, body in objects.items():
        s3.put_object(Bucket=settings.bucket, Key=key, Body=body)
    transform.reconcile(settings)


def aggregates_spark(spark: Any, settings: Settings) -> tuple[list[dict], list[dict]]:
    tables = {d.name: delta.ensure_table(settings.table_uri(d.name), d, {}) for d in (ORDERS, ORDER_ITEMS, PRODUCTS)}
    frames = {n: transform._snapshot(spark, settings, t, DATASETS_BY_NAME[n]) for n, t in tables.items()}
    hash_join = transform.hash_join_fits(settings, tables["orders"])
    money = transform.money_plan(tables["order_items"])
    return transform.compute_aggregates(
        frames["orders"], frames["order_items"], frames["products"], None, hash_join=hash_join, money=money
    )


def aggregates_duckdb(settings: Settings) -> tuple[list[dict], list[dict]]:
    def files(name: str) -> list[str]:
        return delta.open_table(settings.table_uri(name), {}).file_uris()  # type: ignore[union-attr]

    return duckdb_kpis(files("orders"), files("order_items"), files("products"))


def _canonical(rows: list[dict]) -> list[tuple]:
    """Rows comparable across engines: numbers normalised, a missing sum is 0."""

    def value(v: Any) -> str:
        if v is None:
            return "0"
        if isinstance(v, (int, Decimal)):
            return str(Decimal(v).normalize())
        return str(v)

    return sorted(tuple((k, value(v)) for k, v in sorted(r.items())) for r in rows)


def run_scale(scale: int, work: Path, rec: Recorder, spark: Any, server: MotoServer) -> dict[str, Any]:
    print(f"\n== {scale:,} order items", flush=True)
    data = work / f"data-{scale}"
    lake = work / f"lake-{scale}"
    shutil.rmtree(lake, ignore_errors=True)
    with rec.stage(scale, "generate CSV (not part of the pipeline)"):
        base = generate_base(data / "base", scale, seed=1)
        generate_increment(data / "increment-new", base, n_items=50_000, days=3, seed=3, update_fraction=0.0)
        generate_increment(data / "increment", base, n_items=50_000, days=3, seed=2)
    base_files = sorted((data / "base").glob("*.csv"))
    new_order_files = sorted((data / "increment-new").glob("*.csv"))
    increment_files = sorted((data / "increment").glob("*.csv"))
    settings = server.settings(
        Settings(
            lake_root=str(lake),
            bucket=f"bench-{scale}",
            order_kpis_table=f"O{scale}",
            category_kpis_table=f"C{scale}",
            spark_jars_dir=str(REPO / ".jars"),
        )
    )
    provision(settings)

    with rec.stage(scale, "validate (stream + row checks)") as row:
        verdicts = [validate(LocalSource(f)) for f in base_files]
        assert all(v.valid for v in verdicts), [v.reason for v in verdicts if not v.valid]
        row["bytes"] = sum(f.stat().st_size for f in base_files)
    with rec.stage(scale, "stage into empty lake (read+type+merge)"):
        stage_files(settings, base_files, "bench-base")
    with rec.stage(scale, "KPIs full, Spark (cold: first query)") as cold:
        spark_orders, spark_categories = aggregates_spark(spark, settings)
    spark_runs: list[float] = []
    duck_runs: list[float] = []

    def spark_run(run: int) -> None:
        with rec.stage(scale, f"KPIs full, Spark (run {run})") as row:
            aggregates_spark(spark, settings)
        spark_runs.append(row["seconds"])

    def duck_run(run: int) -> tuple[list[dict], list[dict]]:
        with rec.stage(scale, f"KPIs full, DuckDB (yardstick, run {run})") as row:
            result = aggregates_duckdb(settings)
        duck_runs.append(row["seconds"])
        return result

    for run in range(2, 2 + SPARK_WARMUP_RUNS):
        spark_run(run)
    for run in range(1, 1 + DUCKDB_WARMUP_RUNS):
        duck_run(run)
    # Measured runs alternate, so that a drift of the machine's speed weighs on both engines.
    for i in range(MEASURED_RUNS):
        spark_run(2 + SPARK_WARMUP_RUNS + i)
        duck_orders, duck_categories = duck_run(1 + DUCKDB_WARMUP_RUNS + i)
    spark_warm = statistics.median(spark_runs[-MEASURED_RUNS:])
    duck_warm = statistics.median(duck_runs[-MEASURED_RUNS:])
    assert _canonical(spark_orders) == _canonical(duck_orders), "Spark and DuckDB order aggregates differ"
    assert _canonical(spark_categories) == _canonical(duck_categories), "category aggregates differ"

    with rec.stage(scale, "first KPI write to DynamoDB (moto)"):
        transform.run(settings, "bench-full", spark=spark)

    # The incremental batches (stage + transform), into the big lake and into an empty one.
    empty_lake = work / f"lake-empty-{scale}"
    shutil.rmtree(empty_lake, ignore_errors=True)
    empty = settings.with_overrides(
        lake_root=str(empty_lake),
        bucket=f"bench-e{scale}",
        order_kpis_table=f"OE{scale}",
        category_kpis_table=f"CE{scale}",
    )
    provision(empty)
    # Checkpoint the empty lake, so that the batch takes the incremental path here too
    # and the ratio weighs the lake's size, not full against incremental mode.
    transform.run(empty, "bench-empty-checkpoint", spark=spark)
    targets = {"big": settings, "empty": empty}
    base_states = {label: _save_state(target, "base") for label, target in targets.items()}
    # The batch: 50k items of new orders over 3 days.
    new_orders = _replay(rec, scale, spark, "new orders", "new", new_order_files, targets, base_states)

    _restore_state(settings, base_states["big"])
    items_increment = [f for f in increment_files if f.name.startswith("order_items")]
    parts = [typed_rows(f, ORDER_ITEMS) for f in items_increment]
    rows = with_execution_id(dedupe_last_wins(pa.concat_tables(parts), ORDER_ITEMS.key), "bench-merge")
    table = delta.ensure_table(settings.table_uri("order_items"), ORDER_ITEMS, {})
    with rec.stage(scale, f"merge {rows.num_rows:,} items into the lake") as merge_row:
        merge_row |= delta.merge_rows(table, rows, ORDER_ITEMS).__dict__

    # A harder batch: new orders plus 5 % updates of the last 30 days' orders, a fifth of them moved.
    states = {"big": _save_state(settings, "merged"), "empty": base_states["empty"]}
    updates = _replay(rec, scale, spark, "with 5% updates", "updates", increment_files, targets, states)
    return {
        "spark_vs_duckdb": round(spark_warm / duck_warm, 2),
        "spark_first_warm_vs_duckdb": round(spark_runs[0] / duck_warm, 2),
        "spark_cold_vs_duckdb": round(cold["seconds"] / duck_warm, 2),
        "spark_warm_seconds": spark_warm,
        "duckdb_warm_seconds": duck_warm,
        "incremental_new_orders_big_vs_empty": round(new_orders["big"] / new_orders["empty"], 2),
        "incremental_new_orders_big_seconds": new_orders["big"],
        "incremental_new_orders_empty_seconds": new_orders["empty"],
        "incremental_with_updates_big_vs_empty": round(updates["big"] / updates["empty"], 2),
        "incremental_with_updates_big_seconds": updates["big"],
        "incremental_with_updates_empty_seconds": updates["empty"],
        "merge_50k_seconds": merge_row["seconds"],
    }


def _replay(
    rec: Recorder,
    scale: int,
    spark: Any,
    batch: str,
    tag: str,
    files: list[Path],
    targets: dict[str, Settings],
    states: dict[str, tuple[Path, dict[str, bytes]]],
) -> dict[str, float]:
    """Replay one incremental batch into each lake from its saved state; the median seconds per lake."""
    runs: dict[str, list[float]] = {label: [] for label in targets}
    for run in range(INCREMENTAL_WARMUP_RUNS + MEASURED_RUNS):
        measured = run >= INCREMENTAL_WARMUP_RUNS
        # The lake that goes first pays for code the second one reuses: the order alternates.
        for label in ("big", "empty") if run % 2 == 0 else ("empty", "big"):
            target = targets[label]
            _restore_state(target, states[label])
            name = f"incremental batch ({batch}) into {label} lake (run {run + 1}{'' if measured else ', warm-up'})"
            execution_id = f"bench-inc-{tag}-{label}-{run}"
            with rec.stage(scale, name) as row:
                stage_files(target, files, execution_id)
                report = transform.run(target, execution_id, spark=spark)
                row["transform_phases"] = report.seconds_by_phase
                print(f"    transform phases: {report.seconds_by_phase}", flush=True)
                days = report.affected_dates
                row["affected_dates"] = "all" if days is None else len(days)
            if measured:
                runs[label].append(row["seconds"])
    return {label: statistics.median(seconds) for label, seconds in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (a temporary one by default)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ecom-bench-"))
    rec = Recorder()
    summary: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    with MotoServer() as server:
        settings = server.settings(Settings(spark_master="local[*]", spark_jars_dir=str(REPO / ".jars")))
        session_started = time.perf_counter()
        spark = spark_io.session(settings)
        summary["spark_session_seconds"] = round(time.perf_counter() - session_started, 2)
        rec.jvm = _jvm_pid(spark)
        try:
            summary["ratios"] = {str(s): run_scale(s, work, rec, spark, server) for s in args.scales}
        finally:
            spark.stop()
    summary["stages"] = rec.rows
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print("\n| scale | stage | seconds | python peak MiB | JVM peak MiB |\n|---:|---|---:|---:|---:|")
    for row in rec.rows:
        print(
            f"| {row['scale']:,} | {row['stage']} | {row['seconds']} | {row['python_peak_mib']} "
            f"| {row.get('jvm_peak_mib', '')} |"
        )
    print(
        "\n| scale | Spark/DuckDB (warm medians) | Spark first warm run/DuckDB | Spark cold/DuckDB "
        "| incremental big/empty lake: new orders | with 5% updates | 50k merge s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for scale, r in summary["ratios"].items():
        print(
            f"| {int(scale):,} | {r['spark_vs_duckdb']} | {r['spark_first_warm_vs_duckdb']} | "
            f"{r['spark_cold_vs_duckdb']} | {r['incremental_new_orders_big_vs_empty']} | "
            f"{r['incremental_with_updates_big_vs_empty']} | {r['merge_50k_seconds']} |"
        )
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
