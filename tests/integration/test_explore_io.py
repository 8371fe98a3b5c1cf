"""The dashboard's loaders and ``dynamodb.query_range`` against KPI tables on a moto server."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pandas as pd
import pytest

from pipeline_tasks import explore
from pipeline_tasks.errors import ConfigurationError
from pipeline_tasks.io import aws, dynamodb
from pipeline_tasks.steps.transform import category_kpis_spec, order_kpis_spec

pytestmark = [pytest.mark.aws]

START, END = date(2025, 3, 1), date(2025, 3, 10)
EXTRA = {"execution_id": "e-1", "updated_at": "2025-03-11T00:00:00+00:00"}

#: (order_date, total_orders, total_revenue, total_items_sold, unique_customers, return_rate)
ORDERS = [
    ("2025-02-28", 9, "999.99", 9, 9, "11.11"),  # the day before the range
    ("2025-03-01", 2, "150.50", 3, 2, "50.00"),
    ("2025-03-04", 1, "19.99", 1, 1, "0.00"),
    ("2025-03-10", 3, "300.00", 5, 2, "33.33"),
    ("2025-03-11", 4, "10.00", 4, 4, "0.00"),  # the day after
]
#: (category, order_date, daily_revenue, avg_order_value, avg_return_rate)
CATEGORIES = [
    ("Jeans", "2025-02-28", "99.00", "99.00", "0.00"),
    ("Jeans", "2025-03-01", "100.50", "50.25", "50.00"),
    ("Jeans", "2025-03-10", "200.00", "100.00", "0.00"),
    ("Tops & Tees", "2025-03-01", "50.00", "50.00", "0.00"),
    ("Tops & Tees", "2025-03-04", "19.99", "19.99", "0.00"),
    ("Unknown", "2025-03-10", "100.00", "100.00", "100.00"),
    ("Unknown", "2025-03-11", "10.00", "10.00", "0.00"),
]


def _order_item(row):
    day, orders, revenue, items, customers, rate = row
    return {
        "order_date": day,
        "total_orders": orders,
        "total_revenue": Decimal(revenue),
        "total_items_sold": items,
        "unique_customers": customers,
        "return_rate": Decimal(rate),
    }


def _category_item(row):
    category, day, revenue, value, rate = row
    return {
        "category": category,
        "order_date": day,
        "daily_revenue": Decimal(revenue),
        "avg_order_value": Decimal(value),
        "avg_return_rate": Decimal(rate),
    }


@pytest.fixture
def seeded(settings):
    resource = aws.resource(settings, "dynamodb")
    for row in ORDERS:
        resource.Table(settings.order_kpis_table).put_item(Item={**_order_item(row), **EXTRA})
    for row in CATEGORIES:
        resource.Table(settings.category_kpis_table).put_item(Item={**_category_item(row), **EXTRA})
    return settings


def _expected_orders(rows):
    frame = pd.DataFrame([_order_item(r) for r in rows])
    return frame.astype({c: "float64" for c in ("total_revenue", "return_rate")} | {"total_orders": "int64"})


def _expected_categories(rows):
    frame = pd.DataFrame([_category_item(r) for r in rows])
    return frame.astype({c: "float64" for c in ("daily_revenue", "avg_order_value", "avg_return_rate")})


def test_order_kpis_are_the_items_of_the_range(seeded):
    frame = explore.order_kpis(seeded, START, END)
    pd.testing.assert_frame_equal(frame, _expected_orders(ORDERS[1:4]))


@pytest.mark.parametrize(
    ("categories", "rows"),
    [
        pytest.param(["Jeans"], CATEGORIES[1:3], id="one"),
        pytest.param(["Unknown", "Jeans", "Jeans"], [*CATEGORIES[1:3], CATEGORIES[5]], id="several-unsorted-repeated"),
        pytest.param(["Shoes"], [], id="absent"),
        pytest.param(None, CATEGORIES[1:6], id="every-category-by-date-index"),
    ],
)
def test_category_kpis_are_the_items_of_the_range(seeded, categories, rows):
    frame = explore.category_kpis(seeded, START, END, categories)
    if rows:
        pd.testing.assert_frame_equal(frame, _expected_categories(rows))
    else:
        assert frame.empty and list(frame.columns) == ["category", "order_date", *category_kpis_spec(seeded).values]


def test_by_date_index_and_per_category_queries_agree(seeded):
    every_category = sorted({row[0] for row in CATEGORIES})
    by_day = explore.category_kpis(seeded, START, END)
    by_category = explore.category_kpis(seeded, START, END, every_category)
    pd.testing.assert_frame_equal(by_day, by_category)
    assert set(by_day["order_date"]) == {"2025-03-01", "2025-03-04", "2025-03-10"}


@pytest.mark.parametrize(("start", "end", "days"), [(END, END, 1), (date(2025, 3, 5), date(2025, 3, 9), 0)])
def test_short_ranges(seeded, start, end, days):
    assert len(explore.order_kpis(seeded, start, end)) == days
    assert explore.category_kpis(seeded, start, end).empty == (days == 0)


def test_a_range_that_ends_before_it_starts_is_refused(seeded):
    with pytest.raises(ValueError, match="after it ends"):
        explore.order_kpis(seeded, END, START)


@pytest.mark.parametrize(
    ("partition", "low", "high", "index", "expected"),
    [
        ("Jeans", "2025-03-01", "2025-03-10", False, [("Jeans", "2025-03-01"), ("Jeans", "2025-03-10")]),
        ("Jeans", "2025-03-02", None, False, [("Jeans", "2025-03-10")]),
        ("Jeans", None, "2025-03-01", False, [("Jeans", "2025-02-28"), ("Jeans", "2025-03-01")]),
        ("Unknown", None, None, False, [("Unknown", "2025-03-10"), ("Unknown", "2025-03-11")]),
        ("2025-03-01", None, None, True, [("Jeans", "2025-03-01"), ("Tops & Tees", "2025-03-01")]),
        ("2025-03-10", "K", "V", True, [("Unknown", "2025-03-10")]),
    ],
)
def test_query_range(seeded, partition, low, high, index, expected):
    spec = category_kpis_spec(seeded)
    client = aws.client(seeded, "dynamodb")
    items = dynamodb.query_range(client, spec, partition, low, high, index=spec.inverted_index if index else None)
    assert [spec.key_of(item) for item in items] == expected
    assert all(item.keys() == {*spec.key, *spec.values, *EXTRA} for item in items)


def test_a_table_without_the_index_takes_writes_and_per_category_reads(settings):
    """A CategoryKPIs table created before the index existed."""
    client = aws.client(settings, "dynamodb")
    client.delete_table(TableName=settings.category_kpis_table)
    client.get_waiter("table_not_exists").wait(TableName=settings.category_kpis_table)
    dynamodb.ensure_table(client, replace(category_kpis_spec(settings), inverted_index=None))

    spec = category_kpis_spec(settings)
    dynamodb.write_diff(aws.resource(settings, "dynamodb"), spec, [_category_item(r) for r in CATEGORIES], [], EXTRA)

    frame = explore.category_kpis(settings, START, END, ["Jeans"])
    pd.testing.assert_frame_equal(frame, _expected_categories(CATEGORIES[1:3]))
    with pytest.raises(ConfigurationError, match="order_date-category-index"):
        explore.category_kpis(settings, START, END)


def test_provisioned_tables_and_their_indexes(settings):
    client = aws.client(settings, "dynamodb")
    orders = client.describe_table(TableName=settings.order_kpis_table)["Table"]
    categories = client.describe_table(TableName=settings.category_kpis_table)["Table"]
    assert orders.get("GlobalSecondaryIndexes", []) == []
    [index] = categories["GlobalSecondaryIndexes"]
    assert index["IndexName"] == settings.category_by_date_index
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["order_date", "category"]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    assert order_kpis_spec(settings).inverted_index is None


def test_reads_for_a_diff_return_the_key_and_kpi_values_only(seeded):
    client = aws.client(seeded, "dynamodb")
    spec = category_kpis_spec(seeded)
    keys = [("Jeans", "2025-03-01"), ("Unknown", "2025-03-10"), ("Jeans", "2025-03-02")]  # the last one is missing

    found = dynamodb.get_items(client, spec, keys, spec.diffed)
    assert found == {
        ("Jeans", "2025-03-01"): _category_item(CATEGORIES[1]),
        ("Unknown", "2025-03-10"): _category_item(CATEGORIES[5]),
    }
    scanned = list(dynamodb.scan_items(client, spec, spec.diffed))
    assert sorted(scanned, key=spec.key_of) == sorted(map(_category_item, CATEGORIES), key=spec.key_of)
    # Without a projection, every attribute comes back.
    assert dynamodb.get_items(client, spec, keys[:1])[keys[0]] == {**_category_item(CATEGORIES[1]), **EXTRA}


def test_a_diff_spread_over_several_batch_writers_lands_exactly(seeded):
    """More than one BatchWriteItem per writer: every put lands, every delete goes, the rest stays."""
    client = aws.client(seeded, "dynamodb")
    spec = category_kpis_spec(seeded)
    puts = [
        {
            "category": f"C{n % 7}",
            "order_date": f"2024-{1 + n // 28:02d}-{1 + n % 28:02d}",
            "daily_revenue": Decimal(n) / 4,
            "avg_order_value": Decimal("1.25"),
            "avg_return_rate": Decimal(n % 3),
        }
        for n in range(dynamodb.WRITERS * 40 + 3)
    ]
    deletes = [spec.key_of(_category_item(row)) for row in CATEGORIES[:2]]

    dynamodb.write_diff(aws.resource(seeded, "dynamodb"), spec, puts, deletes, EXTRA)

    stored = {spec.key_of(item): item for item in dynamodb.scan_items(client, spec, spec.diffed)}
    kept = {spec.key_of(_category_item(row)): _category_item(row) for row in CATEGORIES[2:]}
    assert stored == {spec.key_of(item): item for item in puts} | kept
