"""TransformationTask: clean the staged snapshot, compute KPIs, write DynamoDB.

``run`` is plan → compute → publish. The plan (``plan``) says what to recompute:
incrementally, only the ``order_date``s the staged changes can affect (see
``transforms.incremental``), found by delta-rs from the Delta change feed since the
versions the checkpoint records (while the JVM starts), with the data files that
hold their orders and items, which are all Spark reads. Spark computes those days'
KPIs, isolating a day that fails (``compute``). For those days the tables are then
made to hold exactly the contract's KPIs, judged against the record of what was
published (``publish``). Each run first checks that record against the tables
(identity and item count) and repairs a table that fails (``checks``);
``reconcile`` compares every item on demand (``reconciliation``). The checkpoint,
the record and the dirty days are ``io.kpi_state``'s.

This package's own module holds ``run`` and re-exports the names used elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from pyspark.sql import SparkSession

from pipeline_tasks.documents import TransformReport
from pipeline_tasks.io import aws
from pipeline_tasks.io import spark as spark_io
from pipeline_tasks.io.kpi_state import KpiStore
from pipeline_tasks.io.kpi_tables import category_kpis_spec, order_kpis_spec
from pipeline_tasks.money import MoneyPlan, money_parts_fit, money_plan
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps.transform.checks import REPORTED_CHANGES, KpiTables, needs_full_recompute, start_checks
from pipeline_tasks.steps.transform.compute import (
    MAX_ISOLATION_ATTEMPTS,
    Aggregates,
    Computed,
    _snapshot,
    compute_aggregates,
    compute_by_halves,
    compute_kpis,
    order_days,
)
from pipeline_tasks.steps.transform.phases import Phases
from pipeline_tasks.steps.transform.plan import (
    HASH_JOIN_ORDERS_PER_PARTITION,
    LITTLE_WORK_SHARE,
    Lake,
    TransformPlan,
    hash_join_fits,
    make_plan,
)
from pipeline_tasks.steps.transform.publish import SCAN_THRESHOLD, Publication, publish_kpis
from pipeline_tasks.steps.transform.reconciliation import ReconcileReport, reconcile

__all__ = [
    "HASH_JOIN_ORDERS_PER_PARTITION",
    "LITTLE_WORK_SHARE",
    "MAX_ISOLATION_ATTEMPTS",
    "REPORTED_CHANGES",
    "SCAN_THRESHOLD",
    "Aggregates",
    "MoneyPlan",
    "ReconcileReport",
    "TransformPlan",
    "_snapshot",
    "category_kpis_spec",
    "compute_aggregates",
    "compute_by_halves",
    "hash_join_fits",
    "money_parts_fit",
    "money_plan",
    "order_days",
    "order_kpis_spec",
    "reconcile",
    "run",
]

log = logging.getLogger(__name__)

SparkStarter = Callable[[bool], Callable[[], SparkSession]]


def run(
    settings: Settings,
    execution_id: str,
    *,
    spark: SparkSession | None = None,
    full: bool = False,
) -> TransformReport:
    """Bring the KPI tables up to date with the staged snapshot.

    Args:
        settings: Lake, bucket and table names.
        execution_id: Recorded on every item written.
        spark: A session to reuse (otherwise one is started from Settings, and stopped at the end).
        full: Recompute every day, ignoring the checkpoint.

    Returns:
        The transform report (its ``to_json()`` written to ``reports/{execution_id}/transform.json``).
    """
    if spark is not None:
        session = spark
        return _run(settings, execution_id, lambda short_lived: lambda: session, full=full)
    # The JVM starts while delta-rs finds what changed.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="spark-start") as pool:
        starting: list[Future[SparkSession]] = []

        def start(short_lived: bool) -> Callable[[], SparkSession]:
            starting.append(pool.submit(spark_io.session, settings, short_lived=short_lived))
            return starting[0].result

        try:
            return _run(settings, execution_id, start, full=full)
        finally:
            for future in starting:
                if future.exception() is None:
                    future.result().stop()


def _run(settings: Settings, execution_id: str, start_spark: SparkStarter, *, full: bool) -> TransformReport:
    """Plan, compute, publish; ``start_spark(short_lived)`` starts a session and returns how to wait for it.

    Spark starts only once the plan says there is work, short-lived when the work is
    incremental and small (``plan.TransformPlan.little_work``).
    """
    phases = Phases()
    lake = Lake.open(settings)
    tables = KpiTables.connect(settings, execution_id)
    store = KpiStore(aws.client(settings, "s3"), settings, tables.specs)
    checkpoint = None if full else store.load()
    phases.lap("open tables")

    log.info("transform: checking the KPI tables against the published-KPI record")
    record, record_etag = store.read_record(checkpoint)
    checking, checks = start_checks(settings, tables, checkpoint, record)
    if needs_full_recompute(checks):
        checkpoint = None
    phases.lap("check KPI tables")

    waiting: list[Callable[[], SparkSession]] = []
    plan = make_plan(lake, settings, checkpoint, on_spark=lambda short_lived: waiting.append(start_spark(short_lived)))
    phases.lap("find affected days")

    computed = Computed()
    if plan.computes:
        log.info("transform: waiting for Spark")
        spark = waiting[0]()
        phases.lap("wait for Spark")
        log.info("transform: computing KPIs for %s", "every day" if plan.dates is None else f"{len(plan.dates)} day(s)")
        computed = compute_kpis(plan, spark, lake, settings)
    phases.lap("compute KPIs")
    if checking is not None:
        checks = checking.result()
        phases.lap("check KPI tables (beside Spark)")

    log.info("transform: publishing KPIs to DynamoDB")
    publication = Publication(settings, execution_id, plan, computed, tables, store, record, record_etag, checks)
    return publish_kpis(publication, phases)
