"""The dashboard's pure frames and charts, and the CategoryKPIs by-date index declaration."""

from __future__ import annotations

import math
from decimal import Decimal

import pandas as pd
import pytest
from matplotlib.figure import Figure

from pipeline_tasks import explore
from pipeline_tasks.io.dynamodb import TableSpec, table_definition
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps.transform import category_kpis_spec, order_kpis_spec
from pipeline_tasks.transforms.kpis import CATEGORY_KPI_COLUMNS, ORDER_KPI_COLUMNS

ORDER_KEY, CATEGORY_KEY = ("order_date",), ("category", "order_date")


def _orders(*rows: tuple[str, int, float, float]) -> pd.DataFrame:
    """OrderKPIs frame from (order_date, total_orders, total_revenue, return_rate)."""
    items = [
        {
            "order_date": day,
            "total_orders": orders,
            "total_revenue": revenue,
            "total_items_sold": orders,
            "unique_customers": orders,
            "return_rate": rate,
        }
        for day, orders, revenue, rate in rows
    ]
    return explore.kpi_frame(items, ORDER_KEY, ORDER_KPI_COLUMNS)


def _categories(*rows: tuple[str, str, float, float]) -> pd.DataFrame:
    """CategoryKPIs frame from (category, order_date, daily_revenue, avg_return_rate)."""
    items = [
        {"category": c, "order_date": d, "daily_revenue": r, "avg_order_value": r, "avg_return_rate": rate}
        for c, d, r, rate in rows
    ]
    return explore.kpi_frame(items, CATEGORY_KEY, CATEGORY_KPI_COLUMNS)


def test_kpi_frame_types_order_and_columns():
    items = [
        {
            "order_date": day,
            "total_orders": Decimal(orders),
            "total_revenue": Decimal("10.25"),
            "total_items_sold": Decimal(3),
            "unique_customers": Decimal(1),
            "return_rate": Decimal("33.33"),
            "execution_id": "e-1",
            "updated_at": "2025-03-02T00:00:00+00:00",
        }
        for day, orders in (("2025-03-02", 2), ("2025-03-01", 1))
    ]
    frame = explore.kpi_frame(items, ORDER_KEY, ORDER_KPI_COLUMNS)
    assert list(frame.columns) == ["order_date", *ORDER_KPI_COLUMNS]
    assert frame.dtypes.astype(str).to_dict() == {
        "order_date": "object",
        "total_orders": "int64",
        "total_revenue": "float64",
        "total_items_sold": "int64",
        "unique_customers": "int64",
        "return_rate": "float64",
    }
    assert frame["order_date"].tolist() == ["2025-03-01", "2025-03-02"]
    assert frame["total_orders"].tolist() == [1, 2]
    assert frame["return_rate"].tolist() == [33.33, 33.33]


@pytest.mark.parametrize(("key", "values"), [(ORDER_KEY, ORDER_KPI_COLUMNS), (CATEGORY_KEY, CATEGORY_KPI_COLUMNS)])
def test_kpi_frame_of_no_items_keeps_columns_and_types(key, values):
    frame = explore.kpi_frame([], key, values)
    assert frame.empty
    assert list(frame.columns) == [*key, *values]
    assert all(str(frame[c].dtype) in ("int64", "float64") for c in values)


def test_daily_trend_sorts_and_divides_revenue_by_orders():
    trend = explore.daily_trend(_orders(("2025-03-02", 4, 100.0, 25.0), ("2025-03-01", 2, 30.0, 0.0)))
    assert list(trend.columns) == ["order_date", "total_revenue", "total_orders", "avg_order_value", "return_rate"]
    assert trend.to_dict("records") == [
        {
            "order_date": "2025-03-01",
            "total_revenue": 30.0,
            "total_orders": 2,
            "avg_order_value": 15.0,
            "return_rate": 0.0,
        },
        {
            "order_date": "2025-03-02",
            "total_revenue": 100.0,
            "total_orders": 4,
            "avg_order_value": 25.0,
            "return_rate": 25.0,
        },
    ]


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        pytest.param(_orders(), [], id="empty"),
        pytest.param(_orders(("2025-03-01", 0, 0.0, 0.0)), [math.nan], id="no-orders"),
        pytest.param(_orders(("2025-03-01", 3, 10.0, 0.0)), [3.33], id="rounded"),
    ],
)
def test_daily_trend_edge_cases(frame, expected):
    trend = explore.daily_trend(frame)
    assert trend["avg_order_value"].dtype == "float64"
    assert trend["avg_order_value"].tolist() == pytest.approx(expected, nan_ok=True)


