"""The published-KPI record: replacing days and reading them back."""

from __future__ import annotations

from decimal import Decimal

from pipeline_tasks.io import published
from pipeline_tasks.io.dynamodb import TableSpec

ORDERS = TableSpec("O", ("order_date",), ("total_orders", "total_revenue"))
CATEGORIES = TableSpec("C", ("category", "order_date"), ("daily_revenue",))
SPECS = (ORDERS, CATEGORIES)


def _order(day: str, orders: int, revenue: str) -> dict:
    return {"order_date": day, "total_orders": orders, "total_revenue": Decimal(revenue)}


def _category(name: str, day: str, revenue: str) -> dict:
    return {"category": name, "order_date": day, "daily_revenue": Decimal(revenue)}


def test_the_schema_holds_every_key_and_value_once_as_strings():
    schema = published.schema(SPECS)
    assert schema.names == ["table", "order_date", "total_orders", "total_revenue", "category", "daily_revenue"]
    assert {str(field.type) for field in schema} == {"string"}


def test_replacing_days_keeps_other_days_and_drops_stale_items():
    first = published.replaced(
        published.empty(SPECS),
        {
            ORDERS: {("d1",): _order("d1", 2, "3.50"), ("d2",): _order("d2", 1, "1.00")},
            CATEGORIES: {
                ("Tops", "d1"): _category("Tops", "d1", "3.50"),
                ("Jeans", "d2"): _category("Jeans", "d2", "1"),
            },
        },
        None,
    )
    assert published.items_on(first, ORDERS, ["d1"]) == {
        ("d1",): {"order_date": "d1", "total_orders": "2", "total_revenue": "3.50"}
    }

    # d1 is recomputed: Tops left it (stale), Socks arrived; d2 is not touched.
    second = published.replaced(
        first,
        {ORDERS: {("d1",): _order("d1", 1, "9.99")}, CATEGORIES: {("Socks", "d1"): _category("Socks", "d1", "9.99")}},
        ["d1"],
    )
    assert set(published.items_on(second, CATEGORIES, ["d1", "d2"])) == {("Socks", "d1"), ("Jeans", "d2")}
    assert published.items_on(second, ORDERS, ["d1"])[("d1",)]["total_revenue"] == "9.99"
    assert published.items_on(second, ORDERS, ["d2"])[("d2",)]["total_orders"] == "1"
    assert second.num_rows == 4


def test_a_full_replacement_drops_every_day():
    first = published.replaced(published.empty(SPECS), {ORDERS: {("d1",): _order("d1", 2, "3.50")}}, None)
    second = published.replaced(first, {ORDERS: {("d2",): _order("d2", 1, "1")}, CATEGORIES: {}}, None)
    assert published.items_on(second, ORDERS, ["d1", "d2"]) == {
        ("d2",): {"order_date": "d2", "total_orders": "1", "total_revenue": "1"}
    }
