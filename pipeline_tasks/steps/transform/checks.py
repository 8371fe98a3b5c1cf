"""The KPI tables a transform writes, and their check against the published-KPI record.

This module owns ``KpiTables`` (the two DynamoDB tables with their clients and the
attributes every written item gets) and the check a transform runs before writing
(``check_tables``): each table's identity and item count against what the checkpoint
recorded, with a repair from the record for a table that fails.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from pipeline_tasks.io import aws, published
from pipeline_tasks.io.dynamodb import TableSpec
from pipeline_tasks.io.kpi_state import Checkpoint
from pipeline_tasks.io.kpi_tables import category_kpis_spec, order_kpis_spec
from pipeline_tasks.settings import Settings

log = logging.getLogger(__name__)

#: Item changes listed per table in the transform report (the counts are always complete).
REPORTED_CHANGES = 2_000
#: The check's action when a table fails it and no record can repair it.
FULL_RECOMPUTE = "full recompute"


@dataclass(frozen=True)
class KpiTables:
    """The KPI tables in DynamoDB, and what every item a run writes records (``extra``)."""

    client: Any
    resource: Any
    orders: TableSpec
    categories: TableSpec
    extra: Mapping[str, Any]

    @classmethod
    def connect(cls, settings: Settings, execution_id: str) -> KpiTables:
        return cls(
            aws.client(settings, "dynamodb"),
            aws.resource(settings, "dynamodb"),
            order_kpis_spec(settings),
            category_kpis_spec(settings),
            {"execution_id": execution_id, "updated_at": datetime.now(UTC).isoformat(timespec="seconds")},
        )

    @property
    def specs(self) -> tuple[TableSpec, TableSpec]:
        return self.orders, self.categories


def start_checks(
    settings: Settings, tables: KpiTables, checkpoint: Checkpoint | None, record: pa.Table | None
) -> tuple[Future[list[published.TableCheck]] | None, list[published.TableCheck]]:
    """Check the tables: beside the run when a record is vouched for, otherwise now.

    With a record, the check can only repair a table from it, never change what the run
    computes: it runs beside Spark's start and the computation, and ends before any write
    (a COUNT scan reads the whole table). Without one, a failed check means a full
    recompute (``needs_full_recompute``), so it comes first.

    Returns:
        The checks still running (None when done), and the checks done (empty when running).
    """
    if record is None:
        return None, check_tables(tables.client, tables.resource, tables.specs, checkpoint, record, tables.extra)
    checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kpi-table-check")
    # A resource of its own: boto3 resources are not shared between threads.
    resource = aws.resource(settings, "dynamodb")
    checking = checker.submit(check_tables, tables.client, resource, tables.specs, checkpoint, record, tables.extra)
    checker.shutdown(wait=False)
    return checking, []


def needs_full_recompute(checks: Sequence[published.TableCheck]) -> bool:
    """Whether a table failed its check with no record to repair it from."""
    return any(check.action == FULL_RECOMPUTE for check in checks)


def check_tables(
    client: Any,
    resource: Any,
    specs: Sequence[TableSpec],
    checkpoint: Checkpoint | None,
    record: pa.Table | None,
    extra: Mapping[str, Any],
) -> list[published.TableCheck]:
    """Check each KPI table against the published-KPI record; repair a table that fails.

    The check is one DescribeTable and one COUNT scan per table (``published.check``):
    the table must be the one the record was written to and hold as many items. A
    table that fails is read back in full and made to hold the record's items, except
    on the dirty days (those are recomputed and read back by this run anyway). Without
    the record, a table that fails is marked ``full recompute``: the run recomputes
    every day. A missing table is reported and left to fail the run's writes.
    Empty when the checkpoint vouches for no record of these tables.
    """
    if checkpoint is None or not checkpoint.vouches_for(specs):
        return []
    states = checkpoint.table_states
    if record is None and set(states) != {spec.name for spec in specs}:
        return []  # a checkpoint from before tables were checked, and no record: nothing to count against
    skip_days = [d.isoformat() for d in checkpoint.dirty_days]
    checks = []
    for spec in specs:
        expected = states[spec.name].items if record is None else published.count(record, spec)
        checked = published.check(client, spec, states.get(spec.name), expected)
        if checked.found_items is None:
            log.warning("%s does not exist: this run cannot repair it, and fails if it writes to it", spec.name)
        elif checked.matches:
            log.info("%s matches the published-KPI record (%d items)", spec.name, checked.found_items)
        elif record is None:
            checked = _without_record(checked)
        else:
            checked = _repair(client, resource, spec, record, checked, skip_days, extra)
        checks.append(checked)
    return checks


def _without_record(checked: published.TableCheck) -> published.TableCheck:
    log.warning(
        "%s does not match the checkpoint (identity changed: %s; %d items expected, %d found) and the "
        "published-KPI record is missing: recomputing every day",
        checked.table,
        checked.identity_changed,
        checked.expected_items,
        checked.found_items,
    )
    return replace(checked, action=FULL_RECOMPUTE)


def _repair(
    client: Any,
    resource: Any,
    spec: TableSpec,
    record: pa.Table,
    checked: published.TableCheck,
    skip_days: Sequence[str],
    extra: Mapping[str, Any],
) -> published.TableCheck:
    """Make a table that failed its check hold the record's items (but on ``skip_days``)."""
    plan = published.plan_repair(client, spec, record, skip_days=skip_days)
    if plan.changes_anything:
        published.apply_repair(resource, plan, extra)
    log.warning(
        "%s failed its check against the published-KPI record (identity changed: %s; %d items "
        "recorded, %d found): %d put, %d deleted from the record, %d items matched",
        spec.name,
        checked.identity_changed,
        checked.expected_items,
        checked.found_items,
        len(plan.puts),
        len(plan.deletes),
        plan.matching,
    )
    return plan.outcome(checked, applied=True, limit=REPORTED_CHANGES)
