"""A JVM class-data-sharing archive of the classes a transform loads (``make setup``, the image build).

A cold TransformationTask spends seconds loading and verifying Spark's classes,
first when the JVM starts and again at its first queries. JDK 17 can dump the
classes one run loaded (``-XX:ArchiveClassesAtExit``) and map them into later
JVMs (``-XX:SharedArchiveFile``): ``spark.session`` uses the archive when it lies
in the jars folder, which shortens both the session start and the first KPI
computation of a cold task. The JVM checks the archive against its class path and
ignores a stale or foreign one, so an old archive only costs the gain.

Usage: ``python -m pipeline_tasks.local.class_archive`` (the settings from the
environment say where the jars are).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline_tasks.io import spark as spark_io
from pipeline_tasks.settings import Settings

log = logging.getLogger(__name__)

#: How long the JVM may take to write the archive once told to exit.
DUMP_TIMEOUT_SECONDS = 600


def build(settings: Settings) -> Path:
    """Run a small transform in a JVM that dumps its classes, then move the archive into place."""
    target = spark_io.class_archive(settings)
    if target is None:
        raise FileNotFoundError(f"no Spark jars in {settings.spark_jars_dir!r}: run `make setup` first")
    partial = target.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    started = time.perf_counter()
    options = f"-XX:ArchiveClassesAtExit={partial} -Xlog:cds=off -Xlog:cds+dynamic=off"
    session = spark_io.session(
        settings.with_overrides(spark_conf={**settings.spark_conf, "spark.driver.extraJavaOptions": options})
    )
    with tempfile.TemporaryDirectory(prefix="class-archive-") as lake:
        _warm_up(session, Settings(lake_root=lake, spark_jars_dir=settings.spark_jars_dir))
    gateway: Any = session.sparkContext._gateway
    jvm = gateway.proc  # the JVM writes the archive as it exits
    session.stop()
    gateway.shutdown()
    jvm.stdin.close()
    jvm.wait(timeout=DUMP_TIMEOUT_SECONDS)
    if not partial.exists():
        raise RuntimeError(f"the JVM wrote no class archive to {partial}")
    os.replace(partial, target)
    log.info("class archive %s (%d MiB) in %.0f s", target, target.stat().st_size >> 20, time.perf_counter() - started)
    return target


def _warm_up(spark: object, settings: Settings) -> None:
    """The transform's reads, joins and aggregations over a tiny staged lake."""
    import pyarrow as pa

    from pipeline_tasks.contract import ORDER_ITEMS, ORDERS, PRODUCTS
    from pipeline_tasks.io import delta
    from pipeline_tasks.money import MoneyPlan
    from pipeline_tasks.steps import transform
    from pipeline_tasks.transforms.staging import stage_rows, staged_schema

    raw = {
        PRODUCTS: {"id": ["1"], "cost": ["5"], "category": ["Tops"], "retail_price": ["10"], "department": ["Women"]},
        ORDERS: {
            "order_id": ["1"],
            "user_id": ["1"],
            "status": ["Complete"],
            "created_at": ["2024-03-01"],
            "num_of_item": ["1"],
        },
        ORDER_ITEMS: {
            "id": ["1"],
            "order_id": ["1"],
            "product_id": ["1"],
            "status": ["Returned"],
            "created_at": ["2024-03-01"],
            "sale_price": ["9.99"],
        },
    }
    frames = {}
    for dataset, columns in raw.items():
        rows = stage_rows(pa.table({name: columns.get(name, [""]) for name, _ in dataset.columns}), dataset)
        table = delta.ensure_table(settings.table_uri(dataset.name), dataset, {})
        delta.merge_rows(table, rows, dataset)
        frames[dataset.name] = spark_io.read_delta(spark, table, staged_schema(dataset))  # type: ignore[arg-type]
    frames_in_order = (frames[ORDERS.name], frames[ORDER_ITEMS.name], frames[PRODUCTS.name])
    transform.compute_aggregates(*frames_in_order, None, hash_join=True, money=MoneyPlan.PARTS)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(build(Settings.from_env()))
