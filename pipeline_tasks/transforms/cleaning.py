"""Cleaning (§4 of the contract): staged snapshot in, cleaned entities out.

Pure Spark DataFrame functions: no session, no actions, no I/O. Staged tables
hold one row per primary key by construction (the staging MERGE), so cleaning
keeps that grain without another shuffle.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipeline_tasks.contract import CLEANING_RULES, ORDER_ITEMS, ORDERS, PRODUCTS, UNKNOWN, CleaningRule


def _passes(rule: CleaningRule) -> Column:
    column = F.col(rule.column)
    return F.coalesce(column > 0, F.lit(False)) if rule.positive else column.isNotNull()


def is_kept(dataset_name: str) -> Column:
    """True for the rows of a dataset that every cleaning rule of §4 keeps."""
    condition = F.lit(True)
    for rule in CLEANING_RULES[dataset_name]:
        condition = condition & _passes(rule)
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


def product_category(products: DataFrame) -> DataFrame:
    """One row per staged product ``id`` with the category its items get in the KPIs.

    An excluded product's items fall to ``Unknown``, as do items of a missing one.
    """
    category = F.when(is_valid_product(), F.coalesce(F.col("category"), F.lit(UNKNOWN))).otherwise(F.lit(UNKNOWN))
    return products.select(F.col("id").alias("product_id"), category.alias("category"))


def clean_orders(orders: DataFrame) -> DataFrame:
    """One row per ``order_id`` with a creation time and a positive item count."""
    return orders.filter(is_kept(ORDERS.name)).withColumn("status", F.lower(F.col("status")))


def clean_order_items(order_items: DataFrame) -> DataFrame:
    """One row per order item ``id`` with a product and a positive sale price."""
    return order_items.filter(is_kept(ORDER_ITEMS.name)).withColumn("status", F.lower(F.col("status")))
