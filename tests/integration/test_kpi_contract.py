"""Every KPI rule of the contract, end to end: CSV in S3 -> Delta -> Spark -> DynamoDB.

Each scenario runs real steps (moto over HTTP, delta-rs, local Spark). After every
batch the tables must equal the independent reference implementation exactly
(§6: no missing, wrong or stale item); explicit values pin the rule itself.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tests.builders import csv_bytes, item, order, product

pytestmark = [pytest.mark.spark, pytest.mark.aws]


def test_basic_kpis_and_unknown_categories(pipeline):
    batch = [
        (
            "products.csv",
            csv_bytes(
                "products",
                [
                    product(1, "Tops"),
                    product(2, None),  # null category -> Unknown
                    product(3, "Jeans", cost="0"),  # excluded product -> its items are Unknown
                    product(4, "Socks", retail=None),  # excluded
                ],
            ),
        ),
        (
            "orders.csv",
            csv_bytes(
                "orders",
                [
                    order(10, "2024-03-01 10:00:00", user=1, status="Returned"),
                    order(11, "2024-03-01 11:00:00", user=1),
                    order(12, "2024-03-01 12:00:00", user=2, status="SHIPPED"),  # no items: still an order
                ],
            ),
        ),
        (
            "order_items.csv",
            csv_bytes(
                "order_items",
                [
                    item(100, 10, pid=1, price="10.005"),
                    item(101, 10, pid=2, price="20", status="RETURNED"),
                    item(102, 11, pid=3, price="1.10"),
                    item(103, 11, pid=99, price="2.20"),  # product missing -> Unknown
                    item(104, 11, pid=4, price="3.30"),
                ],
            ),
        ),
    ]
    orders, categories = pipeline.run_and_check([batch])
    assert orders == {
        "2024-03-01": {
            "total_orders": 3,
            "total_revenue": D("36.61"),
            "total_items_sold": 5,
            "unique_customers": 2,
            "return_rate": D("33.33"),
        }
    }
    assert categories[("Tops", "2024-03-01")] == {
        "daily_revenue": D("10.01"),
        "avg_order_value": D("10.01"),
        "avg_return_rate": D("0"),
    }
    assert categories[("Unknown", "2024-03-01")] == {
        "daily_revenue": D("26.60"),
        "avg_order_value": D("13.30"),
        "avg_return_rate": D("25"),
    }
    assert set(categories) == {("Tops", "2024-03-01"), ("Unknown", "2024-03-01")}


def test_cleaning_excludes_orders_and_items(pipeline):
    batch = [
        (
            "orders.csv",
            csv_bytes(
                "orders",
                [
                    order(1, "2024-03-02 00:00:00"),
                    order(2, "not a time"),  # created_at null -> excluded
                    order(3, "2024-03-02 00:00:00", items=0),  # num_of_item <= 0 -> excluded
                    order(4, "2024-03-02 00:00:00", items=None),  # num_of_item null -> excluded
                    order(5, "2024-03-02 00:00:00", items=-1),
                ],
            ),
        ),
        (
            "order_items.csv",
            csv_bytes(
                "order_items",
                [
                    item(1, 1, price="5"),
                    item(2, 1, price="0"),  # sale_price <= 0 -> excluded
                    item(3, 1, price="-5"),
                    item(4, 1, price=None),
                    item(5, 1, pid=None),  # product_id null -> excluded
                    item(6, 2, price="7"),  # order excluded -> not a fact
                    item(7, 3, price="7"),
                    item(8, 404, price="7"),  # order missing -> not a fact
                ],
            ),
        ),
    ]
    orders, _categories = pipeline.run_and_check([batch])
    assert orders["2024-03-02"]["total_orders"] == 1
    assert orders["2024-03-02"]["total_items_sold"] == 1
    assert orders["2024-03-02"]["total_revenue"] == D("5")


@pytest.mark.parametrize(
    ("created_at", "day"),
    [
        ("2024-03-01 23:30:00-02:00", "2024-03-02"),
        ("2024-03-02T00:30:00+02:00", "2024-03-01"),
        ("2024-03-01 23:59:59.999999 UTC", "2024-03-01"),
        ("2024-03-01T23:59:59Z", "2024-03-01"),
        ("2024-03-01 23:59:59", "2024-03-01"),
    ],
)
def test_order_date_is_the_utc_day_of_the_orders_created_at(pipeline, created_at, day):
    batch = [
        ("orders.csv", csv_bytes("orders", [order(1, created_at)])),
        # the item's own created_at is another day: the order's day counts
        ("order_items.csv", csv_bytes("order_items", [item(1, 1, created_at="2030-01-01 00:00:00")])),
    ]
    orders, categories = pipeline.run_and_check([batch])
    assert list(orders) == [day]
    assert list(categories) == [("Unknown", day)]


def test_upserts_moved_orders_and_no_stale_items(pipeline):
    first = [
        # A partition value that needs escaping in paths (delta-rs' change feed mis-reads these).
        ("products.csv", csv_bytes("products", [product(1, "Tops"), product(2, "Jeans", department="Personal Care")])),
        ("orders.csv", csv_bytes("orders", [order(1, "2024-03-01 10:00:00"), order(2, "2024-03-05 10:00:00")])),
        ("order_items.csv", csv_bytes("order_items", [item(1, 1, pid=1), item(2, 2, pid=2)])),
    ]
    second = [  # order 1 moves to March 3rd: March 1st must disappear from both tables
        ("orders_update.csv", csv_bytes("orders", [order(1, "2024-03-03 10:00:00", status="Returned")])),
    ]
    third = [  # product 2 changes category: Jeans rows become Denim rows
        ("products_update.csv", csv_bytes("products", [product(2, "Denim", department="Personal Care")])),
    ]
    fourth = [  # item 2 moves to order 1; order 2 keeps no items
        ("order_items_fix.csv", csv_bytes("order_items", [item(2, 1, pid=2, price="30")])),
    ]
    orders, categories = pipeline.run_and_check([first, second, third, fourth])
    assert set(orders) == {"2024-03-03", "2024-03-05"}
    assert orders["2024-03-05"]["total_items_sold"] == 0
    assert set(categories) == {("Tops", "2024-03-03"), ("Denim", "2024-03-03")}
    report = pipeline.full_recompute()
    assert all(t.put == 0 and t.deleted == 0 for t in report.tables.values())


def test_last_row_wins_within_a_file_across_files_and_batches(pipeline):
    batch = [
        ("orders_a.csv", csv_bytes("orders", [order(1, user=1), order(1, user=2)])),  # last row in file wins
        ("orders_b.csv", csv_bytes("orders", [order(1, user=3)])),  # later file in batch wins
        ("order_items.csv", csv_bytes("order_items", [item(1, 1, price="1"), item(1, 1, price="2")])),
    ]
    later = [("orders_c.csv", csv_bytes("orders", [order(1, user=4, status="returned")]))]  # later batch wins
    orders, _ = pipeline.run_and_check([batch, later])
    assert orders["2024-03-01"]["total_revenue"] == D("2")
    assert orders["2024-03-01"]["return_rate"] == D("100")


def test_processing_the_same_file_twice_changes_nothing(pipeline):
    batch = [
        ("orders.csv", csv_bytes("orders", [order(1), order(2, "2024-03-02 00:00:00")])),
        ("order_items.csv", csv_bytes("order_items", [item(1, 1), item(2, 2)])),
    ]
    pipeline.run_and_check([batch])
    before = pipeline.order_kpis(), pipeline.category_kpis()
    execution = pipeline.run_batch(batch)
    assert execution.status == "SUCCEEDED"
    assert (pipeline.order_kpis(), pipeline.category_kpis()) == before
    report = pipeline.full_recompute()
    assert all(t.put == 0 and t.deleted == 0 for t in report.tables.values())


def test_rows_with_bad_keys_or_field_counts_are_not_staged(pipeline):
    header = "order_id,user_id,status,created_at,returned_at,shipped_at,delivered_at,num_of_item"
    data = "\n".join(
        [
            header,
            "1,1,Complete,2024-03-01 10:00:00,,,,1",
            "2,1,Complete,2024-03-01 10:00:00,,,",  # wrong field count
            "x,1,Complete,2024-03-01 10:00:00,,,,1",  # key not an integer
            ",1,Complete,2024-03-01 10:00:00,,,,1",  # key missing
        ]
    ).encode()
    orders, _ = pipeline.run_and_check([[("orders.csv", data)]])
    assert orders["2024-03-01"]["total_orders"] == 1
