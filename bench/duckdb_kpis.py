"""The KPIs of the contract computed by DuckDB over the staged Parquet files: the benchmark's yardstick.

Input are the data files of the current snapshot of the three staged tables (typed as staged:
ints ``int64``, money ``decimal(38,18)``, times ``timestamp[us, tz=UTC]``, the rest strings; the
partition columns are not in the files). The rules (docs/contract.md):

* products kept when ``cost > 0`` and ``retail_price > 0`` (nulls excluded); null category -> ``Unknown``;
* orders kept when ``created_at`` is not null and ``num_of_item > 0``;
* items kept when ``product_id`` is not null and ``sale_price > 0``; statuses lower-cased;
* facts = items INNER JOIN orders on ``order_id`` LEFT JOIN products on ``product_id`` (a missing or
  excluded product gives category ``Unknown``); ``order_date`` = UTC date of the order's ``created_at``.

Money is summed as ``DECIMAL(38,18)``: DuckDB accumulates it in a 128-bit integer, so the sums are
exact, and it raises ``OutOfRangeException`` instead of losing precision should a sum not fit.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from decimal import Decimal

import duckdb

#: Typed empty stand-ins for a dataset without any file.
_EMPTY = {
    "orders": "SELECT NULL::BIGINT AS order_id, NULL::BIGINT AS user_id, NULL::VARCHAR AS status, "
    "NULL::TIMESTAMPTZ AS created_at, NULL::BIGINT AS num_of_item WHERE false",
    "items": "SELECT NULL::BIGINT AS order_id, NULL::BIGINT AS product_id, NULL::VARCHAR AS status, "
    "NULL::DECIMAL(38,18) AS sale_price WHERE false",
    "products": "SELECT NULL::BIGINT AS id, NULL::DECIMAL(38,18) AS cost, NULL::DECIMAL(38,18) AS retail_price, "
    "NULL::VARCHAR AS category WHERE false",
}

ORDER_KEYS = ("order_date", "total_orders", "revenue", "items", "unique_customers", "returned_orders")
CATEGORY_KEYS = ("category", "order_date", "revenue", "orders", "items", "returned_items")

_ORDERS_SQL = """
SELECT o.order_date,
       count(*) AS total_orders,
       COALESCE(sum(f.revenue), CAST(0 AS DECIMAL(38,18))) AS revenue,
       CAST(COALESCE(sum(f.items), 0) AS BIGINT) AS items,
       count(DISTINCT o.user_id) AS unique_customers,
       count(*) FILTER (WHERE o.status = 'returned') AS returned_orders
FROM clean_orders AS o
LEFT JOIN (SELECT order_id, sum(sale_price) AS revenue, count(*) AS items FROM facts GROUP BY order_id) AS f
       ON f.order_id = o.order_id
GROUP BY o.order_date
ORDER BY o.order_date
"""

_CATEGORY_SQL = """
SELECT category,
       order_date,
       sum(sale_price) AS revenue,
       count(DISTINCT order_id) AS orders,
       count(*) AS items,
       count(*) FILTER (WHERE status = 'returned') AS returned_items
FROM facts
GROUP BY category, order_date
ORDER BY category, order_date
"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _source(files: Sequence[str], dataset: str, columns: str) -> str:
    """A FROM-clause source of the given Parquet files (or a typed empty relation)."""
    if not files:
        return f"({_EMPTY[dataset]})"
    paths = ", ".join(_literal(str(f)) for f in files)
    return f"(SELECT {columns} FROM read_parquet([{paths}], union_by_name = true, hive_partitioning = false))"


