"""Publishing a transform's KPIs: diff, mark dirty, write DynamoDB, record, checkpoint, report.

This module owns what happens once the KPIs are computed. For the plan's days the
tables are made to hold exactly the contract's KPIs (docs/contract.md §6): changed
items are put, stale ones deleted, unchanged ones left alone, judged against the
published-KPI record (``io.published``), not by reading DynamoDB back, except on
dirty days. The days about to change are marked dirty first; the record and the
checkpoint (``io.kpi_state``) move only after every write succeeded, so a failed
run is repeated in full by the next one. Last, the report.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline_tasks.contract import UNKNOWN
from pipeline_tasks.documents import KpiTableWrites, TransformReport
from pipeline_tasks.io import dynamodb, published
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.io.dynamodb import Key, TableSpec
from pipeline_tasks.io.kpi_state import KpiStore, PublishedState
from pipeline_tasks.layout import report_key
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps.transform.checks import REPORTED_CHANGES, KpiTables
from pipeline_tasks.steps.transform.compute import Computed
from pipeline_tasks.steps.transform.phases import Phases
from pipeline_tasks.steps.transform.plan import TransformPlan
from pipeline_tasks.transforms.kpis import category_kpi_items, order_kpi_items

log = logging.getLogger(__name__)

#: Above this many keys to look up, one consistent Scan beats BatchGetItem.
SCAN_THRESHOLD = 20_000

Items = dict[TableSpec, dict[Key, dict[str, Any]]]


@dataclass(frozen=True)
class Publication:
    """Everything ``publish_kpis`` needs: the plan, its KPIs, and the state the run started from."""

    settings: Settings
    execution_id: str
    plan: TransformPlan
    computed: Computed
    tables: KpiTables
    store: KpiStore
    #: The published-KPI record the checkpoint vouched for (None: none), and its ETag.
    record: pa.Table | None
    record_etag: str | None
    checks: Sequence[published.TableCheck]


def publish_kpis(run: Publication, phases: Phases) -> TransformReport:
    """Write the computed KPIs, the record and the checkpoint; write and return the report."""
    desired = _desired(run)
    existing, read_back, days = _existing(run, desired[run.tables.categories])
    phases.lap("read existing KPIs")
    diffs = {spec: dynamodb.diff_items(spec, desired[spec], existing[spec]) for spec in run.tables.specs}
    changing = any(puts or deletes for puts, deletes, _ in diffs.values())
    if changing:
        run.store.mark_dirty(days)
    written = {spec.name: _write(run.tables, spec, diffs[spec], existing[spec]) for spec in run.tables.specs}
    phases.lap("write DynamoDB")
    state = None
    if days is None or run.record is not None:
        state = _record(run, desired, days, changing)
    run.store.save(run.plan.versions, run.execution_id, state)
    report = _report(run, days, read_back, written, desired[run.tables.orders], phases)
    key = report_key(run.settings, run.execution_id, "transform")
    s3io.put_json(run.store.s3, run.store.bucket, key, report.to_json())
    return report


def _desired(run: Publication) -> Items:
    """The KPI items of the computed days, by table."""
    orders: dict[Key, dict[str, Any]] = {(day,): item for day, item in order_kpi_items(run.computed.order_rows).items()}
    return {run.tables.orders: orders, run.tables.categories: category_kpi_items(run.computed.category_rows)}


def _existing(run: Publication, categories: Mapping[Key, Any]) -> tuple[Items, list[str] | str, list[str] | None]:
    """What the tables hold on the plan's days, the days read back from DynamoDB, and the days published.

    Days are read back from DynamoDB when dirty, or when no record is vouched for ("all":
    a scan, for a full run); the others come from the record. A blocked day keeps what the
    tables hold: it is left out of both the items and the days published.
    """
    tables, plan = run.tables, run.plan
    days = None if plan.dates is None else [d.isoformat() for d in plan.dates]
    read_back: list[str] | str
    if days is None:
        existing = {s: {s.key_of(i): i for i in dynamodb.scan_items(tables.client, s, s.diffed)} for s in tables.specs}
        read_back = "all"
    else:
        dirty = {d.isoformat() for d in plan.dirty_days}
        read_back = sorted(dirty) if run.record is not None else days
        names = (set(plan.categories) | {UNKNOWN} | {c for c, _ in categories}) if days else set()
        existing = _read_dynamodb(tables, read_back, names)
        if run.record is not None:
            recorded = sorted(set(days) - dirty)
            for spec in tables.specs:
                existing[spec] |= published.items_on(run.record, spec, recorded)
    if run.computed.blocked:
        held = {day.isoformat() for day in run.computed.blocked}
        existing = {
            spec: {k: i for k, i in items.items() if i.get("order_date") not in held}
            for spec, items in existing.items()
        }
        days = None if days is None else [day for day in days if day not in held]
    return existing, read_back, days


def _read_dynamodb(tables: KpiTables, days: list[str], names: set[str]) -> Items:
    """The items of both tables on ``days``; ``names``: every category those days may hold."""
    order_spec, category_spec = tables.specs
    category_keys = [(c, d) for c in sorted(names) for d in days]
    existing_orders = dynamodb.get_items(tables.client, order_spec, [(d,) for d in days], order_spec.diffed)
    if len(category_keys) > SCAN_THRESHOLD:
        wanted = set(days)
        existing_categories = {
            category_spec.key_of(i): i
            for i in dynamodb.scan_items(tables.client, category_spec, category_spec.diffed)
            if i["order_date"] in wanted
        }
    else:
        existing_categories = dynamodb.get_items(tables.client, category_spec, category_keys, category_spec.diffed)
    return {order_spec: existing_orders, category_spec: existing_categories}


def _write(
    tables: KpiTables,
    spec: TableSpec,
    diff: tuple[list[Mapping[str, Any]], list[Key], int],
    existing: Mapping[Key, Mapping[str, Any]],
) -> KpiTableWrites:
    """Write one table's diff; what the report says of it."""
    puts, deletes, unchanged_items = diff
    dynamodb.write_diff(tables.resource, spec, puts, deletes, tables.extra)
    log.info("%s: %d put, %d deleted, %d unchanged", spec.name, len(puts), len(deletes), unchanged_items)
    return KpiTableWrites(
        put=len(puts),
        deleted=len(deletes),
        unchanged=unchanged_items,
        new=sum(1 for item in puts if spec.key_of(item) not in existing),
        key=tuple(spec.key),
        values=tuple(spec.values),
        changes=tuple(dynamodb.describe_changes(spec, puts, deletes, existing, limit=REPORTED_CHANGES)),
    )


