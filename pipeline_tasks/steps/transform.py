"""TransformationTask: clean the staged snapshot, compute KPIs, write DynamoDB.

Incremental: only the ``order_date``s the staged changes can affect are
recomputed (see ``transforms.incremental``), from the Delta change feed since
the versions recorded in ``state/kpi_checkpoint.json``. delta-rs finds those
days and the data files that hold their orders and items (while the JVM
starts), and Spark reads only those files. For those days the tables are made
to hold exactly the contract's KPIs: changed items are put, stale ones
deleted, unchanged ones left alone, judged against the record of what was
published (``io.published``), not by reading DynamoDB back. Each run first
checks that record against the tables (identity and item count, one
DescribeTable and one COUNT scan per table) and repairs a table that fails;
``reconcile`` compares every item on demand. The checkpoint moves only after
every write succeeded, so a failed run is repeated in full by the next one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipeline_tasks.contract import (
    DATASETS,
    ORDER_ITEMS,
    ORDERS,
    PRODUCTS,
    SALE_PRICE_PARTS,
    UNKNOWN,
    Dataset,
)
from pipeline_tasks.errors import StepFailed
from pipeline_tasks.io import delta, dynamodb, published
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.io import spark as spark_io
from pipeline_tasks.io.kpi_tables import category_kpis_spec, order_kpis_spec
from pipeline_tasks.layout import checkpoint_key, record_key, report_key
from pipeline_tasks.settings import Settings
from pipeline_tasks.transforms import changes
from pipeline_tasks.transforms.cleaning import clean_order_items, clean_orders, clean_products
from pipeline_tasks.transforms.incremental import (
    PRODUCT_CATEGORY_COLUMNS,
    months_of,
    product_categories,
    recategorised_products,
)
from pipeline_tasks.transforms.kpis import (
    category_kpi_aggregates,
    category_kpi_items,
    fact_items,
    on_days,
    order_kpi_aggregates,
    order_kpi_items,
    revenue_from_parts,
    with_item_totals,
    with_order_date,
)
from pipeline_tasks.transforms.staging import staged_schema

log = logging.getLogger(__name__)

#: Above this many keys to look up, one consistent Scan beats BatchGetItem.
SCAN_THRESHOLD = 20_000
#: Item changes listed per table in the transform report (the counts are always complete).
REPORTED_CHANGES = 2_000
#: Share of the orders and items rows the commits since the checkpoint may have written for an
#: incremental run to count as little work (a short-lived Spark session, see ``_little_work``).
LITTLE_WORK_SHARE = 0.1
#: Orders per shuffle partition up to which the fact join hashes the orders (see ``hash_join_fits``).
HASH_JOIN_ORDERS_PER_PARTITION = 1_000_000


def _snapshot(
    spark: SparkSession, settings: Settings, table: DeltaTable, dataset: Dataset, files: list[str] | None = None
) -> DataFrame:
    return spark_io.read_delta(spark, table, staged_schema(dataset), reader=settings.spark_delta_reader, files=files)


def _at_version(table: DeltaTable, version: int, options: Mapping[str, str]) -> DeltaTable:
    return DeltaTable(table.table_uri, version=version, storage_options=dict(options))


def compute_aggregates(
    orders: DataFrame,
    items: DataFrame,
    products: DataFrame,
    dates: list[date] | None,
    *,
    hash_join: bool = False,
    money_parts: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Collect the KPI aggregates of the given days (all days when None).

    ``orders`` and ``items`` may be slices of the snapshots, as long as they hold
    every order created on those days and every item of those orders. The order
    and category aggregates run as two concurrent Spark jobs, so that one job's
    tasks fill the cores the other's last tasks leave idle. ``hash_join``: see
    ``hash_join_fits``; ``money_parts``: see ``money_parts_fit``.
    """
    cleaned_orders = with_order_date(clean_orders(orders))
    if dates is not None:
        cleaned_orders = on_days(cleaned_orders, dates)
    categories = clean_products(products).select(F.col("id").alias("product_id"), "category")
    cleaned_items = clean_order_items(items, money_parts=money_parts)
    facts = fact_items(cleaned_items, cleaned_orders, categories, hash_orders=hash_join, money_parts=money_parts)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kpi-categories") as pool:
        category_job = pool.submit(_collect, category_kpi_aggregates(facts, money_parts=money_parts))
        order_rows = _collect(order_kpi_aggregates(cleaned_orders))
        category_rows = category_job.result()
    if money_parts:
        category_rows = revenue_from_parts(category_rows)
    return with_item_totals(order_rows, category_rows), category_rows


