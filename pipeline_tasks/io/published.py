"""The record of the KPI items the pipeline has published to DynamoDB.

One Parquet object in the bucket's state prefix holds, for each KPI table, the
key and KPI attributes of every item that the last successful transform left
in the table. An incremental transform diffs its new KPIs against this record
instead of reading DynamoDB back (reads cost time and read capacity per item).
The checkpoint (``io.kpi_state``) says whether the record can be
trusted, day by day: before a transform writes to DynamoDB, it lists its days
as *dirty* in the checkpoint; only after every write and the new record has it
cleared them. The days of a run that failed in between are read from DynamoDB
again by the next one.

The record is checked against the tables at the start of every transform
(``check``): each table's identity (a table restored from a backup, or deleted
and created again, is a new table) and its live item count must be what the
checkpoint last recorded. A table that fails the check is read back in full and
repaired from the record (``plan_repair``, then ``apply_repair``); the same over
both tables is what ``ecom-pipeline reconcile`` does on demand, which catches
what a count cannot: an item edited in place.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline_tasks.io import dynamodb
from pipeline_tasks.io.dynamodb import Key, TableSpec, diff_items

#: The key attribute both KPI tables share: the record is read and replaced by day.
DAY = "order_date"
#: The column naming the table a row of the record belongs to.
TABLE = "table"


def schema(specs: Sequence[TableSpec]) -> pa.Schema:
    """``table``, then every key and KPI attribute of ``specs``, all strings (values exactly as written)."""
    names = dict.fromkeys(name for spec in specs for name in spec.diffed)
    return pa.schema([pa.field(TABLE, pa.string(), nullable=False)] + [pa.field(n, pa.string()) for n in names])


def empty(specs: Sequence[TableSpec]) -> pa.Table:
    return schema(specs).empty_table()


def read(s3: Any, bucket: str, key: str, specs: Sequence[TableSpec]) -> pa.Table:
    """The record stored at ``key``, or an error when it is missing or holds other attributes."""
    return load(s3, bucket, key, specs)[0]


def load(s3: Any, bucket: str, key: str, specs: Sequence[TableSpec]) -> tuple[pa.Table, str]:
    """The record stored at ``key`` and the object's ETag (see ``write``)."""
    response = s3.get_object(Bucket=bucket, Key=key)
    record = pq.read_table(io.BytesIO(response["Body"].read()))
    if not record.schema.equals(schema(specs)):
        raise ValueError(f"s3://{bucket}/{key} does not hold the attributes of {[s.name for s in specs]}")
    return record, str(response["ETag"])


def write(s3: Any, bucket: str, key: str, record: pa.Table) -> str:
    """Store the record; returns the object's ETag, by which the checkpoint names the record it vouches for."""
    sink = io.BytesIO()
    pq.write_table(record, sink, compression="zstd")
    return str(s3.put_object(Bucket=bucket, Key=key, Body=sink.getvalue())["ETag"])


def items_on(record: pa.Table, spec: TableSpec, days: Iterable[str]) -> dict[Key, dict[str, Any]]:
    """The recorded items of ``spec``'s table on ``days``, by key, with the attributes a diff reads."""
    rows = record.filter(_of(record, spec, days)).select(list(spec.diffed)).to_pylist()
    return {spec.key_of(row): row for row in rows}


def replaced(
    record: pa.Table,
    published: Mapping[TableSpec, Mapping[Key, Mapping[str, Any]]],
    days: Iterable[str] | None,
) -> pa.Table:
    """The record once every table of ``published`` holds exactly those items on ``days`` (all days when None)."""
    kept = record
    for spec in published:
        if days is None:
            kept = kept.filter(pc.not_equal(kept[TABLE], spec.name))
        else:
            kept = kept.filter(pc.invert(_of(kept, spec, days)))
    target = record.schema
    rows = [
        {TABLE: spec.name, **{name: None if item[name] is None else str(item[name]) for name in spec.diffed}}
        for spec, items in published.items()
        for item in items.values()
    ]
    return pa.concat_tables([kept, pa.Table.from_pylist(rows, schema=target)])


def _of(record: pa.Table, spec: TableSpec, days: Iterable[str]) -> pa.ChunkedArray:
    on_days = pc.is_in(record[DAY], pa.array(sorted(set(days)), pa.string()))
    return pc.and_(pc.equal(record[TABLE], spec.name), pc.fill_null(on_days, False))


def count(record: pa.Table, spec: TableSpec) -> int:
    """How many items the record holds for ``spec``'s table."""
    return pc.sum(pc.equal(record[TABLE], spec.name)).as_py() or 0


def differences(
    spec: TableSpec,
    record: pa.Table,
    found: Iterable[Mapping[str, Any]],
    *,
    skip_days: Iterable[str] = (),
) -> tuple[list[dict[str, Any]], list[Key], int]:
    """What makes a table hold exactly the record's items: items to put, keys to delete, items that match.

    ``found`` are the table's items as read (numbers as ``Decimal``). An item is put
    when it is missing or one of its KPI values differs, and deleted when the record
    does not hold its key. The record holds every value as the contract defines it
    (counts exact; money and rates rounded once to 2 decimals), so a found value
    matches only a number equal to it: 10.1 matches "10.10", 10.104 and the string
    "10.10" do not. Items on ``skip_days`` (days the record does not vouch for) are
    left out on both sides.

    Returns:
        The items to put (key and KPI attributes, numbers as ``Decimal``), the keys to
        delete, and the number of items that already match.
    """
    skipped = set(skip_days)
    days = sorted({day for day in record[DAY].to_pylist() if day is not None} - skipped)
    wanted = {key: _typed(spec, recorded) for key, recorded in items_on(record, spec, days).items()}
    found_by_key = {spec.key_of(item): item for item in found if str(item.get(DAY)) not in skipped}
    puts, deletes, matching = diff_items(spec, wanted, found_by_key, same=_matches)
    return [dict(item) for item in puts], deletes, matching


