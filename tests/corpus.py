"""A generated corpus of malformed files and poison values, each with what must happen to it.

Every case is a file a shop's messy export could produce, with the verdict the contract
(docs/contract.md) gives it and, for a valid file, the number of data records written
(``rows``): the pipeline's ``rows_read`` must equal it, and every one of those rows must be
staged or counted under a reason. The KPIs of the valid files are compared with
``tests/reference.py``. Deterministic for a seed.
"""

from __future__ import annotations

import codecs
import gzip
import random
from collections.abc import Iterator
from dataclasses import dataclass

from tests.reference import REQUIRED

BOM = codecs.BOM_UTF8


@dataclass(frozen=True)
class Case:
    """One file of the corpus.

    Attributes:
        name: File name under ``input/``.
        data: Its bytes.
        valid: Whether validation must accept it.
        rows: Data records in the file (valid files), which ``rows_read`` must equal.
        reason: A fragment the rejection reason must contain (invalid files).
    """

    name: str
    data: bytes
    valid: bool
    rows: int = 0
    reason: str = ""


def _row(dataset: str, n: int, rng: random.Random, **values: str) -> list[str]:
    base = {
        "id": str(n),
        "order_id": str(n if dataset == "orders" else rng.randint(10_000, 11_200)),
        "user_id": str(rng.randint(1, 50)),
        "product_id": str(rng.randint(10_000, 11_200)),
        "status": rng.choice(["Complete", "Shipped", "Returned", "Processing", "Cancelled"]),
        "created_at": f"2024-0{rng.randint(1, 3)}-{rng.randint(10, 28)} 1{rng.randint(0, 9)}:00:00",
        "num_of_item": "1",
        "sale_price": f"{rng.randint(1, 9999) / 100:.2f}",
        "sku": f"S{n}",
        "cost": "5.00",
        "category": rng.choice(["Tops", "Jeans", "Socks", "Outerwear & Coats"]),
        "name": f"Product {n}",
        "brand": "B",
        "retail_price": "10.00",
        "department": rng.choice(["Women", "Men"]),
        "returned_at": "",
        "shipped_at": "",
        "delivered_at": "",
    }
    base.update(values)
    return [base[c] for c in REQUIRED[dataset]]


def _csv(header: list[str], rows: list[list[str]], *, newline: str = "\n") -> bytes:
    def field(value: str) -> str:
        if any(ch in value for ch in ',"\n\r') or value != value.strip():
            return '"' + value.replace('"', '""') + '"'
        return value

    lines = [",".join(field(v) for v in row) for row in [header, *rows]]
    return (newline.join(lines) + newline).encode()


def _poison_values() -> dict[str, list[str]]:
    """Column -> values that pass validation yet are hostile."""
    return {
        "created_at": [
            "0001-01-01 00:00:00",
            "9999-12-31 23:59:59",
            "9999-12-31 23:00:00-05:00",
            "0000-01-01 00:00:00",
            "2024-02-30 10:00:00",
            "2024-13-01 10:00:00",
            "2024-03-01 24:00:00",
            "2024-03-01T10:00:00+14:00",
            "2024-03-01T10:00:00-12:00",
            "2024-03-01 10:00:00.123456789 UTC",
            "2024-03-01",
            "03/01/2024 10:00",
            "",
            "null",
        ],
        "sale_price": [
            "999999999999999999.999999999999999999",
            "1e18",
            "-1e18",
            "99999999999999999999",
            "1e25",
            "0.000000000000000000001",
            "1E-18",
            "-0",
            "0.00",
            "NaN",
            "Infinity",
            "$12.50",
            "12,50",
            " 7.5 ",
            "+3.25",
        ],
        "category": [
            "Ω" * 1100,
            "x" * 2048,
            "y" * 1024,
            "😀" * 600,
            "  ",
            "Tops\u200b",
            "Ünïcödé 日本",
            'Quote " inside',
            "Line\nbreak",
        ],
        "department": ["d" * 81, "日" * 26, "Men/Women", "..", "%20", "__HIVE_DEFAULT_PARTITION__"],
        "num_of_item": ["0", "-1", "9223372036854775807", "9223372036854775808", "1.0", "abc"],
        "user_id": ["", "-5", "1e3", "0x10", " 12 "],
        "status": ["RETURNED", " returned ", "Returned\t", "", "ReTuRnEd"],
    }


