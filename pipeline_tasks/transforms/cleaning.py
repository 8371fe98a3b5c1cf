"""Cleaning (§4 of the contract): staged snapshot in, cleaned entities out.

Pure Spark DataFrame functions: no session, no actions, no I/O. Staged tables
hold one row per primary key by construction (the staging MERGE), so cleaning
keeps that grain without another shuffle.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipeline_tasks.contract import UNKNOWN


def is_valid_product() -> Column:
    """A product is kept when both its cost and retail price are known and positive."""
    return F.coalesce((F.col("cost") > 0) & (F.col("retail_price") > 0), F.lit(False))


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
    return orders.filter(F.col("created_at").isNotNull() & (F.col("num_of_item") > 0)).withColumn(
        "status", F.lower(F.col("status"))
    )


def clean_order_items(order_items: DataFrame) -> DataFrame:
    """One row per order item ``id`` with a product and a positive sale price."""
    return order_items.filter(F.col("product_id").isNotNull() & (F.col("sale_price") > 0)).withColumn(
        "status", F.lower(F.col("status"))
    )
