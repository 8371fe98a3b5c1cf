"""The delta-rs lookups the incremental transform slices the lake with (local and on moto's S3)."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipeline_tasks.contract import ORDER_ITEMS, ORDERS, PRODUCTS, UNKNOWN, Dataset
from pipeline_tasks.errors import StepFailed
from pipeline_tasks.io import delta, delta_scan
from pipeline_tasks.io import spark as spark_io
from pipeline_tasks.transforms.cleaning import is_valid_product
from pipeline_tasks.transforms.incremental import PRODUCT_CATEGORY_COLUMNS, product_categories
from pipeline_tasks.transforms.staging import stage_rows, staged_schema

pytestmark = [pytest.mark.spark, pytest.mark.aws]

ORDER_ROWS = [
    ("1", "2024-03-31 23:30:00-02:00"),  # 2024-04-01 UTC
    ("2", "2024-03-02 10:00:00"),
    ("3", ""),  # null created_at: the null partition
    ("4", "2024-05-20 10:00:00"),
]


def _staged(dataset: Dataset, columns: dict[str, list[str]]) -> pa.Table:
    rows = len(next(iter(columns.values())))
    raw = {name: columns.get(name, [""] * rows) for name, _ in dataset.columns}
    return stage_rows(pa.table(raw), dataset)


def _table(uri: str, dataset: Dataset, rows: pa.Table, options: dict[str, str]) -> delta.DeltaTable:
    table = delta.ensure_table(uri, dataset, options)
    delta.merge_rows(table, rows, dataset)
    return table


def _orders() -> pa.Table:
    ids, created = [o for o, _ in ORDER_ROWS], [c for _, c in ORDER_ROWS]
    return _staged(ORDERS, {"order_id": ids, "created_at": created, "num_of_item": ["1"] * len(ids)})


def _items() -> pa.Table:
    # Items sit in the partition of their own created_at, not their order's.
    ids = [str(i) for i in range(1, 9)]
    orders = ["1", "1", "2", "2", "3", "4", "4", "4"]
    created = ["2024-04-01 01:00:00", "2024-05-01 00:00:00", "2024-03-02 10:00:00", "2024-03-02 10:00:00"]
    created += ["2024-01-01 00:00:00", "2024-05-20 10:00:00", "2024-05-20 10:00:00", "2024-06-01 00:00:00"]
    return _staged(
        ORDER_ITEMS,
        {"id": ids, "order_id": orders, "product_id": ["1"] * 8, "sale_price": ["1.5"] * 8, "created_at": created},
    )


@pytest.fixture(params=["local", "s3"])
def lake(request, tmp_path):
    """(uri of a table by name, storage options) for a lake on local disk or on moto's S3."""
    if request.param == "local":
        return (lambda name: str(tmp_path / name)), {}
    settings = request.getfixturevalue("settings")
    return settings.table_uri, delta.storage_options(settings)


def test_read_rows_restores_partition_values(lake):
    uri, options = lake
    table = _table(uri("orders"), ORDERS, _orders(), options)
    rows = delta_scan.read_rows(table, ["order_id", "year", "month"]).sort_by("order_id").to_pylist()
    assert rows == [
        {"order_id": 1, "year": 2024, "month": 4},
        {"order_id": 2, "year": 2024, "month": 3},
        {"order_id": 3, "year": None, "month": None},
        {"order_id": 4, "year": 2024, "month": 5},
    ]
    march = delta_scan.read_rows(table, ["order_id"], pruning=[("year", "=", 2024), ("month", "=", 3)])
    assert march.column("order_id").to_pylist() == [2]
    wanted = delta_scan.read_rows(table, ["order_id", "created_at"], pc.field("order_id").isin([1, 4, 99]))
    assert sorted(wanted.column("order_id").to_pylist()) == [1, 4]
    assert delta_scan.read_rows(table, ["order_id"], pc.field("order_id").isin([99])).num_rows == 0


def test_files_holding_names_exactly_the_files_with_those_keys(lake):
    uri, options = lake
    table = _table(uri("order_items"), ORDER_ITEMS, _items(), options)
    ids_by_file = {
        file: set(rows.column("order_id").to_pylist()) for file, rows in delta_scan.scan(table, ["order_id"])
    }
    assert sorted(ids_by_file) == sorted(table.file_uris())
    for wanted in ([1], [2, 4], [3], [99], []):
        expected = sorted(file for file, ids in ids_by_file.items() if ids & set(wanted))
        assert sorted(delta_scan.files_holding(table, "order_id", wanted)) == expected, wanted
    assert len(delta_scan.files_holding(table, "order_id", [1])) == 2  # April and May


