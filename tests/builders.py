"""Small CSV builders for contract scenarios."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping

from tests.reference import REQUIRED


def csv_bytes(dataset: str, rows: Iterable[Mapping[str, object]], header: list[str] | None = None) -> bytes:
    columns = header or REQUIRED[dataset]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return out.getvalue().encode()


def product(pid: int, category: str | None = "Tops", cost: object = "5.00", retail: object = "10.00", **extra) -> dict:
    return {
        "id": pid,
        "sku": f"SKU{pid}",
        "cost": cost,
        "category": category,
        "name": f"P{pid}",
        "brand": "B",
        "retail_price": retail,
        "department": "Women",
        **extra,
    }


def order(
    oid: int, created: str = "2024-03-01 10:00:00", user: int = 1, status: str = "Complete", items: object = 1, **extra
) -> dict:
    return {"order_id": oid, "user_id": user, "status": status, "created_at": created, "num_of_item": items, **extra}


def item(iid: int, oid: int, pid: object = 1, price: object = "10.00", status: str = "Complete", **extra) -> dict:
    return {
        "id": iid,
        "order_id": oid,
        "user_id": 1,
        "product_id": pid,
        "status": status,
        "created_at": "2024-03-01 10:00:00",
        "sale_price": price,
        **extra,
    }