def _collect(frame: DataFrame) -> list[dict[str, Any]]:
    """The rows as dicts, through Arrow: 40k category rows take 0.4 s instead of 0.9 s as ``Row`` objects."""
    return frame.toArrow().to_pylist()


Aggregates = tuple[list[dict[str, Any]], list[dict[str, Any]]]
#: Most compute attempts spent isolating failing days before the run gives up and fails.
MAX_ISOLATION_ATTEMPTS = 64


def compute_by_halves(
    compute: Callable[[list[date]], Aggregates], days: list[date], *, budget: list[int] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[date, str]]:
    """The aggregates of the days that compute, and the days that fail with their error.

    Failing days are isolated by halving: a few failing days among thousands cost a
    few dozen attempts. ``budget`` (attempts left, shared by the recursion) bounds the
    work when everything fails; past it, the error is raised.
    """
    budget = [MAX_ISOLATION_ATTEMPTS] if budget is None else budget
    if not days:
        return [], [], {}
    if budget[0] <= 0:
        raise StepFailed(f"could not isolate the failing KPI days within {MAX_ISOLATION_ATTEMPTS} attempts")
    budget[0] -= 1
    try:
        order_rows, category_rows = compute(days)
        return order_rows, category_rows, {}
    except Exception as error:  # any failure of a day's data is isolated, then reported
        if len(days) == 1:
            return [], [], {days[0]: f"{type(error).__name__}: {error}"[:1000]}
    middle = len(days) // 2
    first = compute_by_halves(compute, days[:middle], budget=budget)
    second = compute_by_halves(compute, days[middle:], budget=budget)
    return first[0] + second[0], first[1] + second[1], first[2] | second[2]


def order_days(orders: DeltaTable) -> list[date]:
    """Every UTC day on which a staged order was created, sorted."""
    created = delta.read_rows(orders, ["created_at"]).column("created_at")
    days = pc.unique(pc.cast(created.combine_chunks().drop_null(), pa.date32()))
    return sorted(days.to_pylist())


def hash_join_fits(settings: Settings, orders: DeltaTable) -> bool:
    """True when every shuffle partition's share of the orders fits a hash table in memory.

    Spark's shuffled hash join builds its table in memory and does not spill; below
    ``HASH_JOIN_ORDERS_PER_PARTITION`` orders per partition it is faster than sorting
    items and orders for a sort-merge join (5M items: 15 % of the full recompute).
    """
    return delta.row_count(orders) <= HASH_JOIN_ORDERS_PER_PARTITION * settings.spark_shuffle_partitions