def test_key_lookups_read_only_the_files_whose_statistics_admit_a_key(lake):
    uri, options = lake
    table = _table(uri("order_items"), ORDER_ITEMS, _items(), options)
    rows = delta_scan.read_rows(table, ["id", "order_id", "month"]).to_pylist()
    for wanted in ([1], [2, 4, 99], [8], [99, 100], []):
        expected = sorted((r["id"], r["month"]) for r in rows if r["id"] in wanted)
        found = delta_scan.rows_where_in(table, ["id", "month"], "id", wanted)
        assert sorted(zip(*found.to_pydict().values(), strict=True)) == expected, wanted
    # Keys above every key of the table (new rows of a batch) need no read at all.
    assert list(delta_scan.scan(table, ["id"], holding=("id", pa.array([9, 10])))) == []
    ranges = {
        uri: (pc.min(r.column("id")).as_py(), pc.max(r.column("id")).as_py())
        for uri, r in delta_scan.scan(table, ["id"])
    }
    read = [uri for uri, _ in delta_scan.scan(table, ["id"], holding=("id", pa.array([3])))]
    assert sorted(read) == sorted(uri for uri, (low, high) in ranges.items() if low <= 3 <= high)
    assert len(read) < len(ranges)


def _spark_product_category(products):
    """The Spark twin of ``incremental.product_categories``: an excluded or missing product's items are Unknown."""
    from pyspark.sql import functions as F

    category = F.when(is_valid_product(), F.coalesce(F.col("category"), F.lit(UNKNOWN))).otherwise(F.lit(UNKNOWN))
    return products.select(F.col("id").alias("product_id"), category.alias("category"))


def test_product_categories_twin_the_spark_rule(spark, tmp_path):
    products = _staged(
        PRODUCTS,
        {
            "id": ["1", "2", "3", "4", "5"],
            "category": ["Tops", "", "Jeans", "Jeans", "Swim"],
            "cost": ["5", "5", "0", "5", ""],
            "retail_price": ["10", "10", "10", "-1", "10"],
        },
    )
    table = _table(str(tmp_path / "products"), PRODUCTS, products, {})
    frame = spark_io.read_delta(spark, table, staged_schema(PRODUCTS))
    expected = {r["product_id"]: r["category"] for r in _spark_product_category(frame).collect()}
    assert product_categories(products.select(PRODUCT_CATEGORY_COLUMNS)) == expected
    assert expected == {1: "Tops", 2: "Unknown", 3: "Unknown", 4: "Unknown", 5: "Unknown"}


def test_scan_reads_partition_values_that_need_escaping(lake):
    uri, options = lake
    products = _staged(
        PRODUCTS,
        {"id": ["1", "2"], "department": ["Personal Care", "Women"], "cost": ["1", "1"], "retail_price": ["2", "2"]},
    )
    table = _table(uri("products"), PRODUCTS, products, options)
    rows = delta_scan.read_rows(table, ["id", "department"]).sort_by("id").to_pylist()
    assert rows == [{"id": 1, "department": "Personal Care"}, {"id": 2, "department": "Women"}]


def test_rows_written_since_a_version_and_the_row_count_come_from_the_log(lake):
    uri, options = lake
    orders = _table(uri("orders"), ORDERS, _orders(), options)  # version 1: an append of 4 rows
    assert delta.row_count(orders) == 4
    assert delta.rows_written_since(orders, 1) == 0
    assert delta.rows_written_since(orders, 0) == 4

    changed = _staged(ORDERS, {"order_id": ["2", "5"], "created_at": ["2024-03-03 10:00:00", "2024-06-01 00:00:00"]})
    delta.merge_rows(orders, changed, ORDERS)  # version 2: one update, one insert
    assert delta.row_count(orders) == 5
    assert delta.rows_written_since(orders, 1) == 2
    assert delta.rows_written_since(orders, 0) == 6


def test_little_work_means_no_product_change_and_few_rows_written(lake):
    from pipeline_tasks.steps.transform.plan import LITTLE_WORK_SHARE, _little_work

    uri, options = lake
    products = _table(uri("products"), PRODUCTS, _staged(PRODUCTS, {"id": ["1"], "category": ["Jeans"]}), options)
    orders = _table(uri("orders"), ORDERS, _orders(), options)
    items = _table(uri("order_items"), ORDER_ITEMS, _items(), options)
    tables = {"products": products, "orders": orders, "order_items": items}
    seen = {name: table.version() for name, table in tables.items()}

    def little_work(since: dict[str, int]) -> bool:
        return _little_work(tables, since, {name: table.version() for name, table in tables.items()})

    assert little_work(seen)

    # One new order is 1 row written of 13 (5 orders, 8 items): within the share; the orders
    # written since version 0 are 5 of 13: not.
    assert 1 / 13 <= LITTLE_WORK_SHARE < 5 / 13
    delta.merge_rows(orders, _staged(ORDERS, {"order_id": ["9"], "created_at": ["2024-03-02 10:00:00"]}), ORDERS)
    assert little_work(seen)
    assert not little_work({**seen, "orders": 0})

    delta.merge_rows(products, _staged(PRODUCTS, {"id": ["1"], "category": ["Tops"]}), PRODUCTS)
    assert not little_work(seen)


