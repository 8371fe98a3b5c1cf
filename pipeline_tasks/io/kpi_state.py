"""The transform's state in the bucket: its checkpoint, the published-KPI record, the dirty days.

This module owns the checkpoint document (``layout.checkpoint_key``): the Delta
versions the KPIs are up to date with and, under ``published``, what it says of the
published-KPI record (``layout.record_key``, ``io.published``): the tables it is for,
the ETag of the record it vouches for, the days a failed run may have written
without recording them (dirty days), and each table's stored state (identity and
item count). A transform and ``reconcile`` ask a ``KpiStore`` for these; neither
builds a key nor reads the checkpoint's JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa

from pipeline_tasks.io import published
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.io.dynamodb import TableSpec
from pipeline_tasks.layout import checkpoint_key, record_key
from pipeline_tasks.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint as stored: ``document`` is its JSON, read through the properties below."""

    document: Mapping[str, Any]

    @property
    def versions(self) -> dict[str, int]:
        """The Delta version of each staged table the KPIs are up to date with."""
        return dict(self.document["versions"])

    @property
    def dirty_days(self) -> set[date]:
        """The days a failed run may have written without recording them (see ``io.published``)."""
        state = self.document.get("published") or {}
        return {date.fromisoformat(day) for day in state.get("dirty_days", [])}

    def vouches_for(self, specs: Sequence[TableSpec]) -> bool:
        """Whether the checkpoint speaks for a published-KPI record of exactly these tables."""
        state = self.document.get("published")
        return state is not None and state["tables"] == [spec.name for spec in specs]

    @property
    def record_etag(self) -> str | None:
        """The ETag of the record the checkpoint vouches for (None: any, from before ETags were kept)."""
        return (self.document.get("published") or {}).get("record_etag")

    @property
    def table_states(self) -> dict[str, published.TableState]:
        """Each KPI table's identity and item count as the last run left them."""
        stored = (self.document.get("published") or {}).get("table_states", {})
        return {name: published.TableState.from_json(doc) for name, doc in stored.items()}


@dataclass(frozen=True)
class PublishedState:
    """What a new checkpoint says of the published-KPI record (its ``published`` entry)."""

    tables: tuple[str, ...]
    #: Blocked days: recomputed by the next run and read back from the tables.
    dirty_days: tuple[str, ...]
    record_etag: str | None
    table_states: Mapping[str, published.TableState]

    def to_json(self) -> dict[str, Any]:
        return {
            "tables": list(self.tables),
            "dirty_days": list(self.dirty_days),
            "record_etag": self.record_etag,
            "table_states": {name: state.to_json() for name, state in self.table_states.items()},
        }


class KpiStore:
    """The checkpoint and the published-KPI record of one environment's KPI tables (``specs``)."""

    def __init__(self, s3: Any, settings: Settings, specs: Sequence[TableSpec]) -> None:
        self.s3 = s3
        self.bucket = settings.bucket
        self.specs = tuple(specs)
        self._checkpoint_key = checkpoint_key(settings)
        self._record_key = record_key(settings)

    def load(self) -> Checkpoint | None:
        """The stored checkpoint (None before the first successful transform)."""
        document = s3io.get_json_or_none(self.s3, self.bucket, self._checkpoint_key)
        return None if document is None else Checkpoint(document)

    def save(self, versions: Mapping[str, int], execution_id: str, state: PublishedState | None) -> None:
        """Write the checkpoint: the versions now published, and the record it vouches for (if any)."""
        document: dict[str, Any] = {"versions": dict(versions), "execution_id": execution_id}
        if state is not None:
            document["published"] = state.to_json()
        s3io.put_json(self.s3, self.bucket, self._checkpoint_key, document)

    def unchanged(self, checkpoint: Checkpoint) -> bool:
        """Whether the stored checkpoint is still ``checkpoint`` (no transform ran since it was read)."""
        stored = self.load()
        return stored is not None and stored.document == checkpoint.document

    def mark_dirty(self, days: Iterable[str] | None) -> None:
        """Say in the stored checkpoint, before any write, which days the record may no longer match.

        A full run's writes (``days`` None) can touch any day: the checkpoint then drops the record.
        """
        stored = self.load()
        if stored is None or "published" not in stored.document:
            return
        document = dict(stored.document)
        if days is None:
            del document["published"]
        else:
            dirty = {d.isoformat() for d in stored.dirty_days} | set(days)
            document["published"] = {**document["published"], "dirty_days": sorted(dirty)}
        s3io.put_json(self.s3, self.bucket, self._checkpoint_key, document)

    def read_record(self, checkpoint: Checkpoint | None) -> tuple[pa.Table | None, str | None]:
        """The published-KPI record and its ETag, when the checkpoint vouches for it and it is for these tables.

        The checkpoint names the record it vouches for by its ETag: another object at the key
        (an older copy put back, a record of another environment) is not trusted, since
        repairing the tables from it would write stale KPIs. Only a run that failed after
        writing the record, before the checkpoint, leaves a newer record, and that one differs
        from the one vouched for only on the run's dirty days.
        """
        if checkpoint is None or not checkpoint.vouches_for(self.specs):
            return None, None
        try:
            record, etag = published.load(self.s3, self.bucket, self._record_key, self.specs)
        except self.s3.exceptions.NoSuchKey:
            log.warning(
                "no published-KPI record at %s: reading DynamoDB; a full run starts a new one", self._record_key
            )
            return None, None
        vouched = checkpoint.record_etag
        if vouched is not None and etag != vouched and not checkpoint.dirty_days:
            log.warning(
                "the published-KPI record at %s is not the one the checkpoint vouches for (ETag %s, not %s): "
                "reading DynamoDB; a full run starts a new one",
                self._record_key,
                etag,
                vouched,
            )
            return None, None
        return record, etag

    def write_record(self, record: pa.Table) -> str:
        """Write the published-KPI record; returns its ETag (for the next checkpoint to vouch for)."""
        return published.write(self.s3, self.bucket, self._record_key, record)