CATEGORIES = _categories(
    ("Jeans", "2025-03-01", 60.0, 10.0),
    ("Jeans", "2025-03-02", 20.0, 30.0),
    ("Tops", "2025-03-01", 80.0, 0.0),
    ("Socks", "2025-03-02", 20.0, 50.0),
    ("Hats", "2025-03-02", 20.0, 0.0),
)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, []),
        (1, [("Jeans", 80.0, 40.0)]),
        (3, [("Jeans", 80.0, 40.0), ("Tops", 80.0, 40.0), ("Hats", 20.0, 10.0)]),  # ties by name
        (10, [("Jeans", 80.0, 40.0), ("Tops", 80.0, 40.0), ("Hats", 20.0, 10.0), ("Socks", 20.0, 10.0)]),
    ],
)
def test_top_categories(n, expected):
    top = explore.top_categories(CATEGORIES, n)
    assert list(top.columns) == ["category", "revenue", "revenue_share_pct"]
    assert list(top.itertuples(index=False, name=None)) == expected


def test_top_categories_of_an_empty_frame_and_a_negative_n():
    top = explore.top_categories(_categories())
    assert top.empty and list(top.columns) == ["category", "revenue", "revenue_share_pct"]
    with pytest.raises(ValueError, match="zero or more"):
        explore.top_categories(CATEGORIES, -1)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        pytest.param(_categories(), [], id="empty"),
        pytest.param(
            CATEGORIES,
            [("Socks", 1, 50.0, 50.0), ("Jeans", 2, 20.0, 30.0), ("Hats", 1, 0.0, 0.0), ("Tops", 1, 0.0, 0.0)],
            id="mean-of-daily-rates",
        ),
        pytest.param(
            _categories(
                ("Jeans", "2025-03-01", 1.0, 10.0),
                ("Jeans", "2025-03-02", 1.0, 0.0),
                ("Jeans", "2025-03-03", 1.0, 0.01),
            ),
            [("Jeans", 3, 3.34, 10.0)],
            id="rounded",
        ),
    ],
)
def test_return_rates(frame, expected):
    rates = explore.return_rates(frame)
    assert list(rates.columns) == ["category", "count_days", "avg_daily_return_rate", "max_daily_return_rate"]
    assert rates["count_days"].dtype == "int64"
    assert list(rates.itertuples(index=False, name=None)) == expected


ORDERS = _orders(("2025-03-01", 2, 30.0, 0.0), ("2025-03-02", 4, 100.0, 25.0))


@pytest.mark.parametrize(
    ("chart", "frames", "axes"),
    [
        (explore.revenue_and_orders_chart, (ORDERS,), 2),  # revenue and its twin for orders
        (explore.revenue_and_orders_chart, (_orders(),), 1),
        (explore.average_order_value_chart, (ORDERS,), 1),
        (explore.average_order_value_chart, (_orders(),), 1),
        (explore.top_categories_chart, (CATEGORIES,), 1),
        (explore.top_categories_chart, (_categories(),), 1),
        (explore.return_rate_chart, (ORDERS, CATEGORIES), 2),
        (explore.return_rate_chart, (_orders(), _categories()), 2),
    ],
)
def test_charts_return_a_figure_that_renders(chart, frames, axes, tmp_path):
    figure = chart(*frames)
    assert isinstance(figure, Figure)
    assert len(figure.axes) == axes
    figure.savefig(tmp_path / "chart.png")  # draws every artist: an empty frame must not fail here either


def test_category_table_declares_the_by_date_index():
    definition = table_definition(category_kpis_spec(Settings()))
    assert definition["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "order_date-category-index",
            "KeySchema": [
                {"AttributeName": "order_date", "KeyType": "HASH"},
                {"AttributeName": "category", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ]
    assert "ProvisionedThroughput" not in definition["GlobalSecondaryIndexes"][0]
    assert sorted(a["AttributeName"] for a in definition["AttributeDefinitions"]) == ["category", "order_date"]
    assert "GlobalSecondaryIndexes" not in table_definition(order_kpis_spec(Settings()))


def test_an_inverted_index_needs_a_range_key():
    with pytest.raises(ValueError, match="range key"):
        TableSpec("T", ("order_date",), ("v",), inverted_index="by-v")