def test_a_batch_of_new_keys_is_appended_and_one_with_existing_keys_merged(lake):
    uri, options = lake
    orders = _table(uri("orders"), ORDERS, _orders(), options)
    new = _staged(ORDERS, {"order_id": ["5", "6"], "created_at": ["2024-03-05 10:00:00", "2024-07-01 00:00:00"]})
    appended = delta.merge_rows(orders, new, ORDERS)
    assert (appended.inserted, appended.updated, appended.partitions_touched) == (2, 0, 2)
    assert orders.history(1)[0]["operation"] == "WRITE"
    assert sorted(delta.read_changes(orders, 1).column("order_id").to_pylist()) == [5, 6]

    # Order 2 moves from March to April; order 7 is new; order 5 is unchanged.
    mixed = _staged(
        ORDERS,
        {
            "order_id": ["2", "5", "7"],
            "created_at": ["2024-04-02 10:00:00", "2024-03-05 10:00:00", "2024-03-09 00:00:00"],
        },
    )
    merged = delta.merge_rows(orders, mixed, ORDERS)
    assert (merged.inserted, merged.updated, merged.unchanged) == (1, 1, 1)
    assert orders.history(1)[0]["operation"] == "MERGE"
    rows = delta_scan.read_rows(orders, ["order_id", "month"]).sort_by("order_id").to_pylist()
    assert [(r["order_id"], r["month"]) for r in rows] == [(1, 4), (2, 4), (3, None), (4, 5), (5, 3), (6, 7), (7, 3)]


def test_a_table_staged_without_the_sale_price_parts_is_refused_with_a_clear_error(tmp_path):
    older = pa.schema([f for f in staged_schema(ORDER_ITEMS) if not f.name.startswith("_sale_price_")])
    uri = str(tmp_path / "order_items")
    delta.DeltaTable.create(uri, schema=older, partition_by=list(ORDER_ITEMS.partition_by))
    with pytest.raises(StepFailed, match=r"lacks the column.*_sale_price_units.*older version"):
        delta.ensure_table(uri, ORDER_ITEMS, {})


def test_a_table_staged_before_event_times_gets_the_column_and_any_dated_row_replaces_its_rows(tmp_path):
    uri = str(tmp_path / "orders")
    older = _staged(ORDERS, {"order_id": ["1", "2"], "created_at": ["2024-03-01 10:00:00"] * 2, "user_id": ["7", "7"]})
    without = older.drop_columns(["_event_time"])
    delta.write_deltalake(uri, without, partition_by=list(ORDERS.partition_by))
    table = delta.ensure_table(uri, ORDERS, {})
    assert "_event_time" in table.schema().to_arrow().names
    when = datetime(2025, 3, 1, tzinfo=UTC)
    # Order 1 unchanged but dated: its time is recorded; order 2 changed.
    dated = stage_rows(
        pa.table(
            {
                n: pa.array(
                    [
                        {"order_id": o, "created_at": "2024-03-01 10:00:00", "user_id": u}.get(n, "")
                        for o, u in (("1", "7"), ("2", "8"))
                    ]
                )
                for n, _ in ORDERS.columns
            }
        ),
        ORDERS,
        event_time=when,
    )
    result = delta.merge_rows(table, dated, ORDERS)
    assert result.updated == 2
    rows = delta_scan.read_rows(table, ["order_id", "user_id", "_event_time"]).sort_by("order_id").to_pylist()
    assert [(r["order_id"], r["user_id"], r["_event_time"]) for r in rows] == [(1, 7, when), (2, 8, when)]
    # An older file's rows, rerun now, change nothing.
    stale = stage_rows(
        pa.table(
            {
                n: pa.array([{"order_id": "2", "created_at": "2024-03-01 10:00:00", "user_id": "9"}.get(n, "")])
                for n, _ in ORDERS.columns
            }
        ),
        ORDERS,
        event_time=datetime(2025, 1, 1, tzinfo=UTC),
    )
    assert (delta.merge_rows(table, stale, ORDERS).older, table.version()) == (1, table.version())
    assert delta_scan.read_rows(table, ["order_id", "user_id"]).sort_by("order_id").column("user_id").to_pylist() == [
        7,
        8,
    ]
