"""Reconcile: every item of both KPI tables compared with the published-KPI record, on demand.

This module owns ``reconcile`` (``ecom-pipeline reconcile``) and its report. What a
transform's count check cannot see, such as an item edited in place, this finds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from pipeline_tasks.errors import StepFailed
from pipeline_tasks.io import aws, dynamodb, published
from pipeline_tasks.io.kpi_state import Checkpoint, KpiStore
from pipeline_tasks.io.kpi_tables import category_kpis_spec, order_kpis_spec
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps.transform.checks import REPORTED_CHANGES

Repairs = list[tuple[published.TableCheck, published.RepairPlan]]


@dataclass(frozen=True)
class ReconcileReport:
    """What ``reconcile`` found in each KPI table and did about it.

    Attributes:
        tables: Each table compared item by item with the record (``published.TableCheck``).
        skipped_days: Days left out: a failed transform left them dirty, and the next one
            recomputes and reads them back.
        dry_run: Nothing was written.
    """

    tables: tuple[published.TableCheck, ...]
    skipped_days: tuple[str, ...]
    dry_run: bool

    @property
    def in_sync(self) -> bool:
        """Whether the tables held exactly the record's items before any repair."""
        return all(table.put == 0 and table.deleted == 0 for table in self.tables)


def reconcile(settings: Settings, *, dry_run: bool = False, execution_id: str | None = None) -> ReconcileReport:
    """Compare every item of both KPI tables with the published-KPI record, and repair what differs.

    Both tables are read in full (a consistent Scan each) and compared item by item
    with the record (``published.differences``); missing and changed items are put,
    items the record does not hold are deleted. Days a failed transform left dirty
    are skipped. Nothing is written when the checkpoint moved while the tables were
    read (a transform ran meanwhile), nor with ``dry_run``. The checkpoint is never
    written: a transform records a new table identity itself.

    Args:
        settings: Bucket and table names.
        dry_run: Compare and report only.
        execution_id: Recorded on every item put (``reconcile-{UTC time}`` by default).

    Raises:
        StepFailed: No record the checkpoint vouches for (a full recompute starts one), a KPI
            table does not exist, or a transform moved the checkpoint meanwhile.
    """
    specs = (order_kpis_spec(settings), category_kpis_spec(settings))
    store = KpiStore(aws.client(settings, "s3"), settings, specs)
    checkpoint = store.load()
    record, _ = store.read_record(checkpoint)
    if record is None or checkpoint is None:
        raise StepFailed(
            "no published-KPI record to reconcile against: run a full recompute "
            "(ecom-pipeline notebook transform -p execution_id ID -p full true), which rewrites both tables"
        )
    skip_days = sorted(d.isoformat() for d in checkpoint.dirty_days)
    repairs = _plan_repairs(aws.client(settings, "dynamodb"), specs, checkpoint, record, skip_days)
    writing = not dry_run and any(plan.changes_anything for _, plan in repairs)
    if writing:
        if not store.unchanged(checkpoint):
            raise StepFailed("a transform ran while the tables were read: nothing written; run reconcile again")
        _apply(settings, repairs, execution_id)
    tables = tuple(plan.outcome(checked, applied=writing, limit=REPORTED_CHANGES) for checked, plan in repairs)
    return ReconcileReport(tables, tuple(skip_days), dry_run)


def _plan_repairs(
    client: Any, specs: Sequence[dynamodb.TableSpec], checkpoint: Checkpoint, record: pa.Table, skip_days: list[str]
) -> Repairs:
    """Each table's identity checked against the checkpoint, and its items against the record."""
    states = checkpoint.table_states
    repairs = []
    for spec in specs:
        identity = dynamodb.table_identity(client, spec)
        if identity is None:
            raise StepFailed(f"KPI table {spec.name} does not exist: create it (infra/), then reconcile again")
        state = states.get(spec.name)
        checked = published.TableCheck(
            spec.name,
            identity,
            state is not None and state.identity != identity,
            published.count(record, spec),
            None,
        )
        repairs.append((checked, published.plan_repair(client, spec, record, skip_days=skip_days)))
    return repairs


def _apply(settings: Settings, repairs: Repairs, execution_id: str | None) -> None:
    now = datetime.now(UTC)
    extra = {
        "execution_id": execution_id or f"reconcile-{now.strftime('%Y%m%dT%H%M%SZ')}",
        "updated_at": now.isoformat(timespec="seconds"),
    }
    resource = aws.resource(settings, "dynamodb")
    for _, plan in repairs:
        if plan.changes_anything:
            published.apply_repair(resource, plan, extra)