def _record(run: Publication, desired: Items, days: list[str] | None, changing: bool) -> PublishedState:
    """Write the new published-KPI record when it changed; what the checkpoint will say of it."""
    specs = run.tables.specs
    final, etag = run.record, run.record_etag
    if final is None or days is None or changing or run.plan.dirty_days:
        final = published.replaced(published.empty(specs) if run.record is None else run.record, desired, days)
        etag = run.store.write_record(final)
    identities = {check.table: check.identity for check in run.checks}
    states = {
        spec.name: published.TableState(
            identities[spec.name] if spec.name in identities else dynamodb.table_identity(run.tables.client, spec),
            published.count(final, spec),
        )
        for spec in specs
    }
    # Blocked days are recomputed by the next run and read back from the tables.
    blocked = tuple(sorted(day.isoformat() for day in run.computed.blocked))
    return PublishedState(tuple(spec.name for spec in specs), blocked, etag, states)


def _report(
    run: Publication,
    days: list[str] | None,
    read_back: list[str] | str,
    written: Mapping[str, KpiTableWrites],
    desired_orders: Mapping[Key, Mapping[str, Any]],
    phases: Phases,
) -> TransformReport:
    plan = run.plan
    return TransformReport(
        execution_id=run.execution_id,
        mode=plan.mode,
        versions=dict(plan.versions),
        previous_versions=None if plan.previous_versions is None else dict(plan.previous_versions),
        affected_dates=None if days is None else tuple(days),
        spark_requested=plan.needs_spark,  # a session handed over, or one this step started
        # How Spark sums sale_price: as its exact int64 parts, or as decimal(38, 18) (see money.money_plan).
        money_sums=plan.money.value,
        # Days whose items were read back from DynamoDB ("all": a scan); the others came from the record.
        read_back_days=read_back if isinstance(read_back, str) else tuple(read_back),
        # Each KPI table checked against the record before the run (identity, item count), and
        # repaired from it when the check failed; empty when no record was vouched for.
        table_checks=tuple(check.to_json() for check in run.checks),
        # Days whose KPIs could not be computed, with the error: left as the tables hold them,
        # retried by every later run (empty when every day computed).
        blocked_days={day.isoformat(): reason for day, reason in sorted(run.computed.blocked.items())},
        tables=dict(written),
        order_kpis=tuple(_jsonable(i) for i in desired_orders.values()),
        # What the run decided before computing (``plan.TransformPlan``).
        plan=plan.to_json(),
        seconds=phases.total(),
        seconds_by_phase=dict(phases.seconds),
    )


def _jsonable(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if not isinstance(v, (int, str)) else v) for k, v in item.items()}
