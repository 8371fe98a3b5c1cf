"""An independent, deliberately plain implementation of docs/contract.md for the tests.

It shares no code with ``pipeline_tasks``: the standard library's csv module,
dicts for the staged snapshot, Decimal arithmetic with a wide context. It is
slow and obvious on purpose; the pipeline's tables must equal its output.
"""

from __future__ import annotations

import csv
import decimal
import io
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

REQUIRED = {
    "products": ["id", "sku", "cost", "category", "name", "brand", "retail_price", "department"],
    "orders": [
        "order_id",
        "user_id",
        "status",
        "created_at",
        "returned_at",
        "shipped_at",
        "delivered_at",
        "num_of_item",
    ],
    "order_items": [
        "id",
        "order_id",
        "user_id",
        "product_id",
        "status",
        "created_at",
        "shipped_at",
        "delivered_at",
        "returned_at",
        "sale_price",
    ],
}
KEYS = {"products": "id", "orders": "order_id", "order_items": "id"}
INTS = {"id", "order_id", "user_id", "product_id", "num_of_item"}
DECIMALS = {"cost", "retail_price", "sale_price"}
TIMES = {"created_at", "shipped_at", "delivered_at", "returned_at"}
_TS = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:\.(\d+))?\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)?$"
)
_CTX = decimal.Context(prec=80)


def dataset_of(name: str) -> str | None:
    base = name.rsplit("/", 1)[-1].lower()
    if not base.endswith(".csv"):
        return None
    for prefix, dataset in (("order_items", "order_items"), ("orders", "orders"), ("products", "products")):
        if base.startswith(prefix):
            return dataset
    return None


def parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    m = _TS.match(text)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        value = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), int((frac or "0")[:6].ljust(6, "0")))
        if tz and tz[0] in "+-":
            digits = tz[1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
            value = value - offset if tz[0] == "+" else value + offset
    except (ValueError, OverflowError):  # no such date, or outside years 1-9999 in UTC
        return None
    return value.replace(tzinfo=UTC)


def parse_int(text: str | None) -> int | None:
    if text is None or not re.fullmatch(r"[+-]?\d+", text):
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


def parse_decimal(text: str | None) -> Decimal | None:
    if text is None or not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        return None
    return Decimal(text)


#: The row rules of docs/contract.md: a row breaking one is quarantined, never staged.
def quarantined(dataset: str, row: dict) -> bool:
    if dataset == "products":
        return len((row["category"] or "").encode()) > 1024 or len((row["department"] or "").encode()) > 80
    if dataset == "order_items":
        return row["sale_price"] is not None and row["sale_price"].copy_abs() >= 10**18  # abs() would round
    return False


@dataclass
class Reference:
    """The staged snapshot as dicts, fed file by file in order."""

    tables: dict[str, dict[int, dict]] = field(default_factory=lambda: {d: {} for d in REQUIRED})
    #: When the file that staged each row was created (the sequence of the upsert).
    times: dict[str, dict[int, datetime]] = field(default_factory=lambda: {d: {} for d in REQUIRED})

    def load(self, name: str, data: bytes, event_time: datetime | None = None) -> str | None:
        """Stage one file; return None when valid, else a short reason.

        With an ``event_time``, a row replaces the staged row of its key only when that
        row's file is not newer (files loaded without one count as the newest).
        """
        dataset = dataset_of(name)
        if dataset is None:
            return "unknown dataset"
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return "not UTF-8"
        if not text.strip():
            return "empty"
        rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
        header = [h.strip().lower() for h in rows[0]]
        if any(c not in header for c in REQUIRED[dataset]):
            return "missing column"
        position = {c: header.index(c) for c in REQUIRED[dataset]}
        for raw in rows[1:]:
            if len(raw) != len(header):
                continue
            row = {}
            for column, index in position.items():
                value = raw[index].strip() or None
                if column in INTS:
                    row[column] = parse_int(value)
                elif column in DECIMALS:
                    row[column] = parse_decimal(value)
                elif column in TIMES:
                    row[column] = parse_time(value)
                else:
                    row[column] = value
            key = row[KEYS[dataset]]
            if key is None or quarantined(dataset, row):
                continue
            staged_at = self.times[dataset].get(key)
            if event_time is not None and staged_at is not None and staged_at > event_time:
                continue
            self.tables[dataset][key] = row
            if event_time is not None:
                self.times[dataset][key] = event_time
        return None

    def kpis(self) -> tuple[dict[str, dict], dict[tuple[str, str], dict]]:
        products = {
            pid: (p["category"] or "Unknown")
            for pid, p in self.tables["products"].items()
            if p["cost"] is not None and p["cost"] > 0 and p["retail_price"] is not None and p["retail_price"] > 0
        }
        orders = {
            oid: o
            for oid, o in self.tables["orders"].items()
            if o["created_at"] is not None and o["num_of_item"] is not None and o["num_of_item"] > 0
        }
        facts = [
            i
            for i in self.tables["order_items"].values()
            if i["product_id"] is not None
            and i["sale_price"] is not None
            and i["sale_price"] > 0
            and i["order_id"] in orders
        ]
        day_orders: dict[str, list[dict]] = defaultdict(list)
        for o in orders.values():
            day_orders[o["created_at"].date().isoformat()].append(o)
        items_by_order: dict[int, list[dict]] = defaultdict(list)
        for i in facts:
            items_by_order[i["order_id"]].append(i)
        order_kpis = {}
        for day, day_list in day_orders.items():
            its = [i for o in day_list for i in items_by_order[o["order_id"]]]
            returned = sum(1 for o in day_list if (o["status"] or "").lower() == "returned")
            order_kpis[day] = {
                "total_orders": len(day_list),
                "total_revenue": _round(sum((i["sale_price"] for i in its), Decimal(0))),
                "total_items_sold": len(its),
                "unique_customers": len({o["user_id"] for o in day_list if o["user_id"] is not None}),
                "return_rate": _round(_CTX.divide(Decimal(100 * returned), Decimal(len(day_list)))),
            }
        groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for i in facts:
            day = orders[i["order_id"]]["created_at"].date().isoformat()
            groups[(products.get(i["product_id"], "Unknown"), day)].append(i)
        category_kpis = {}
        for key, its in groups.items():
            revenue = sum((i["sale_price"] for i in its), Decimal(0))
            returned = sum(1 for i in its if (i["status"] or "").lower() == "returned")
            category_kpis[key] = {
                "daily_revenue": _round(revenue),
                "avg_order_value": _round(_CTX.divide(revenue, Decimal(len({i["order_id"] for i in its})))),
                "avg_return_rate": _round(_CTX.divide(Decimal(100 * returned), Decimal(len(its)))),
            }
        return order_kpis, category_kpis


def _round(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=decimal.ROUND_HALF_UP, context=_CTX)


def reference_kpis(files: Iterable[tuple[str, bytes]]) -> tuple[dict[str, dict], dict[tuple[str, str], dict]]:
    """KPIs of the given files applied in order."""
    ref = Reference()
    for name, data in files:
        ref.load(name, data)
    return ref.kpis()
