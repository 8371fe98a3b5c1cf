"""What a Delta change feed says changed (pure Arrow).

Change feed rows are inserts, update pre-images (the row before) and
post-images (the row after); the pre-image of a moved order carries its old
``created_at``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def utc_day(created_at: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """The UTC calendar day (``date32``) of each timestamp; null stays null."""
    return pc.cast(pc.cast(created_at, pa.timestamp("us", tz="UTC")), pa.date32())


def utc_days(created_at: pa.ChunkedArray | pa.Array) -> set[date]:
    """The distinct UTC calendar days of non-null timestamps."""
    created = created_at.drop_null()
    if len(created) == 0:
        return set()
    return set(pc.unique(utc_day(created)).to_pylist())


def changed_days(order_changes: pa.Table) -> list[date]:
    """Every UTC day an order in the feed was created on, before or after the change."""
    if order_changes.num_rows == 0:
        return []
    return sorted(utc_days(order_changes.column("created_at")))


def changed_keys(changes: pa.Table, column: str) -> list[Any]:
    """Distinct non-null values of ``column`` in the feed, before or after the change."""
    if changes.num_rows == 0:
        return []
    values = changes.column(column)
    if values.type == pa.string_view():  # delta-rs change feeds return strings as views
        values = values.cast(pa.string())
    return sorted(pc.unique(values.drop_null()).to_pylist())
