"""Cleaning (docs/contract.md §4): staged snapshot in, cleaned entities out.

Pure Spark DataFrame functions: no session, no actions, no I/O. Staged tables
hold one row per primary key by construction (the staging MERGE), so cleaning
keeps that grain without another shuffle.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipeline_tasks.contract import (
    CLEANING_RULES,
    ORDER_ITEMS,
    ORDERS,
    PRODUCTS,
    UNKNOWN,
    CleaningRule,
)
from pipeline_tasks.money import MoneyPlan
from pipeline_tasks.transforms.money_columns import sale_price_parts_positive


def _passes(rule: CleaningRule, *, money: MoneyPlan = MoneyPlan.DECIMAL) -> Column:
    if money is MoneyPlan.PARTS and rule.column == "sale_price":
        return F.coalesce(sale_price_parts_positive(), F.lit(False))
    column = F.col(rule.column)
    return F.coalesce(column > 0, F.lit(False)) if rule.positive else column.isNotNull()


def is_kept(dataset_name: str, *, money: MoneyPlan = MoneyPlan.DECIMAL) -> Column:
    """True for the rows of a dataset that every cleaning rule of §4 keeps.

    ``money``: under ``MoneyPlan.PARTS``, test ``sale_price`` on its parts (see ``clean_order_items``).
    """
    condition = F.lit(True)
    for rule in CLEANING_RULES[dataset_name]:
        condition = condition & _passes(rule, money=money)
    return condition


def is_valid_product() -> Column:
    """A product is kept when both its cost and retail price are known and positive."""
    return is_kept(PRODUCTS.name)


def clean_products(products: DataFrame) -> DataFrame:
    """One row per product ``id``: positive prices, unknown category/department named."""
    return products.filter(is_valid_product()).withColumns(
        {
            "category": F.coalesce(F.col("category"), F.lit(UNKNOWN)),
            "department": F.coalesce(F.col("department"), F.lit(UNKNOWN)),
        }
    )


def clean_orders(orders: DataFrame) -> DataFrame:
    """One row per ``order_id`` with a creation time and a positive item count."""
    return orders.filter(is_kept(ORDERS.name)).withColumn("status", F.lower(F.col("status")))


def clean_order_items(order_items: DataFrame, *, money: MoneyPlan = MoneyPlan.DECIMAL) -> DataFrame:
    """One row per order item ``id`` with a product and a positive sale price.

    ``money``: under ``MoneyPlan.PARTS``, tell a positive price from its exact int64 parts
    (``SALE_PRICE_PARTS``) rather than the decimal, so that Spark need not decode ``sale_price``
    at all. The same rows are kept as long as no value reaches ``SALE_PRICE_PARTS_LIMIT`` (whose
    parts are null).
    """
    kept = is_kept(ORDER_ITEMS.name, money=money)
    return order_items.filter(kept).withColumn("status", F.lower(F.col("status")))
