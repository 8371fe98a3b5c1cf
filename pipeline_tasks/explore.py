"""The analysts' view of the KPI tables: load a date range, summarise it, chart it.

Loaders (I/O) read DynamoDB through the tables' access patterns, never a Scan:

- OrderKPIs: BatchGetItem of every day of the range;
- CategoryKPIs of chosen categories: one Query per category, ``order_date`` BETWEEN the bounds;
- CategoryKPIs of every category: one Query per day on the by-date index
  (``Settings.category_by_date_index``).

They return one row per KPI item: the key columns, then the KPI columns in contract
order (§5), money and rates as float, counts as int64. Frames and charts below them are
pure: a loader's frame in, a DataFrame or a matplotlib Figure out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
from botocore.exceptions import ClientError

from pipeline_tasks.contract import Measure, measure_of
from pipeline_tasks.errors import ConfigurationError
from pipeline_tasks.io import aws, dynamodb
from pipeline_tasks.io.kpi_tables import category_kpis_spec, order_kpis_spec
from pipeline_tasks.settings import Settings

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


# --- Loaders (I/O) -------------------------------------------------------------------


def order_kpis(settings: Settings, start: date, end: date) -> pd.DataFrame:
    """The OrderKPIs of the days from ``start`` to ``end``, both included.

    One BatchGetItem key per day (consistent reads); days without orders have no item
    and no row.

    Args:
        settings: Where the tables are.
        start: First day of the range.
        end: Last day of the range.

    Returns:
        One row per ``order_date`` (a ``YYYY-MM-DD`` string), sorted by it: ``order_date``,
        ``total_orders``, ``total_revenue``, ``total_items_sold``, ``unique_customers``,
        ``return_rate``.
    """
    days = _days(start, end)
    spec = order_kpis_spec(settings)
    client = aws.client(settings, "dynamodb")
    found = dynamodb.get_items(client, spec, [(day,) for day in days])
    return kpi_frame(found.values(), spec.key, spec.values)


def category_kpis(settings: Settings, start: date, end: date, categories: Sequence[str] | None = None) -> pd.DataFrame:
    """The CategoryKPIs of the days from ``start`` to ``end``, both included.

    With ``categories``, one consistent Query per category on the table; without, one
    Query per day on the by-date index, which DynamoDB keeps eventually consistent (an
    item written a moment ago may be missing).

    Args:
        settings: Where the tables are, and the name of the by-date index.
        start: First day of the range.
        end: Last day of the range.
        categories: The categories to read; None for every category.

    Returns:
        One row per (``category``, ``order_date``), sorted by both: ``category``,
        ``order_date``, ``daily_revenue``, ``avg_order_value``, ``avg_return_rate``.

    Raises:
        ConfigurationError: ``categories`` is None and the table has no by-date index.
    """
    days = _days(start, end)
    spec = category_kpis_spec(settings)
    client = aws.client(settings, "dynamodb")
    if categories is not None:
        low, high = start.isoformat(), end.isoformat()
        items = [item for c in dict.fromkeys(categories) for item in dynamodb.query_range(client, spec, c, low, high)]
        return kpi_frame(items, spec.key, spec.values)
    index = settings.category_by_date_index
    try:
        items = [item for day in days for item in dynamodb.query_range(client, spec, day, None, None, index=index)]
    except ClientError as error:
        # DynamoDB and moto word (and code) it differently, but both name the missing index.
        if index not in error.response.get("Error", {}).get("Message", ""):
            raise
        raise ConfigurationError(f"{spec.name} has no index {index!r}: create it, or pass the categories") from error
    return kpi_frame(items, spec.key, spec.values)


def _days(start: date, end: date) -> list[str]:
    if start > end:
        raise ValueError(f"the range starts ({start}) after it ends ({end})")
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


# --- Frames (pure) -------------------------------------------------------------------


def kpi_frame(items: Iterable[Mapping[str, Any]], key: Sequence[str], values: Sequence[str]) -> pd.DataFrame:
    """KPI items as a frame: the key columns, then the KPI columns, sorted by the key.

    Counts become int64, money and rates float; other attributes (``execution_id``,
    ``updated_at``) are left out.
    """
    columns = [*key, *values]
    frame = pd.DataFrame([[item[c] for c in columns] for item in items], columns=columns)
    types = {c: "int64" if measure_of(c) is Measure.COUNT else "float64" for c in values}
    return frame.astype(types).sort_values(list(key)).reset_index(drop=True)


def daily_trend(order_kpis: pd.DataFrame) -> pd.DataFrame:
    """One row per ``order_date``, sorted: revenue, orders, average order value, return rate.

    ``avg_order_value`` is ``total_revenue / total_orders`` rounded to 2 decimals like the
    stored KPIs (NaN for a day without orders).
    """
    orders = order_kpis["total_orders"]
    trend = order_kpis.assign(avg_order_value=(order_kpis["total_revenue"] / orders.where(orders > 0)).round(2))
    columns = ["order_date", "total_revenue", "total_orders", "avg_order_value", "return_rate"]
    return trend[columns].sort_values("order_date").reset_index(drop=True)


def top_categories(category_kpis: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` categories with the most revenue over the frame's days, most first.

    Columns: ``category``, ``revenue`` (the sum of ``daily_revenue``) and
    ``revenue_share_pct`` (100 × its revenue / the revenue of every category in the frame,
    rounded to 2 decimals). Ties are broken by category name.
    """
    if n < 0:
        raise ValueError(f"n must be zero or more, not {n}")
    revenue = category_kpis.groupby("category", as_index=False).agg(revenue=("daily_revenue", "sum"))
    revenue["revenue_share_pct"] = (100 * revenue["revenue"] / revenue["revenue"].sum()).round(2)
    ranked = revenue.sort_values(["revenue", "category"], ascending=[False, True])
    return ranked.head(n).reset_index(drop=True)


