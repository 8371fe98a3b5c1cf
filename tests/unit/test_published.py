"""The published-KPI record: replacing days and reading them back."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

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


def _recorded() -> object:
    return published.replaced(
        published.empty(SPECS),
        {
            ORDERS: {("d1",): _order("d1", 2, "3.50"), ("d2",): _order("d2", 1, "1.00")},
            CATEGORIES: {("Tops", "d1"): _category("Tops", "d1", "3.50")},
        },
        None,
    )


def test_count_is_per_table():
    record = _recorded()
    assert (published.count(record, ORDERS), published.count(record, CATEGORIES)) == (2, 1)
    assert published.count(published.empty(SPECS), ORDERS) == 0


def test_a_table_equal_to_the_record_needs_nothing():
    found = [
        {"order_date": "d1", "total_orders": Decimal(2), "total_revenue": Decimal("3.5")},  # 3.5 is 3.50
        {"order_date": "d2", "total_orders": Decimal(1), "total_revenue": Decimal("1")},
    ]
    assert published.differences(ORDERS, _recorded(), found) == ([], [], 2)


def test_missing_changed_and_stale_items_are_put_or_deleted():
    found = [
        {"order_date": "d1", "total_orders": Decimal(3), "total_revenue": Decimal("3.50")},  # edited count
        {"order_date": "d9", "total_orders": Decimal(1), "total_revenue": Decimal("1")},  # not in the record
    ]  # d2 missing
    puts, deletes, matching = published.differences(ORDERS, _recorded(), found)
    assert puts == [
        {"order_date": "d1", "total_orders": Decimal(2), "total_revenue": Decimal("3.50")},
        {"order_date": "d2", "total_orders": Decimal(1), "total_revenue": Decimal("1.00")},
    ]
    assert all(isinstance(v, Decimal) for item in puts for k, v in item.items() if k != "order_date")
    assert (deletes, matching) == ([("d9",)], 0)


@pytest.mark.parametrize(
    "value",
    [Decimal("3.51"), Decimal("3.504"), "3.50", None, True],
    ids=["other cents", "a third decimal", "a string", "missing", "a boolean"],
)
def test_a_value_matches_only_the_same_number(value):
    found = [{"category": "Tops", "order_date": "d1", "daily_revenue": value}]
    puts, deletes, matching = published.differences(CATEGORIES, _recorded(), found)
    assert (len(puts), deletes, matching) == (1, [], 0)


def test_days_the_record_does_not_vouch_for_are_left_alone():
    found = [
        {"order_date": "d2", "total_orders": Decimal(7), "total_revenue": Decimal("7")},  # dirty: left alone
        {"order_date": "d1", "total_orders": Decimal(2), "total_revenue": Decimal("3.50")},
    ]
    assert published.differences(ORDERS, _recorded(), found, skip_days=["d2"]) == ([], [], 1)
    # Nor is an item on a dirty day deleted, or one put there.
    assert published.differences(ORDERS, _recorded(), [], skip_days=["d1", "d2"]) == ([], [], 0)


def test_the_table_state_round_trips_through_json():
    state = published.TableState({"TableArn": "arn:x", "CreationDateTime": "2026-01-01T00:00:00+00:00"}, 3)
    assert published.TableState.from_json(json.loads(json.dumps(state.to_json()))) == state


def test_a_check_fails_on_another_table_or_count():
    ok = published.TableCheck("O", {"TableId": "a"}, False, 2, 2)
    assert ok.matches
    assert not published.TableCheck("O", {"TableId": "b"}, True, 2, 2).matches
    assert not published.TableCheck("O", {"TableId": "a"}, False, 2, 0).matches
