"""Which ``order_date``s a set of staged changes can affect (for §6's invariant).

A day's KPIs depend on the orders created that day, their items, and the
categories of those items' products. So a batch affects: the old and new days
of every changed order; the days of the orders that changed items belong (or
belonged) to; and every day holding items of a product whose KPI category
changed. Pure Arrow functions over change feeds and small lookups: the step
reads only the slices of the lake these functions name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from pipeline_tasks.contract import CLEANING_RULES, PRODUCTS, UNKNOWN
from pipeline_tasks.transforms.staging import is_kept

#: The product columns ``product_categories`` reads.
PRODUCT_CATEGORY_COLUMNS = ["id", "category", *(rule.column for rule in CLEANING_RULES[PRODUCTS.name])]


def product_categories(products: pa.Table) -> dict[int, str]:
    """The category each staged product's items get in the KPIs, by product ``id``.

    The Arrow twin of the Spark cleaning rule (``cleaning.is_valid_product``): an excluded product's items
    fall to ``Unknown``, as do those of a product without a category.
    """
    if products.num_rows == 0:
        return {}
    named = pc.fill_null(products.column("category"), UNKNOWN)
    category = pc.if_else(is_kept(products, PRODUCTS.name), named, UNKNOWN)
    return dict(zip(products.column("id").to_pylist(), category.to_pylist(), strict=True))


def recategorised_products(before: Mapping[int, str], now: Mapping[int, str]) -> set[int]:
    """Product ids whose KPI category differs between two snapshots (missing counts as ``Unknown``)."""
    return {p for p in before.keys() | now.keys() if before.get(p, UNKNOWN) != now.get(p, UNKNOWN)}


def months_of(days: Iterable[date]) -> list[tuple[int, int]]:
    """The (year, month) partitions that hold orders created on ``days``."""
    return sorted({(d.year, d.month) for d in days})