def return_rates(category_kpis: pd.DataFrame) -> pd.DataFrame:
    """One row per category, highest mean first: its daily return rates over the frame's days.

    Columns: ``category``, ``count_days`` (days with sales), ``avg_daily_return_rate``
    (rounded to 2 decimals) and ``max_daily_return_rate``, in percent. The table stores
    rates, not item counts, so the mean weighs every day the same; it is not the return
    rate of the range's items.
    """
    rates = category_kpis.groupby("category", as_index=False).agg(
        count_days=("order_date", "count"),
        avg_daily_return_rate=("avg_return_rate", "mean"),
        max_daily_return_rate=("avg_return_rate", "max"),
    )
    rates = rates.astype({"count_days": "int64"}).round({"avg_daily_return_rate": 2})
    ranked = rates.sort_values(["avg_daily_return_rate", "category"], ascending=[False, True])
    return ranked.reset_index(drop=True)


# --- Charts (pure) -------------------------------------------------------------------


def revenue_and_orders_chart(order_kpis: pd.DataFrame) -> Figure:
    """Revenue (bars, left axis) and orders (line, right axis) per day."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4), layout="constrained")
    revenue_axis = figure.add_subplot()
    if order_kpis.empty:
        return _no_data(figure, revenue_axis, "no OrderKPIs in the range")
    trend = daily_trend(order_kpis)
    days = pd.to_datetime(trend["order_date"])
    revenue_axis.bar(days, trend["total_revenue"], color="tab:blue")
    revenue_axis.set_ylabel("revenue", color="tab:blue")
    orders_axis = revenue_axis.twinx()
    orders_axis.plot(days, trend["total_orders"], color="tab:orange", marker=".")
    orders_axis.set_ylabel("orders", color="tab:orange")
    orders_axis.set_ylim(bottom=0)
    revenue_axis.set_title(f"Revenue and orders per day, {_span(trend)}")
    figure.autofmt_xdate()
    return figure


def average_order_value_chart(order_kpis: pd.DataFrame) -> Figure:
    """Average order value per day, with the range's value (revenue / orders) as a dashed line."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 3.5), layout="constrained")
    axis = figure.add_subplot()
    if order_kpis.empty:
        return _no_data(figure, axis, "no OrderKPIs in the range")
    trend = daily_trend(order_kpis)
    overall = trend["total_revenue"].sum() / trend["total_orders"].sum()
    axis.plot(pd.to_datetime(trend["order_date"]), trend["avg_order_value"], color="tab:green", marker=".")
    axis.axhline(overall, color="tab:gray", linestyle="--", label=f"whole range: {overall:,.2f}")
    axis.set_ylabel("revenue per order")
    axis.set_ylim(bottom=0)
    axis.legend(loc="lower right")
    axis.set_title(f"Average order value per day, {_span(trend)}")
    figure.autofmt_xdate()
    return figure


def top_categories_chart(category_kpis: pd.DataFrame, n: int = 10) -> Figure:
    """The ``n`` categories with the most revenue (horizontal bars, labelled with their share)."""
    from matplotlib.figure import Figure

    top = top_categories(category_kpis, n)
    figure = Figure(figsize=(10, 0.35 * max(len(top), 1) + 1.5), layout="constrained")
    axis = figure.add_subplot()
    if top.empty:
        return _no_data(figure, axis, "no CategoryKPIs in the range")
    bars = axis.barh(top["category"], top["revenue"], color="tab:blue")
    axis.bar_label(bars, labels=[f"{share:.1f} %" for share in top["revenue_share_pct"]], padding=3)
    axis.invert_yaxis()
    axis.set_xlabel("revenue")
    axis.margins(x=0.12)
    axis.set_title(f"Top {len(top)} categories by revenue, {_span(category_kpis)}")
    return figure


def return_rate_chart(order_kpis: pd.DataFrame, category_kpis: pd.DataFrame) -> Figure:
    """Two panels: the share of orders returned per day, and each category's mean daily return rate."""
    from matplotlib.figure import Figure

    rates = return_rates(category_kpis)
    figure = Figure(figsize=(12, 0.3 * max(len(rates), 8) + 1.5), layout="constrained")
    daily_axis, category_axis = figure.subplots(1, 2, width_ratios=(3, 2))
    if order_kpis.empty:
        _no_data(figure, daily_axis, "no OrderKPIs in the range")
    else:
        trend = daily_trend(order_kpis)
        daily_axis.plot(pd.to_datetime(trend["order_date"]), trend["return_rate"], color="tab:red", marker=".")
        daily_axis.set_ylabel("returned orders (%)")
        daily_axis.set_ylim(bottom=0)
        daily_axis.set_title(f"Orders returned per day, {_span(trend)}")
        daily_axis.tick_params(axis="x", labelrotation=30)
    if rates.empty:
        _no_data(figure, category_axis, "no CategoryKPIs in the range")
    else:
        category_axis.barh(rates["category"], rates["avg_daily_return_rate"], color="tab:red")
        category_axis.invert_yaxis()
        category_axis.set_xlabel("mean daily returned items (%)")
        category_axis.set_title("Items returned, per category")
    return figure


def _span(frame: pd.DataFrame) -> str:
    return f"{frame['order_date'].min()} to {frame['order_date'].max()}"


def _no_data(figure: Figure, axis: Axes, message: str) -> Figure:
    axis.text(0.5, 0.5, message, ha="center", va="center")
    axis.set_axis_off()
    return figure
