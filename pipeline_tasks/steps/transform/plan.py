"""The transform's plan: what a run recomputes and how, decided from the Delta log and the checkpoint.

This module owns the decisions taken before Spark computes anything: full or
incremental, the days the changes since the checkpoint can affect (with the dirty
days a failed run left), the data files holding those days' orders and items, the
KPI categories those days may hold, whether the work is little (a short-lived Spark
session), the money plan (``money.MoneyPlan``) and the join strategy. The result,
``TransformPlan``, is plain data: printable (``describe``) and recorded in the
report (``to_json``). delta-rs answers every question here; Spark is not needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable

from pipeline_tasks import key_lookup
from pipeline_tasks.contract import DATASETS, ORDER_ITEMS, ORDERS, PRODUCTS
from pipeline_tasks.io import delta, delta_scan
from pipeline_tasks.io.kpi_state import Checkpoint
from pipeline_tasks.money import MoneyPlan, money_plan
from pipeline_tasks.settings import Settings
from pipeline_tasks.transforms import changes
from pipeline_tasks.transforms.incremental import (
    PRODUCT_CATEGORY_COLUMNS,
    months_of,
    product_categories,
    recategorised_products,
)

log = logging.getLogger(__name__)

#: Share of the orders and items rows the commits since the checkpoint may have written for an
#: incremental run to count as little work (a short-lived Spark session, see ``_little_work``).
LITTLE_WORK_SHARE = 0.1
#: Orders per shuffle partition up to which the fact join hashes the orders (see ``hash_join_fits``).
HASH_JOIN_ORDERS_PER_PARTITION = 1_000_000


@dataclass(frozen=True)
class Lake:
    """The staged Delta tables, by dataset name, at the versions this run reads."""

    tables: Mapping[str, DeltaTable]
    options: Mapping[str, str]

    @classmethod
    def open(cls, settings: Settings) -> Lake:
        options = delta.storage_options(settings)
        return cls({d.name: delta.ensure_table(settings.table_uri(d.name), d, options) for d in DATASETS}, options)

    def versions(self) -> dict[str, int]:
        return {name: table.version() for name, table in self.tables.items()}


@dataclass(frozen=True)
class TransformPlan:
    """What one transform recomputes, and how.

    Attributes:
        mode: ``full`` (every day, no checkpoint to start from) or ``incremental``.
        versions: The staged tables' versions the KPIs will be up to date with.
        previous_versions: The checkpoint's versions (None for a full run).
        dates: The days to recompute, sorted; None: every day.
        dirty_days: Days a failed run may have half written (recomputed and read back).
        categories: Every KPI category the days may hold (before, now, and in between).
        order_files: The data files holding the days' orders (None: every file).
        item_files: The data files holding those orders' items (None: every file).
        needs_spark: The versions moved or days are dirty, so Spark starts.
        little_work: The changes promise little Spark work (a short-lived session).
        money: How Spark sums ``sale_price`` (``money.money_plan``).
        hash_join: The fact join hashes the orders (``hash_join_fits``).
    """

    mode: str
    versions: Mapping[str, int]
    previous_versions: Mapping[str, int] | None
    dates: tuple[date, ...] | None
    dirty_days: frozenset[date]
    categories: frozenset[str]
    order_files: tuple[str, ...] | None
    item_files: tuple[str, ...] | None
    needs_spark: bool
    little_work: bool
    money: MoneyPlan
    hash_join: bool

    @property
    def computes(self) -> bool:
        """Whether Spark computes anything: some day (or every day) to recompute."""
        return self.needs_spark and self.dates != ()

    def describe(self) -> str:
        """A short human summary of the plan."""
        if self.dates is None:
            days = "every day"
        elif not self.dates:
            days = "no day"
        else:
            days = f"{len(self.dates)} day(s), {self.dates[0]} to {self.dates[-1]}"
            days += f" ({len(self.dirty_days)} dirty)" if self.dirty_days else ""
        files = ""
        if self.order_files is not None and self.item_files is not None:
            files = f"; {len(self.order_files)} order file(s), {len(self.item_files)} item file(s)"
        spark = "no Spark" if not self.needs_spark else "short-lived Spark" if self.little_work else "Spark"
        join = "hash join" if self.hash_join else "sort-merge join"
        return f"{self.mode} transform: {days}{files}; {spark}; money as {self.money.value}; {join}"

    def __str__(self) -> str:
        return self.describe()

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "versions": dict(self.versions),
            "previous_versions": None if self.previous_versions is None else dict(self.previous_versions),
            "dates": None if self.dates is None else [d.isoformat() for d in self.dates],
            "dirty_days": sorted(d.isoformat() for d in self.dirty_days),
            "categories": sorted(self.categories),
            "order_files": None if self.order_files is None else list(self.order_files),
            "item_files": None if self.item_files is None else list(self.item_files),
            "needs_spark": self.needs_spark,
            "little_work": self.little_work,
            "money": self.money.value,
            "hash_join": self.hash_join,
        }


def make_plan(
    lake: Lake, settings: Settings, checkpoint: Checkpoint | None, *, on_spark: Callable[[bool], None]
) -> TransformPlan:
    """Plan the run from the lake and the checkpoint (None: a full run).

    ``on_spark(short_lived)`` is called as soon as the plan knows that Spark is needed and
    for how much work, before the affected days are looked for: the JVM starts meanwhile.
    """
    versions = lake.versions()
    seen = None if checkpoint is None else checkpoint.versions
    dirty = set() if checkpoint is None else checkpoint.dirty_days
    needs_spark = not (seen is not None and seen == versions and not dirty)
    little = seen is not None and needs_spark and _little_work(lake.tables, seen, versions)
    if needs_spark:
        on_spark(little)
    dates: list[date] | None = None
    categories: set[str] = set()
    order_files: list[str] | None = None
    item_files: list[str] | None = None
    if seen is not None:
        found, categories = _affected_days(lake.tables, seen, versions, lake.options) if needs_spark else ([], set())
        # Days a failed run may have half written are recomputed and read back from DynamoDB.
        dates = sorted(set(found) | dirty)
        order_files, item_files = _slices(lake.tables, dates)
    plan = TransformPlan(
        mode="full" if checkpoint is None else "incremental",
        versions=versions,
        previous_versions=seen,
        dates=None if dates is None else tuple(dates),
        dirty_days=frozenset(dirty),
        categories=frozenset(categories),
        order_files=None if order_files is None else tuple(order_files),
        item_files=None if item_files is None else tuple(item_files),
        needs_spark=needs_spark,
        little_work=little,
        money=money_plan(lake.tables[ORDER_ITEMS.name]),
        hash_join=hash_join_fits(settings, lake.tables[ORDERS.name]),
    )
    log.info("transform plan: %s", plan)
    return plan


def hash_join_fits(settings: Settings, orders: DeltaTable) -> bool:
    """True when every shuffle partition's share of the orders fits a hash table in memory.

    Spark's shuffled hash join builds its table in memory and does not spill; below
    ``HASH_JOIN_ORDERS_PER_PARTITION`` orders per partition it is faster than sorting
    items and orders for a sort-merge join.
    """
    return delta.row_count(orders) <= HASH_JOIN_ORDERS_PER_PARTITION * settings.spark_shuffle_partitions


def _little_work(tables: Mapping[str, DeltaTable], seen: Mapping[str, int], versions: Mapping[str, int]) -> bool:
    """Whether the changes since the versions ``seen`` promise a few seconds of Spark work.

    No product changed (a recategorised product can touch every day), and the
    commits since wrote at most ``LITTLE_WORK_SHARE`` of the orders and items rows.
    A short-lived session compiles with C1 only, which is slower on a warm full
    recompute: a backfill must not get one.
    """
    if versions[PRODUCTS.name] != seen[PRODUCTS.name]:
        return False
    datasets = (ORDERS.name, ORDER_ITEMS.name)
    written = sum(delta.rows_written_since(tables[name], seen[name]) for name in datasets)
    return written <= LITTLE_WORK_SHARE * sum(delta.row_count(tables[name]) for name in datasets)


def _at_version(table: DeltaTable, version: int, options: Mapping[str, str]) -> DeltaTable:
    return DeltaTable(table.table_uri, version=version, storage_options=dict(options))


def _affected_days(
    tables: Mapping[str, DeltaTable], seen: Mapping[str, int], versions: Mapping[str, int], options: Mapping[str, str]
) -> tuple[list[date], set[str]]:
    """The days the changes since ``seen`` can affect, and every KPI category those days may hold.

    The categories are those of the products before and now, and of any version in
    between (an earlier failed run may have written KPIs from it).
    """
    orders, items, products = tables[ORDERS.name], tables[ORDER_ITEMS.name], tables[PRODUCTS.name]
    order_changes = delta.read_changes(orders, seen[ORDERS.name])
    item_changes = delta.read_changes(items, seen[ORDER_ITEMS.name])

    # (Snapshots, not the product change feed: delta-rs 1.6 cannot read change files under
    # a partition value that needs escaping, such as "Personal Care".)
    def categories_at(version: int) -> dict[int, str]:
        return product_categories(
            delta_scan.read_rows(_at_version(products, version, options), PRODUCT_CATEGORY_COLUMNS)
        )

    before = categories_at(seen[PRODUCTS.name])
    now = product_categories(delta_scan.read_rows(products, PRODUCT_CATEGORY_COLUMNS))
    names = set(before.values()) | set(now.values())
    for version in range(seen[PRODUCTS.name] + 1, versions[PRODUCTS.name]):
        names |= set(categories_at(version).values())

    touched = set(changes.changed_keys(item_changes, "order_id"))
    recategorised = recategorised_products(before, now)
    if recategorised:
        moved = delta_scan.rows_where_in(items, ["order_id"], "product_id", recategorised)
        touched |= set(moved.column("order_id").drop_null().to_pylist())
    days = set(changes.changed_days(order_changes))
    # An order in its own change feed was created on one of those days, before and after:
    # only the others need a lookup in the orders table (a read of two of its columns).
    touched -= set(changes.changed_keys(order_changes, "order_id"))
    if touched:
        created = delta_scan.rows_where_in(orders, ["created_at"], "order_id", touched)
        days |= changes.utc_days(created.column("created_at"))
    return sorted(days), names


def _slices(tables: Mapping[str, DeltaTable], dates: list[date]) -> tuple[list[str], list[str]]:
    """The data files holding every order created on ``dates`` and every item of those orders.

    Orders are partitioned by the month they were created in, so their files are
    those partitions; an item can sit in any partition (its own ``created_at``),
    so its files are found by the order ids they hold.
    """
    if not dates:
        return [], []
    orders, items = tables[ORDERS.name], tables[ORDER_ITEMS.name]
    months = [[("year", "=", year), ("month", "=", month)] for year, month in months_of(dates)]
    order_files = orders.file_uris(file_pruning_predicate=months)
    created = delta_scan.read_rows(orders, ["order_id", "created_at"], pruning=months)
    days = changes.utc_day(created.column("created_at"))
    order_ids = created.column("order_id").filter(key_lookup.is_in(days.combine_chunks(), pa.array(dates, pa.date32())))
    return order_files, delta_scan.files_holding(items, "order_id", order_ids.drop_null().to_pylist())