def corpus(seed: int = 7) -> Iterator[Case]:
    """The corpus: invalid files, then valid files full of poison rows and values."""
    rng = random.Random(seed)
    n = iter(range(10_000, 10**9))

    # --- invalid files: each rejected with a reason a person can act on ---------------
    yield Case("orders_empty.csv", b"", False, reason="empty file")
    yield Case("orders_bom_only.csv", BOM, False, reason="only a byte-order mark")
    yield Case("orders_blank.csv", b"\n \n\t\n", False, reason="no header row")
    yield Case("orders_nul.csv", b"order_id\x00,user_id\n1,2\n", False, reason="not a CSV file")
    latin1 = "order_id,user_id,status,created_at,returned_at,shipped_at,delivered_at,num_of_item\n1,1,Expédié,,,,,1\n"
    yield Case("orders_latin1.csv", latin1.encode("latin-1"), False, reason="not UTF-8")
    yield Case("orders_utf16.csv", latin1.encode("utf-16"), False, reason="not UTF-8")
    yield Case("orders_gzip.csv", gzip.compress(latin1.encode()), False, reason="not ")
    yield Case("orders_json.csv", b'{"order_id": 1}\n', False, reason="missing required column")
    yield Case("orders_html.csv", b"<html><body>502 Bad Gateway</body></html>\n", False, reason="missing")
    for delimiter, label in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
        header = delimiter.join(REQUIRED["orders"])
        row = delimiter.join(_row("orders", next(n), rng))
        yield Case(f"orders_delim_{ord(delimiter)}.csv", f"{header}\n{row}\n".encode(), False, reason=label)
    for dataset in REQUIRED:
        for column in REQUIRED[dataset]:
            header = [c for c in REQUIRED[dataset] if c != column]
            rows = [[v for c, v in zip(REQUIRED[dataset], _row(dataset, next(n), rng), strict=True) if c != column]]
            yield Case(f"{dataset}_no_{column}.csv", _csv(header, rows), False, reason=column)
        first = REQUIRED[dataset][0]
        zwsp = [first + "\u200b", *REQUIRED[dataset][1:]]
        yield Case(f"{dataset}_zwsp.csv", _csv(zwsp, [_row(dataset, next(n), rng)]), False, reason="U+200B")
        twice = [*REQUIRED[dataset], first]
        rows = [[*_row(dataset, next(n), rng), "1"]]
        yield Case(f"{dataset}_twice.csv", _csv(twice, rows), False, reason="more than once")
    for name in ("customers.csv", "orders.txt", "orders.csv.bak", ".csv", "order-items.csv", "product.csv"):
        yield Case(name, _csv(REQUIRED["orders"], [_row("orders", next(n), rng)]), False, reason="unknown dataset")

    # --- valid files: every data record accounted for -----------------------------------
    for dataset in REQUIRED:
        header = REQUIRED[dataset]
        for variant in range(40):
            rows = [_row(dataset, next(n), rng) for _ in range(rng.randint(1, 6))]
            newline = "\r\n" if variant % 3 == 0 else "\n"
            data = _csv(header, rows, newline=newline)
            if variant % 4 == 1:
                data = BOM + data
            if variant % 5 == 2:
                data = data.replace(newline.encode(), (newline + "   " + newline).encode(), 1)  # blank-ish line
            if variant % 6 == 3:
                data = data.rstrip(b"\r\n")  # no final line break
            yield Case(f"{dataset}_clean_{variant:02d}.csv", data, True, rows=len(rows))
        # Shuffled, upper-cased, padded headers with extra columns.
        shuffled = list(header)
        rng.shuffle(shuffled)
        rows = [_row(dataset, next(n), rng) for _ in range(4)]
        order = [header.index(c) for c in shuffled]
        data = _csv([f" {c.upper()} " for c in shuffled] + ["gender"], [[r[i] for i in order] + ["F"] for r in rows])
        yield Case(f"{dataset}_shuffled.csv", data, True, rows=4)
        # Row-level problems: wrong field counts, bad keys, duplicates.
        good = [_row(dataset, next(n), rng) for _ in range(3)]
        key = REQUIRED[dataset].index("id" if dataset != "orders" else "order_id")
        bad_keys = ["", "  ", "1.0", "1e3", "0x10", "99999999999999999999", "abc", "-0"]
        rows = list(good)
        for value in bad_keys:
            row = _row(dataset, next(n), rng)
            row[key] = value
            rows.append(row)
        text = _csv(header, rows).decode()
        text += ",".join(_row(dataset, next(n), rng)[:-1]) + "\n"  # one field short
        text += ",".join([*_row(dataset, next(n), rng), "extra"]) + "\n"  # one field too many
        yield Case(f"{dataset}_row_problems.csv", text.encode(), True, rows=len(rows) + 2)
        dup = _row(dataset, next(n), rng)
        rows = [dup, _row(dataset, next(n), rng), list(dup)]
        yield Case(f"{dataset}_duplicate_keys.csv", _csv(header, rows), True, rows=3)
        # An unbalanced quote in row 2 of 6 swallows the rest: every line still counted.
        rows = [_row(dataset, next(n), rng) for _ in range(6)]
        lines = _csv(header, rows).decode().splitlines()
        lines[2] = lines[2].replace(",", ',"', 1)
        yield Case(f"{dataset}_unbalanced_quote.csv", ("\n".join(lines) + "\n").encode(), True, rows=6)
        # A quoted line break inside a value: one record over two lines.
        row = _row(dataset, next(n), rng)
        text_column = "name" if dataset == "products" else "status"
        row[REQUIRED[dataset].index(text_column)] = "Com\nplete"
        yield Case(f"{dataset}_quoted_newline.csv", _csv(header, [row, _row(dataset, next(n), rng)]), True, rows=2)
        # A header with no rows.
        yield Case(f"{dataset}_header_only.csv", _csv(header, []), True, rows=0)

    # --- poison values: parse, or quarantine, never stall -------------------------------
    for column, values in _poison_values().items():
        for dataset in REQUIRED:
            if column not in REQUIRED[dataset]:
                continue
            for chunk in range(0, len(values), 5):
                part = values[chunk : chunk + 5]
                rows = [_row(dataset, next(n), rng, **{column: v}) for v in part]
                rows += [_row(dataset, next(n), rng) for _ in range(len(part) + 1)]  # below any rule's share
                yield Case(
                    f"{dataset}_poison_{column}_{chunk:02d}.csv", _csv(REQUIRED[dataset], rows), True, rows=len(rows)
                )
