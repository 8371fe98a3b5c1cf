"""Final KPI values (§5): exact division and half-up rounding to 2 decimals."""

from decimal import Decimal
from fractions import Fraction

import pytest

from pipeline_tasks.io.dynamodb import TableSpec, diff_items
from pipeline_tasks.money import round_half_up
from pipeline_tasks.transforms.kpis import category_kpi_items, order_kpi_items


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0.005"), "0.01"),
        (Decimal("0.004999999999999999"), "0.00"),
        (Decimal("2.675"), "2.68"),  # binary floats would give 2.67
        (Decimal("1.115"), "1.12"),
        (Fraction(1, 3) * 100, "33.33"),
        (Fraction(2, 3) * 100, "66.67"),
        (Fraction(1, 8), "0.13"),
        (0, "0.00"),
        (Decimal("-1.005"), "-1.01"),
    ],
)
def test_round_half_up(value, expected):
    assert round_half_up(value) == Decimal(expected)


def test_order_kpi_items_from_aggregates():
    [item] = order_kpi_items(
        [
            {
                "order_date": "2024-01-02",
                "total_orders": 3,
                "revenue": Decimal("100.005"),
                "items": 4,
                "unique_customers": 2,
                "returned_orders": 1,
            }
        ]
    ).values()
    assert item == {
        "order_date": "2024-01-02",
        "total_orders": 3,
        "total_revenue": Decimal("100.01"),
        "total_items_sold": 4,
        "unique_customers": 2,
        "return_rate": Decimal("33.33"),
    }


def test_orders_without_items_have_zero_revenue():
    [item] = order_kpi_items(
        [
            {
                "order_date": "2024-01-02",
                "total_orders": 1,
                "revenue": None,
                "items": None,
                "unique_customers": 1,
                "returned_orders": 0,
            }
        ]
    ).values()
    assert item["total_revenue"] == Decimal("0.00") and item["total_items_sold"] == 0


def test_average_order_value_is_rounded_once_from_the_exact_sum():
    [item] = category_kpi_items(
        [
            {
                "category": "Tops",
                "order_date": "2024-01-02",
                "revenue": Decimal("100.01"),
                "orders": 2,
                "items": 3,
                "returned_items": 2,
            }
        ]
    ).values()
    assert item["avg_order_value"] == Decimal("50.01")  # 50.005 half-up
    assert item["avg_return_rate"] == Decimal("66.67")


def test_diff_puts_changed_deletes_stale_and_skips_unchanged():
    spec = TableSpec("T", ("order_date",), ("v",))
    desired = {("d1",): {"order_date": "d1", "v": Decimal("1.50")}, ("d2",): {"order_date": "d2", "v": Decimal("2")}}
    existing = {("d1",): {"order_date": "d1", "v": Decimal("1.5")}, ("d3",): {"order_date": "d3", "v": Decimal("3")}}
    puts, deletes, unchanged = diff_items(spec, desired, existing)
    assert [p["order_date"] for p in puts] == ["d2"]
    assert deletes == [("d3",)]
    assert unchanged == 1