def duckdb_kpis(
    orders_files: list[str],
    items_files: list[str],
    products_files: list[str],
    threads: int = 2,
    memory_limit: str | None = None,
) -> tuple[list[dict], list[dict]]:
    """Compute the order and category KPIs of the contract with DuckDB.

    Args:
        orders_files: Parquet data files of the staged ``orders`` table.
        items_files: Parquet data files of the staged ``order_items`` table.
        products_files: Parquet data files of the staged ``products`` table.
        threads: DuckDB worker threads.
        memory_limit: Optional DuckDB memory limit (``"4GB"``); DuckDB's default otherwise.

    Returns:
        ``(order_rows, category_rows)``. Order rows, one per ``order_date`` with at least one
        cleaned order, sorted by date: ``order_date`` (``YYYY-MM-DD``), ``total_orders``,
        ``revenue`` (Decimal, 0 when the day has no fact item), ``items``, ``unique_customers``,
        ``returned_orders``. Category rows, one per ``(category, order_date)`` with at least one
        fact item, sorted by both: ``category``, ``order_date``, ``revenue`` (Decimal),
        ``orders`` (distinct order ids), ``items``, ``returned_items``. Counts are ints.

    Raises:
        duckdb.OutOfRangeException: A revenue sum does not fit DECIMAL(38,18) (never silently rounded).
    """
    config: dict[str, str | int] = {"threads": threads}
    if memory_limit:
        config["memory_limit"] = memory_limit
    con = duckdb.connect(":memory:", config=config)
    try:
        con.execute("SET TimeZone = 'UTC'")
        products = _source(
            products_files,
            "products",
            "id, CAST(cost AS DECIMAL(38,18)) AS cost, CAST(retail_price AS DECIMAL(38,18)) AS retail_price, category",
        )
        orders = _source(orders_files, "orders", "order_id, user_id, status, created_at, num_of_item")
        items = _source(
            items_files, "items", "order_id, product_id, status, CAST(sale_price AS DECIMAL(38,18)) AS sale_price"
        )
        con.execute(f"""
            CREATE TEMP TABLE clean_products AS
            SELECT id, COALESCE(category, 'Unknown') AS category
            FROM {products} WHERE cost > 0 AND retail_price > 0
        """)
        con.execute(f"""
            CREATE TEMP TABLE clean_orders AS
            SELECT order_id, user_id, lower(status) AS status,
                   CAST(CAST(created_at AS DATE) AS VARCHAR) AS order_date
            FROM {orders} WHERE created_at IS NOT NULL AND num_of_item > 0
        """)
        con.execute(f"""
            CREATE TEMP TABLE facts AS
            SELECT i.order_id, i.sale_price, lower(i.status) AS status, o.order_date,
                   COALESCE(p.category, 'Unknown') AS category
            FROM {items} AS i
            JOIN clean_orders AS o ON o.order_id = i.order_id
            LEFT JOIN clean_products AS p ON p.id = i.product_id
            WHERE i.product_id IS NOT NULL AND i.sale_price > 0
        """)
        order_rows = [dict(zip(ORDER_KEYS, row, strict=True)) for row in con.execute(_ORDERS_SQL).fetchall()]
        category_rows = [dict(zip(CATEGORY_KEYS, row, strict=True)) for row in con.execute(_CATEGORY_SQL).fetchall()]
    finally:
        con.close()
    return order_rows, category_rows


def delta_files(table_uri: str, storage_options: dict[str, str] | None = None) -> list[str]:
    """The data files of a Delta table's current snapshot (to feed :func:`duckdb_kpis`)."""
    from deltalake import DeltaTable

    return list(DeltaTable(table_uri, storage_options=storage_options).file_uris())


def main(argv: list[str] | None = None) -> None:
    """CLI: ``python bench/duckdb_kpis.py ORDERS_TABLE ITEMS_TABLE PRODUCTS_TABLE [--threads N]`` (Delta URIs)."""
    parser = argparse.ArgumentParser(description="Contract KPIs with DuckDB over three local Delta tables")
    parser.add_argument("orders_table")
    parser.add_argument("items_table")
    parser.add_argument("products_table")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    order_rows, category_rows = duckdb_kpis(
        delta_files(args.orders_table), delta_files(args.items_table), delta_files(args.products_table), args.threads
    )
    print(
        json.dumps(
            {
                "order_rows": len(order_rows),
                "category_rows": len(category_rows),
                "revenue": str(sum((r["revenue"] for r in order_rows), Decimal(0))),
                "seconds": round(time.perf_counter() - began, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
