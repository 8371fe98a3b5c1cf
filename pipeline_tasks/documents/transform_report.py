"""The transform report ``reports/{execution_id}/transform.json`` (``steps.transform``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from pipeline_tasks.documents.base import Document


@dataclass(frozen=True)
class KpiTableWrites(Document):
    """What a transform wrote to one KPI table.

    Attributes:
        key: The table's key attributes.
        values: Its KPI attributes.
        put: Items put (new or changed).
        new: Items put that the table did not hold.
        deleted: Items deleted.
        unchanged: Items left as they were.
        changes: The first item changes (``io.dynamodb.describe_changes``): the counts
            are complete, the list may not be.
    """

    put: int
    deleted: int
    unchanged: int
    new: int = 0
    key: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    changes: tuple[dict[str, str], ...] = ()

    @property
    def changed(self) -> int:
        """Items put that the table held with other values."""
        return self.put - self.new

    def to_json(self) -> dict[str, Any]:
        return {
            "key": list(self.key),
            "values": list(self.values),
            "put": self.put,
            "new": self.new,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "changes": [dict(change) for change in self.changes],
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        return cls(
            put=int(document["put"]),
            deleted=int(document["deleted"]),
            unchanged=int(document["unchanged"]),
            new=int(document.get("new", 0)),
            key=tuple(document.get("key") or ()),
            values=tuple(document.get("values") or ()),
            changes=tuple(dict(change) for change in document.get("changes") or ()),
        )


@dataclass(frozen=True)
class TransformReport(Document):
    """The transform report: ``reports/{execution_id}/transform.json``.

    Attributes:
        execution_id: The execution that ran the transform.
        mode: ``full`` or ``incremental``.
        versions: The staged tables' Delta versions the KPIs are computed from.
        previous_versions: The checkpoint's versions before the run (None: a full run).
        affected_dates: The days recomputed (ISO dates); None when every day was.
        spark_requested: Whether a Spark session was asked for.
        money_sums: How Spark summed money (``int64 parts`` or ``decimal``).
        read_back_days: Days whose items were read back from DynamoDB, or ``all`` (a scan).
        table_checks: Each KPI table's check against the published record
            (``io.published.TableCheck.to_json``), kept as JSON: this module imports no
            data library.
        blocked_days: Days whose KPIs could not be computed, with the error.
        tables: What was written, by KPI table name.
        order_kpis: The OrderKPIs items of the recomputed days, values as JSON.
        plan: What the run decided before computing, as JSON
            (``steps.transform.plan.TransformPlan.to_json``); None, and not written, in
            a report of a version before it.
        seconds: How long the transform took.
        seconds_by_phase: How long each phase took.
    """

    execution_id: str = ""
    mode: str = ""
    versions: dict[str, int] = field(default_factory=dict)
    previous_versions: dict[str, int] | None = None
    affected_dates: tuple[str, ...] | None = None
    spark_requested: bool = False
    money_sums: str = ""
    read_back_days: tuple[str, ...] | str = ()
    table_checks: tuple[dict[str, Any], ...] = ()
    blocked_days: dict[str, str] = field(default_factory=dict)
    tables: dict[str, KpiTableWrites] = field(default_factory=dict)
    order_kpis: tuple[dict[str, Any], ...] = ()
    plan: dict[str, Any] | None = None
    seconds: float = 0.0
    seconds_by_phase: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        days = self.read_back_days
        plan = {} if self.plan is None else {"plan": dict(self.plan)}
        return {
            "execution_id": self.execution_id,
            "mode": self.mode,
            "versions": dict(self.versions),
            "previous_versions": None if self.previous_versions is None else dict(self.previous_versions),
            "affected_dates": None if self.affected_dates is None else list(self.affected_dates),
            "spark_requested": self.spark_requested,
            "money_sums": self.money_sums,
            "read_back_days": days if isinstance(days, str) else list(days),
            "table_checks": [dict(check) for check in self.table_checks],
            "blocked_days": dict(self.blocked_days),
            "tables": {name: writes.to_json() for name, writes in self.tables.items()},
            "order_kpis": [dict(item) for item in self.order_kpis],
            **plan,
            "seconds": self.seconds,
            "seconds_by_phase": dict(self.seconds_by_phase),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        dates, days = document.get("affected_dates"), document.get("read_back_days")
        previous = document.get("previous_versions")
        return cls(
            execution_id=str(document.get("execution_id") or ""),
            mode=str(document.get("mode") or ""),
            versions=dict(document.get("versions") or {}),
            previous_versions=None if previous is None else dict(previous),
            affected_dates=None if dates is None else tuple(dates),
            spark_requested=bool(document.get("spark_requested", False)),
            money_sums=str(document.get("money_sums") or ""),
            read_back_days=days if isinstance(days, str) else tuple(days or ()),
            table_checks=tuple(dict(check) for check in document.get("table_checks") or ()),
            blocked_days=dict(document.get("blocked_days") or {}),
            tables={name: KpiTableWrites.from_json(t) for name, t in (document.get("tables") or {}).items()},
            order_kpis=tuple(dict(item) for item in document.get("order_kpis") or ()),
            plan=None if document.get("plan") is None else dict(document["plan"]),
            seconds=float(document.get("seconds") or 0.0),
            seconds_by_phase=dict(document.get("seconds_by_phase") or {}),
        )