def money_parts_fit(items: DeltaTable) -> bool:
    """Whether the KPIs may sum the exact int64 parts of ``sale_price`` instead of the decimal.

    From the Delta log's null counts: every price has its parts (a price at or above
    ``SALE_PRICE_PARTS_LIMIT`` has none; staging quarantines those), and the table has
    fewer rows than a 64-bit sum of parts below 10^9 could overflow with
    (``kpis.category_kpi_aggregates``). The decimal's own min/max statistics are not
    used: delta-rs writes none for values of 36 digits or more. A file without null
    counts, or a table without the parts, keeps the decimal plan.
    """
    units = SALE_PRICE_PARTS[0]
    if not set(SALE_PRICE_PARTS) <= set(items.schema().to_arrow().names):
        return False
    actions = pa.table(items.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return True
    columns = ["num_records", "null_count.sale_price", f"null_count.{units}"]
    if not set(columns) <= set(actions.column_names):
        return False
    records, price_nulls, units_nulls = (actions.column(c).to_pylist() for c in columns)
    for counts in zip(records, price_nulls, units_nulls, strict=True):
        if None in counts or counts[1] != counts[2]:
            return False
    return 10**9 * sum(records) < 2**63


def run(
    settings: Settings,
    execution_id: str,
    *,
    spark: SparkSession | None = None,
    full: bool = False,
) -> dict[str, Any]:
    """Bring the KPI tables up to date with the staged snapshot.

    Args:
        settings: Lake, bucket and table names.
        execution_id: Recorded on every item written.
        spark: A session to reuse (otherwise one is started from Settings, and stopped at the end).
        full: Recompute every day, ignoring the checkpoint.

    Returns:
        The transform report (also written to ``reports/{execution_id}/transform.json``).
    """
    if spark is not None:
        session = spark
        return _run(settings, execution_id, lambda short_lived: lambda: session, full=full)
    # The JVM starts (~10 s on a cold task) while delta-rs finds what changed.
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

    What a transform's count check cannot see, such as an item edited in place, this
    finds: both tables are read in full (a consistent Scan each) and compared item by
    item with the record (``published.differences``); missing and changed items are
    put, items the record does not hold are deleted. Days a failed transform left
    dirty are skipped. Nothing is written when the checkpoint moved while the tables
    were read (a transform ran meanwhile), nor with ``dry_run``. The checkpoint is
    never written: a transform records a new table identity itself.

    Args:
        settings: Bucket and table names.
        dry_run: Compare and report only.
        execution_id: Recorded on every item put (``reconcile-{UTC time}`` by default).

    Raises:
        StepFailed: No record the checkpoint vouches for (a full recompute starts one), a KPI
            table does not exist, or a transform moved the checkpoint meanwhile.
    """
    s3 = s3io.client(settings, "s3")
    specs = (order_kpis_spec(settings), category_kpis_spec(settings))
    checkpoint = s3io.get_json_or_none(s3, settings.bucket, checkpoint_key(settings))
    record, _ = _read_record(s3, settings, checkpoint, specs)
    if record is None or checkpoint is None:
        raise StepFailed(
            "no published-KPI record to reconcile against: run a full recompute "
            "(ecom-pipeline notebook transform -p execution_id ID -p full true), which rewrites both tables"
        )
    skip_days = sorted(d.isoformat() for d in _dirty_days(checkpoint))
    states = _stored_states(checkpoint["published"])
    client = s3io.client(settings, "dynamodb")
    plans = []
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
        plans.append((checked, published.plan_repair(client, spec, record, skip_days=skip_days)))
    writing = not dry_run and any(plan.changes_anything for _, plan in plans)
    if writing:
        if s3io.get_json_or_none(s3, settings.bucket, checkpoint_key(settings)) != checkpoint:
            raise StepFailed("a transform ran while the tables were read: nothing written; run reconcile again")
        now = datetime.now(UTC)
        extra = {
            "execution_id": execution_id or f"reconcile-{now.strftime('%Y%m%dT%H%M%SZ')}",
            "updated_at": now.isoformat(timespec="seconds"),
        }
        resource = s3io.resource(settings, "dynamodb")
        for _, plan in plans:
            if plan.changes_anything:
                published.apply_repair(resource, plan, extra)
    tables = tuple(plan.outcome(checked, applied=writing, limit=REPORTED_CHANGES) for checked, plan in plans)
    return ReconcileReport(tables, tuple(skip_days), dry_run)


def _run(
    settings: Settings,
    execution_id: str,
    start_spark: Callable[[bool], Callable[[], SparkSession]],
    *,
    full: bool,
) -> dict[str, Any]:
    """The transform; ``start_spark(short_lived)`` starts a session and returns how to wait for it.

    Spark starts only once the checkpoint says there is work, short-lived when the
    work is incremental and small (see ``_little_work``).
    """
    started = time.perf_counter()
    phases: dict[str, float] = {}
    s3 = s3io.client(settings, "s3")
    options = delta.storage_options(settings)
    tables = {d.name: delta.ensure_table(settings.table_uri(d.name), d, options) for d in DATASETS}
    versions = {name: table.version() for name, table in tables.items()}
    checkpoint = None if full else s3io.get_json_or_none(s3, settings.bucket, checkpoint_key(settings))
    phases["open tables"] = _lap(started, phases)

    dynamodb_client = s3io.client(settings, "dynamodb")
    resource = s3io.resource(settings, "dynamodb")
    order_spec, category_spec = order_kpis_spec(settings), category_kpis_spec(settings)
    specs = (order_spec, category_spec)
    extra = {"execution_id": execution_id, "updated_at": datetime.now(UTC).isoformat(timespec="seconds")}
    record, record_etag = _read_record(s3, settings, checkpoint, specs)
    # With a record, the check can only repair a table from it, never change what this run
    # computes: it runs beside Spark's start and the computation, and ends before any write
    # (a COUNT scan reads the whole table: about 10 s for 40k items on moto). Without one, a
    # failed check means a full recompute, so it comes first.
    checking: Future[list[published.TableCheck]] | None = None
    checks: list[published.TableCheck] = []
    if record is not None:
        checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kpi-table-check")
        checking = checker.submit(
            _check_tables, dynamodb_client, s3io.resource(settings, "dynamodb"), specs, checkpoint, record, extra
        )
        checker.shutdown(wait=False)
    else:
        checks = _check_tables(dynamodb_client, resource, specs, checkpoint, record, extra)
        if any(check.action == "full recompute" for check in checks):
            checkpoint = None
    phases["check KPI tables"] = _lap(started, phases)

    dirty_days = _dirty_days(checkpoint)
    unchanged = checkpoint is not None and checkpoint["versions"] == versions and not dirty_days
    get_spark = None
    if not unchanged:
        get_spark = start_spark(checkpoint is not None and _little_work(tables, checkpoint["versions"], versions))

    dates: list[date] | None = None
    categories: set[str] = set()
    order_files: list[str] | None = None
    item_files: list[str] | None = None
    mode = "full" if checkpoint is None else "incremental"
    if checkpoint is not None:
        seen = checkpoint["versions"]
        dates, categories = ([], set()) if unchanged else _affected_days(tables, seen, versions, options)
        # Days a failed run may have half written are recomputed and read back from DynamoDB.
        dates = sorted(set(dates) | dirty_days)
        order_files, item_files = _slices(tables, dates)
    log.info("transform (%s): %s day(s) to recompute", mode, "all" if dates is None else len(dates))
    phases["find affected days"] = _lap(started, phases)

    order_rows: list[dict[str, Any]] = []
    category_rows: list[dict[str, Any]] = []
    blocked: dict[date, str] = {}
    money_parts = money_parts_fit(tables[ORDER_ITEMS.name])
    if dates != [] and get_spark is not None:
        spark = get_spark()
        phases["wait for Spark"] = _lap(started, phases)
        orders = _snapshot(spark, settings, tables[ORDERS.name], ORDERS, order_files)
        items = _snapshot(spark, settings, tables[ORDER_ITEMS.name], ORDER_ITEMS, item_files)
        products = _snapshot(spark, settings, tables[PRODUCTS.name], PRODUCTS)
        hash_join = hash_join_fits(settings, tables[ORDERS.name])

        def compute(days: list[date] | None) -> Aggregates:
            aggregates = compute_aggregates(orders, items, products, days, hash_join=hash_join, money_parts=money_parts)
            order_kpi_items(aggregates[0]), category_kpi_items(aggregates[1])  # a value no item can hold fails here
            return aggregates

        try:
            order_rows, category_rows = compute(dates)
        except Exception as error:  # one day's data must not block the others: isolate the failing days
            every_day = dates if dates is not None else order_days(tables[ORDERS.name])
            log.warning("computing %d day(s) failed (%s): isolating the failing days", len(every_day), error)
            order_rows, category_rows, blocked = compute_by_halves(compute, every_day)
            if len(blocked) == len(every_day):
                raise
            log.error("KPI day(s) blocked, left as they were and retried by the next run: %s", blocked)
    phases["compute KPIs"] = _lap(started, phases)
    desired_orders: dict[dynamodb.Key, dict[str, Any]] = {(d,): i for d, i in order_kpi_items(order_rows).items()}
    desired_categories = category_kpi_items(category_rows)

    if checking is not None:
        checks = checking.result()
        phases["check KPI tables (beside Spark)"] = _lap(started, phases)
    desired = {order_spec: desired_orders, category_spec: desired_categories}
    days = None if dates is None else [d.isoformat() for d in dates]
    read_back: list[str] | str
    if days is None:
        existing = {
            spec: {spec.key_of(i): i for i in dynamodb.scan_items(dynamodb_client, spec, spec.diffed)} for spec in specs
        }
        read_back = "all"
    else:
        dirty = {d.isoformat() for d in dirty_days}
        read_back = sorted(dirty) if record is not None else days
        names = (categories | {UNKNOWN} | {c for c, _ in desired_categories}) if days else set()
        existing = _read_dynamodb(dynamodb_client, order_spec, category_spec, read_back, names)
        if record is not None:
            recorded = sorted(set(days) - dirty)
            for spec in specs:
                existing[spec] |= published.items_on(record, spec, recorded)
    if blocked:
        # A blocked day keeps what the tables hold: none of its items is put or deleted.
        held = {day.isoformat() for day in blocked}
        existing = {
            spec: {k: i for k, i in items.items() if i.get("order_date") not in held}
            for spec, items in existing.items()
        }
        days = None if days is None else [day for day in days if day not in held]
    phases["read existing KPIs"] = _lap(started, phases)

    diffs = {spec: dynamodb.diff_items(spec, desired[spec], existing[spec]) for spec in specs}
    changing = any(puts or deletes for puts, deletes, _ in diffs.values())
    if changing:
        _mark_dirty(s3, settings, days)
    written = {}
    for spec in specs:
        puts, deletes, unchanged_items = diffs[spec]
        dynamodb.write_diff(resource, spec, puts, deletes, extra)
        written[spec.name] = {
            "key": list(spec.key),
            "values": list(spec.values),
            "put": len(puts),
            "new": sum(1 for item in puts if spec.key_of(item) not in existing[spec]),
            "deleted": len(deletes),
            "unchanged": unchanged_items,
            "changes": dynamodb.describe_changes(spec, puts, deletes, existing[spec], limit=REPORTED_CHANGES),
        }
        log.info("%s: %d put, %d deleted, %d unchanged", spec.name, len(puts), len(deletes), unchanged_items)

    phases["write DynamoDB"] = _lap(started, phases)
    new_checkpoint: dict[str, Any] = {"versions": versions, "execution_id": execution_id}
    if days is None or record is not None:
        final = record
        if final is None or days is None or changing or dirty_days:
            final = published.replaced(published.empty(specs) if record is None else record, desired, days)
            record_etag = published.write(s3, settings.bucket, record_key(settings), final)
        new_checkpoint["published"] = {
            "tables": [spec.name for spec in specs],
            # Blocked days are recomputed by the next run and read back from the tables.
            "dirty_days": sorted(day.isoformat() for day in blocked),
            "record_etag": record_etag,
            "table_states": _table_states(dynamodb_client, specs, final, checks),
        }
    s3io.put_json(s3, settings.bucket, checkpoint_key(settings), new_checkpoint)
    report = {
        "execution_id": execution_id,
        "mode": mode,
        "versions": versions,
        "previous_versions": None if checkpoint is None else checkpoint["versions"],
        "affected_dates": days,
        "spark_requested": get_spark is not None,  # a session handed over, or one this step started
        # How Spark sums sale_price: as its exact int64 parts, or as decimal(38, 18) (see money_parts_fit).
        "money_sums": "int64 parts" if money_parts else "decimal",
        # Days whose items were read back from DynamoDB ("all": a scan); the others came from the record.
        "read_back_days": read_back,
        # Each KPI table checked against the record before the run (identity, item count), and
        # repaired from it when the check failed; empty when no record was vouched for.
        "table_checks": [check.to_json() for check in checks],
        # Days whose KPIs could not be computed, with the error: left as the tables hold them,
        # retried by every later run (empty when every day computed).
        "blocked_days": {day.isoformat(): reason for day, reason in sorted(blocked.items())},
        "tables": written,
        "order_kpis": [_jsonable(i) for i in desired_orders.values()],
        "seconds": round(time.perf_counter() - started, 3),
        "seconds_by_phase": phases,
    }
    s3io.put_json(s3, settings.bucket, report_key(settings, execution_id, "transform"), report)
    return report


def _dirty_days(checkpoint: Mapping[str, Any] | None) -> set[date]:
    """The days a failed run may have written without recording them (see ``io.published``)."""
    record = (checkpoint or {}).get("published") or {}
    return {date.fromisoformat(day) for day in record.get("dirty_days", [])}


def _read_record(
    s3: Any, settings: Settings, checkpoint: Mapping[str, Any] | None, specs: tuple[dynamodb.TableSpec, ...]
) -> tuple[pa.Table | None, str | None]:
    """The published-KPI record and its ETag, when the checkpoint vouches for it and it is for these tables.

    The checkpoint names the record it vouches for by its ETag: another object at the key
    (an older copy put back, a record of another environment) is not trusted, since
    repairing the tables from it would write stale KPIs. Only a run that failed after
    writing the record, before the checkpoint, leaves a newer record, and that one differs
    from the one vouched for only on the run's dirty days.
    """
    state = (checkpoint or {}).get("published")
    if state is None or state["tables"] != [spec.name for spec in specs]:
        return None, None
    try:
        record, etag = published.load(s3, settings.bucket, record_key(settings), specs)
    except s3.exceptions.NoSuchKey:
        log.warning(
            "no published-KPI record at %s: reading DynamoDB; a full run starts a new one", record_key(settings)
        )
        return None, None
    vouched = state.get("record_etag")
    if vouched is not None and etag != vouched and not state.get("dirty_days"):
        log.warning(
            "the published-KPI record at %s is not the one the checkpoint vouches for (ETag %s, not %s): "
            "reading DynamoDB; a full run starts a new one",
            record_key(settings),
            etag,
            vouched,
        )
        return None, None
    return record, etag


def _check_tables(
    client: Any,
    resource: Any,
    specs: Sequence[dynamodb.TableSpec],
    checkpoint: Mapping[str, Any] | None,
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
    state = (checkpoint or {}).get("published")
    if state is None or state["tables"] != [spec.name for spec in specs]:
        return []
    states = _stored_states(state)
    if record is None and set(states) != {spec.name for spec in specs}:
        return []  # a checkpoint from before tables were checked, and no record: nothing to count against
    skip_days = [d.isoformat() for d in _dirty_days(checkpoint)]
    checks = []
    for spec in specs:
        expected = states[spec.name].items if record is None else published.count(record, spec)
        checked = published.check(client, spec, states.get(spec.name), expected)
        if checked.found_items is None:
            log.warning("%s does not exist: this run cannot repair it, and fails if it writes to it", spec.name)
        elif checked.matches:
            log.info("%s matches the published-KPI record (%d items)", spec.name, checked.found_items)
        elif record is None:
            log.warning(
                "%s does not match the checkpoint (identity changed: %s; %d items expected, %d found) and the "
                "published-KPI record is missing: recomputing every day",
                spec.name,
                checked.identity_changed,
                checked.expected_items,
                checked.found_items,
            )
            checked = replace(checked, action="full recompute")
        else:
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
            checked = plan.outcome(checked, applied=True, limit=REPORTED_CHANGES)
        checks.append(checked)
    return checks


def _stored_states(state: Mapping[str, Any]) -> dict[str, published.TableState]:
    return {name: published.TableState.from_json(doc) for name, doc in state.get("table_states", {}).items()}


def _table_states(
    client: Any, specs: Sequence[dynamodb.TableSpec], record: pa.Table, checks: Sequence[published.TableCheck]
) -> dict[str, Any]:
    """What the new checkpoint remembers of each table: its identity (as checked, or described now) and count."""
    identities = {check.table: check.identity for check in checks}
    return {
        spec.name: published.TableState(
            identities[spec.name] if spec.name in identities else dynamodb.table_identity(client, spec),
            published.count(record, spec),
        ).to_json()
        for spec in specs
    }


def _mark_dirty(s3: Any, settings: Settings, days: list[str] | None) -> None:
    """Say in the stored checkpoint, before any write, which days the record may no longer match.

    A full run's writes can touch any day: the checkpoint then drops the record.
    """
    checkpoint = s3io.get_json_or_none(s3, settings.bucket, checkpoint_key(settings))
    if checkpoint is None or "published" not in checkpoint:
        return
    if days is None:
        del checkpoint["published"]
    else:
        dirty = {d.isoformat() for d in _dirty_days(checkpoint)} | set(days)
        checkpoint["published"] = {**checkpoint["published"], "dirty_days": sorted(dirty)}
    s3io.put_json(s3, settings.bucket, checkpoint_key(settings), checkpoint)


def _read_dynamodb(
    client: Any,
    order_spec: dynamodb.TableSpec,
    category_spec: dynamodb.TableSpec,
    days: list[str],
    names: set[str],
) -> dict[dynamodb.TableSpec, dict[dynamodb.Key, dict[str, Any]]]:
    """The items of both tables on ``days``; ``names``: every category those days may hold."""
    category_keys = [(c, d) for c in sorted(names) for d in days]
    existing_orders = dynamodb.get_items(client, order_spec, [(d,) for d in days], order_spec.diffed)
    if len(category_keys) > SCAN_THRESHOLD:
        wanted = set(days)
        existing_categories = {
            category_spec.key_of(i): i
            for i in dynamodb.scan_items(client, category_spec, category_spec.diffed)
            if i["order_date"] in wanted
        }
    else:
        existing_categories = dynamodb.get_items(client, category_spec, category_keys, category_spec.diffed)
    return {order_spec: existing_orders, category_spec: existing_categories}


def _lap(started: float, phases: Mapping[str, float]) -> float:
    """Seconds since the end of the previous phase."""
    return round(time.perf_counter() - started - sum(phases.values()), 3)


def _little_work(tables: Mapping[str, DeltaTable], seen: Mapping[str, int], versions: Mapping[str, int]) -> bool:
    """Whether the changes since the versions ``seen`` promise a few seconds of Spark work.

    No product changed (a recategorised product can touch every day), and the
    commits since wrote at most ``LITTLE_WORK_SHARE`` of the orders and items rows.
    A short-lived session compiles with C1 only, which is ~1.8 times slower on
    a warm full recompute: a backfill must not get one.
    """
    if versions[PRODUCTS.name] != seen[PRODUCTS.name]:
        return False
    datasets = (ORDERS.name, ORDER_ITEMS.name)
    written = sum(delta.rows_written_since(tables[name], seen[name]) for name in datasets)
    return written <= LITTLE_WORK_SHARE * sum(delta.row_count(tables[name]) for name in datasets)


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
        return product_categories(delta.read_rows(_at_version(products, version, options), PRODUCT_CATEGORY_COLUMNS))

    before = categories_at(seen[PRODUCTS.name])
    now = product_categories(delta.read_rows(products, PRODUCT_CATEGORY_COLUMNS))
    names = set(before.values()) | set(now.values())
    for version in range(seen[PRODUCTS.name] + 1, versions[PRODUCTS.name]):
        names |= set(categories_at(version).values())

    touched = set(changes.changed_keys(item_changes, "order_id"))
    recategorised = recategorised_products(before, now)
    if recategorised:
        moved = delta.rows_where_in(items, ["order_id"], "product_id", recategorised)
        touched |= set(moved.column("order_id").drop_null().to_pylist())
    days = set(changes.changed_days(order_changes))
    # An order in its own change feed was created on one of those days, before and after:
    # only the others need a lookup in the orders table (a read of two of its columns).
    touched -= set(changes.changed_keys(order_changes, "order_id"))
    if touched:
        created = delta.rows_where_in(orders, ["created_at"], "order_id", touched)
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
    created = delta.read_rows(orders, ["order_id", "created_at"], pruning=months)
    days = changes.utc_day(created.column("created_at"))
    order_ids = created.column("order_id").filter(delta.is_in(days.combine_chunks(), pa.array(dates, pa.date32())))
    return order_files, delta.files_holding(items, "order_id", order_ids.drop_null().to_pylist())


def _jsonable(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if not isinstance(v, (int, str)) else v) for k, v in item.items()}
