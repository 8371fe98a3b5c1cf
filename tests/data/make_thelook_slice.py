"""Cut the small real TheLook slice in tests/data/thelook_slice/ from the full exports.

Run from the repository root, with the full data in place (see SOURCES.txt there):

    .venv/bin/python -m tests.data.make_thelook_slice [--source DIR] [--out DIR] [--check]

The full data is /work/shared/data/thelook by default (tests/conftest.py's SHARED_DATA).
Rows are copied line by line, byte for byte, in their original order, under the
original header; a slice file ends without a newline when its source file does.
Every source line is one CSV record (the script checks it), so a line is a row.

What is kept (README.md beside the slice says why):

- orders (bq_snapshot_2025-01-25/orders.csv): orders created in the snapshot's last
  two weeks, WINDOW (UTC dates of ``created_at``), whose ``order_id`` is a multiple of EVERY
  or is referenced by an item of the order-items sample;
- order items (sample_2025/order_items_sample.csv): every item of a kept order, plus
  every item whose ``order_id`` is in no row of the orders export (the inner join of
  docs/contract.md §5 drops them);
- products (bq_snapshot_2025-01-25/products.csv): every product a kept item references,
  plus the rows with an empty ``name`` or ``brand`` and the first ODD_TEXT rows holding
  non-ASCII bytes (the export's mojibake such as ``Â®``);
- products sample (sample_2025/products_sample.csv): the sample's rows for the kept
  products (the second batch re-stages them; some differ, e.g. ``60.0`` for ``60``).

``--check`` writes nothing and exits 1 when a committed slice file differs from a fresh cut.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[2] / "shared" / "data" / "thelook"
OUT = HERE / "thelook_slice"
SNAPSHOT, SAMPLE = "bq_snapshot_2025-01-25", "sample_2025"
ORDERS, PRODUCTS = f"{SNAPSHOT}/orders.csv", f"{SNAPSHOT}/products.csv"
ITEMS, SAMPLE_PRODUCTS = f"{SAMPLE}/order_items_sample.csv", f"{SAMPLE}/products_sample.csv"
FILES = (PRODUCTS, ORDERS, SAMPLE_PRODUCTS, ITEMS)

WINDOW = ("2025-01-12", "2025-01-25")
EVERY = 24
ODD_TEXT = 10


class Table:
    """One CSV file as its header line and its data lines, each line kept as bytes."""

    def __init__(self, path: Path) -> None:
        data = path.read_bytes()
        self.ends_with_newline = data.endswith(b"\n")
        lines = data.split(b"\n")
        if self.ends_with_newline:
            lines.pop()
        lines = [line + b"\n" for line in lines]
        records = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        if len(records) != len(lines) or any(len(r) != len(records[0]) for r in records):
            raise ValueError(f"{path}: not one CSV record of {len(records[0])} fields per line")
        self.header_line, self.lines = lines[0], lines[1:]
        self.header = records[0]
        self.rows = [dict(zip(self.header, r, strict=True)) for r in records[1:]]

    def keep(self, wanted: Callable[[dict[str, str]], bool]) -> tuple[bytes, int]:
        """The slice file's bytes and its number of data rows."""
        kept = [line for row, line in zip(self.rows, self.lines, strict=True) if wanted(row)]
        data = b"".join([self.header_line, *kept])
        return (data if self.ends_with_newline else data.removesuffix(b"\n")), len(kept)


def cut(source: Path) -> dict[str, tuple[bytes, int]]:
    """Each slice file (by path relative to the slice folder): its bytes and data row count."""
    orders, products = Table(source / ORDERS), Table(source / PRODUCTS)
    items, sample_products = Table(source / ITEMS), Table(source / SAMPLE_PRODUCTS)

    exported_orders = {o["order_id"] for o in orders.rows}
    ordered = {i["order_id"] for i in items.rows}
    first, last = WINDOW
    kept_orders = {
        o["order_id"]
        for o in orders.rows
        if first <= o["created_at"][:10] <= last and (int(o["order_id"]) % EVERY == 0 or o["order_id"] in ordered)
    }

    def item_kept(i: dict[str, str]) -> bool:
        return i["order_id"] in kept_orders or i["order_id"] not in exported_orders

    referenced = {i["product_id"] for i in items.rows if item_kept(i)}
    odd_text = [p["id"] for p, line in zip(products.rows, products.lines, strict=True) if not line.isascii()]
    kept_products = referenced | set(odd_text[:ODD_TEXT])
    kept_products |= {p["id"] for p in products.rows if not p["name"].strip() or not p["brand"].strip()}

    return {
        PRODUCTS: products.keep(lambda p: p["id"] in kept_products),
        ORDERS: orders.keep(lambda o: o["order_id"] in kept_orders),
        SAMPLE_PRODUCTS: sample_products.keep(lambda p: p["id"] in kept_products),
        ITEMS: items.keep(item_kept),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help=f"the full data (default {SOURCE})")
    parser.add_argument("--out", type=Path, default=OUT, help=f"the slice folder (default {OUT})")
    parser.add_argument("--check", action="store_true", help="compare with the slice folder, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name, (data, rows) in cut(args.source).items():
        target = args.out / name
        if args.check:
            if not target.is_file() or target.read_bytes() != data:
                stale.append(name)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        print(f"{name}: {rows} rows, {len(data)} bytes")
    if stale:
        print("differs from a fresh cut:", ", ".join(stale), file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