def _matches(found: Any, recorded: Decimal | None) -> bool:
    if recorded is None:
        return found is None
    return isinstance(found, (Decimal, int)) and not isinstance(found, bool) and Decimal(found) == Decimal(recorded)


def _typed(spec: TableSpec, recorded: Mapping[str, str | None]) -> dict[str, Any]:
    """A recorded item as it is written: key attributes as strings, KPI values as numbers."""
    values = {name: None if recorded[name] is None else Decimal(str(recorded[name])) for name in spec.values}
    return {**{name: recorded[name] for name in spec.key}, **values}


@dataclass(frozen=True)
class TableState:
    """What the checkpoint remembers of a KPI table the record describes.

    Attributes:
        identity: ``dynamodb.table_identity`` when the record was last written; None: no table.
        items: How many items the record held for the table then.
    """

    identity: dict[str, str] | None
    items: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> TableState:
        return cls(identity=document["identity"], items=int(document["items"]))


@dataclass(frozen=True)
class TableCheck:
    """One KPI table compared with the record: cheaply (``check``), then, when that fails, item by item.

    Attributes:
        table: Table name.
        identity: The table's identity now; None when it does not exist.
        identity_changed: The table is not the one the record was written to (restored, recreated).
        expected_items: Items the record holds for the table.
        found_items: Items the table holds (a COUNT scan, or the repair's full read); None when it
            does not exist.
        action: ``none`` (the table matches), ``repaired`` (read back and repaired from the
            record), ``would repair`` (a dry run), ``full recompute`` (no record to repair
            from), ``missing`` (no table to repair).
        put: Items put by the repair (or that a dry run would put).
        deleted: Items deleted by the repair (or that a dry run would delete).
        matching: Items the repair found equal to the record.
        changes: The repair's item changes, as ``dynamodb.describe_changes`` lists them.
    """

    table: str
    identity: dict[str, str] | None
    identity_changed: bool
    expected_items: int
    found_items: int | None
    action: str = "none"
    put: int = 0
    deleted: int = 0
    matching: int | None = None
    changes: tuple[dict[str, str], ...] = ()

    @property
    def matches(self) -> bool:
        """Whether the cheap check passed: same table, as many items as the record."""
        return not self.identity_changed and self.found_items == self.expected_items

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["changes"] = list(self.changes)
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> TableCheck:
        return cls(**{**document, "changes": tuple(document.get("changes", ()))})


def check(client: Any, spec: TableSpec, state: TableState | None, expected_items: int) -> TableCheck:
    """One DescribeTable and one COUNT scan: is the table the one recorded, holding ``expected_items``?

    ``state`` None (a checkpoint written before tables were checked): only the count is compared.
    """
    identity = dynamodb.table_identity(client, spec)
    found = None if identity is None else dynamodb.count_items(client, spec)
    changed = identity is None or (state is not None and state.identity != identity)
    return TableCheck(
        spec.name, identity, changed, expected_items, found, action="none" if found is not None else "missing"
    )


@dataclass(frozen=True)
class RepairPlan:
    """What makes one table hold the record's items again, from a full read of the table.

    Attributes:
        spec: The table.
        found: Every item the table holds, by key (key and KPI attributes).
        puts: Items to put (``differences``).
        deletes: Keys to delete.
        matching: Items already equal to the record.
    """

    spec: TableSpec
    found: Mapping[Key, Mapping[str, Any]]
    puts: list[dict[str, Any]]
    deletes: list[Key]
    matching: int

    @property
    def changes_anything(self) -> bool:
        return bool(self.puts or self.deletes)

    def outcome(self, checked: TableCheck, *, applied: bool, limit: int = 2_000) -> TableCheck:
        """``checked`` completed with this plan: what was (``applied``) or would be repaired."""
        action = "none" if not self.changes_anything else ("repaired" if applied else "would repair")
        return replace(
            checked,
            found_items=len(self.found),
            action=action,
            put=len(self.puts),
            deleted=len(self.deletes),
            matching=self.matching,
            changes=tuple(dynamodb.describe_changes(self.spec, self.puts, self.deletes, self.found, limit=limit)),
        )


def plan_repair(client: Any, spec: TableSpec, record: pa.Table, *, skip_days: Iterable[str]) -> RepairPlan:
    """Read the whole table (a consistent Scan of the key and KPI attributes) and diff it with the record."""
    found = {spec.key_of(item): item for item in dynamodb.scan_items(client, spec, spec.diffed)}
    puts, deletes, matching = differences(spec, record, found.values(), skip_days=skip_days)
    return RepairPlan(spec, found, puts, deletes, matching)


def apply_repair(resource: Any, plan: RepairPlan, extra: Mapping[str, Any]) -> None:
    """Write a plan's puts (with ``extra``: ``execution_id``, ``updated_at``) and deletes."""
    dynamodb.write_diff(resource, plan.spec, plan.puts, plan.deletes, extra)
