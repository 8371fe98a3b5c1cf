"""TheLook-shaped synthetic CSV data at a chosen scale, for the benchmark.

The files copy the shape of the real BigQuery ``thelook_ecommerce`` exports (see
``/work/shared/data/thelook``): the same headers including the extra columns the
contract ignores (``gender``, ``inventory_item_id``, ``distribution_center_id``),
``2024-07-23 11:09:00 UTC`` / ``2024-06-23 23:41:55.000000 UTC`` timestamps, float32
prices printed like BigQuery does (``0.0199999995529651``, ``46.35``), capitalised
statuses, ~29k products in 26 categories and two departments, ~2.5 items per order
spread over 2021-01-01..2025-01-25, and a few percent of rows that the cleaning rules
of the contract exclude (``sale_price`` 0 or empty, missing ``product_id``,
``num_of_item`` 0, missing ``created_at``, null ``category``, zero or missing cost).

Everything is vectorised (numpy + ``pyarrow.compute``) and written with
``pyarrow.csv.write_csv``; the output is deterministic for a seed.

Usage::

    python bench/generate.py OUT_DIR --items 5000000 [--seed 0] [--increment-items 50000 --days 3]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

#: Base data covers [START, END): 2021-01-01 00:00 UTC .. 2025-01-25 23:59:59 UTC (1,486 days).
START = int(datetime(2021, 1, 1, tzinfo=UTC).timestamp())
END = int(datetime(2025, 1, 26, tzinfo=UTC).timestamp())
DAY = 86_400
MICROS = 1_000_000
N_PRODUCTS = 29_120

#: Headers of the real exports (column order included).
PRODUCTS_HEADER = (
    "id",
    "cost",
    "category",
    "name",
    "brand",
    "retail_price",
    "department",
    "sku",
    "distribution_center_id",
)
ORDERS_HEADER = (
    "order_id",
    "user_id",
    "status",
    "gender",
    "created_at",
    "returned_at",
    "shipped_at",
    "delivered_at",
    "num_of_item",
)
ITEMS_HEADER = (
    "id",
    "order_id",
    "user_id",
    "product_id",
    "inventory_item_id",
    "status",
    "created_at",
    "shipped_at",
    "delivered_at",
    "returned_at",
    "sale_price",
)

STATUSES = np.array(["Shipped", "Complete", "Processing", "Cancelled", "Returned"], dtype=object)
SHIPPED, COMPLETE, PROCESSING, CANCELLED, RETURNED = range(5)
#: Status mix of the real orders export.
BASE_STATUS_P = (0.30, 0.25, 0.20, 0.15, 0.10)
#: New orders of an increment are younger, so more of them are still in flight.
NEW_STATUS_P = (0.35, 0.05, 0.45, 0.13, 0.02)
#: Status an updated order moves to (first choice 70 %, second choice 30 %).
NEXT_STATUS = np.array(
    [[COMPLETE, RETURNED], [RETURNED, RETURNED], [SHIPPED, CANCELLED], [PROCESSING, PROCESSING], [COMPLETE, COMPLETE]]
)
#: Items per order 1..4, mean 2.5.
ITEMS_PER_ORDER_P = (0.2, 0.3, 0.3, 0.2)

#: Category -> (Men products, Women products, median retail price, noun), from the real products export.
CATEGORIES: dict[str, tuple[int, int, float, str]] = {
    "Accessories": (820, 739, 24.3, "Cap"),
    "Active": (753, 679, 34.0, "Training Top"),
    "Blazers & Jackets": (0, 561, 60.0, "Blazer"),
    "Clothing Sets": (0, 37, 70.0, "Two Piece Set"),
    "Dresses": (0, 955, 59.0, "Dress"),
    "Fashion Hoodies & Sweatshirts": (971, 895, 49.5, "Hoodie"),
    "Intimates": (0, 2363, 28.0, "Bra"),
    "Jeans": (1117, 882, 78.0, "Jean"),
    "Jumpsuits & Rompers": (0, 162, 24.9, "Romper"),
    "Leggings": (0, 564, 17.0, "Legging"),
    "Maternity": (0, 898, 40.0, "Maternity Tunic"),
    "Outerwear & Coats": (828, 592, 109.9, "Parka"),
    "Pants": (1041, 0, 50.0, "Chino Pant"),
    "Pants & Capris": (0, 613, 40.0, "Capri"),
    "Plus": (0, 758, 25.0, "Plus Size Top"),
    "Shorts": (939, 826, 39.6, "Short"),
    "Skirts": (0, 367, 37.0, "Skirt"),
    "Sleep & Lounge": (941, 830, 37.0, "Pajama Set"),
    "Socks": (905, 0, 15.1, "Crew Sock"),
    "Socks & Hosiery": (0, 666, 14.0, "Tights"),
    "Suits": (0, 188, 122.7, "Pant Suit"),
    "Suits & Sport Coats": (739, 0, 99.5, "Sport Coat"),
    "Sweaters": (999, 738, 59.0, "Sweater"),
    "Swim": (906, 892, 50.0, "Swim Trunk"),
    "Tops & Tees": (1084, 784, 30.7, "Tee"),
    "Underwear": (1088, 0, 25.0, "Boxer Brief"),
}
_BRAND_HEADS = (
    "Allegra",
    "Calvin",
    "Car",
    "Han",
    "Vol",
    "Nau",
    "Levi",
    "Quik",
    "Tommy",
    "Colum",
    "Hur",
    "Dock",
    "Dies",
    "Speed",
    "Ameri",
    "Wrang",
    "Mother",
    "Champ",
    "Lucky",
    "Nobis",
    "Roxy",
    "Betsey",
    "Derek",
    "Paul",
    "Alfred",
    "Hugo",
    "Fruit",
    "Blue",
    "Adi",
    "Oneil",
    "Pata",
    "North",
    "Bill",
    "Oak",
    "Star",
    "Red",
    "Green",
    "Silver",
    "Gold",
    "River",
    "Stone",
    "Pine",
    "Maple",
    "Urban",
    "Coast",
    "Harbor",
    "Summit",
    "Prairie",
    "Metro",
    "Velvet",
)
_BRAND_TAILS = (
    "",
    " K",
    "hartt",
    "es",
    "com",
    "tica",
    "'s",
    "silver",
    " Hilfiger",
    "bia",
    "ley",
    "ers",
    "el",
    "o",
    "can Apparel",
    "ler",
    "hood",
    "ion",
    " Brand",
    " Co",
    " Basics",
    " Johnson",
    " Rose",
    " Fredrick",
    " Dunner",
    " Boss",
    " Loom",
    " Banana",
    "das",
    "ll",
    "gonia",
    " Face",
    "abong",
    "ley & Co",
    "wear",
    " Threads",
    " Label",
    " Supply",
    " Goods",
    " Outfitters",
    " Denim",
    " Studio",
    " & Sons",
    " Line",
    " Club",
    " Works",
    " Republic",
    " Society",
    " Collective",
    " Mills",
    " Union",
    " Trading",
    " House",
    " Atelier",
    " Vintage",
)
_ADJECTIVES = (
    "Classic",
    "Slim Fit",
    "Relaxed",
    "Lightweight",
    "Vintage",
    "Essential",
    "Stretch",
    "Printed",
    "Striped",
    "Solid",
    "Low Profile",
    "Dyed",
    "Quilted",
    "Ribbed",
    "Soft",
    "Premium",
    "Seamless",
    "Cropped",
    "Oversized",
    "Tailored",
)
_MATERIALS = (
    "Cotton",
    "Twill",
    "Fleece",
    "Denim",
    "Jersey",
    "Linen",
    "Wool",
    "Cashmere",
    "Microfiber",
    "Silk",
    "Nylon",
    "Modal",
    "Satin",
    "Lace",
    "Velvet",
    "Canvas",
)
_COLORS = (
    "Navy",
    "Black",
    "White",
    "Grey",
    "Putty",
    "Red",
    "Olive",
    "Burgundy",
    "Charcoal",
    "Khaki",
    "Ivory",
    "Royal Blue",
    "Heather",
    "Pink",
    "Teal",
)


def _hex32(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` random 32-character upper-case hex strings (TheLook's ``sku``), vectorised."""
    digits = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
    nibbles = rng.integers(0, 16, size=(n, 32), dtype=np.uint8)
    chars = np.ascontiguousarray(digits[nibbles])
    return pa.array(chars.view("S32").ravel().astype(str))


def _bq_float(value: float) -> str:
    """Format a float like BigQuery's CSV export: 15 significant digits, 17 when needed to round-trip."""
    text = f"{value:.15g}"
    if float(text) != value:
        text = f"{value:.17g}"
    return text


def _bq_floats(values: np.ndarray) -> pa.Array:
    """Vectorised :func:`_bq_float`: only the distinct values are formatted in Python."""
    uniques, inverse = np.unique(values, return_inverse=True)
    texts = pa.array([_bq_float(float(v)) for v in uniques], type=pa.string())
    return texts.take(pa.array(inverse.astype(np.int32)))


def _join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise string concatenation (nulls stay null)."""
    return pc.binary_join_element_wise(*parts, "")


def _ts_strings(
    micros: np.ndarray,
    valid: np.ndarray | None = None,
    *,
    fractional: bool = False,
    trim_mask: np.ndarray | None = None,
) -> pa.Array:
    """Timestamps as TheLook strings.

    Args:
        micros: Epoch microseconds (UTC).
        valid: Rows that have a value; the others are null (empty in the CSV).
        fractional: ``2024-06-23 23:41:55.000000 UTC`` (order_items) instead of
            ``2024-07-23 11:09:00 UTC`` (orders).
        trim_mask: With ``fractional=False``, rows printed with their microseconds and
            trailing zeros trimmed (``2025-01-25 19:35:58.912969 UTC``), as a few real orders are.

    Returns:
        A string array.
    """
    mask = None if valid is None else ~valid
    if fractional:
        text = pc.cast(pa.array(micros.astype("datetime64[us]"), mask=mask), pa.string())
    else:
        text = pc.cast(pa.array((micros // MICROS).astype("datetime64[s]"), mask=mask), pa.string())
        if trim_mask is not None and trim_mask.any():
            exact = pc.cast(pa.array(micros[trim_mask].astype("datetime64[us]")), pa.string())
            exact = pc.replace_substring_regex(exact, r"\.?0+$", "")
            text = pc.replace_with_mask(text, pa.array(trim_mask), exact)
    return _join(text, " UTC")


def _write(path: Path, header: tuple[str, ...], columns: dict[str, pa.Array]) -> None:
    """Write a CSV with an unquoted header line, like BigQuery does."""
    table = pa.table({name: columns[name] for name in header})
    with path.open("wb") as sink:
        sink.write((",".join(header) + "\n").encode())
        pacsv.write_csv(
            table, sink, pacsv.WriteOptions(include_header=False, quoting_style="none", batch_size=64 * 1024)
        )


def _strings(values: np.ndarray, codes: np.ndarray) -> pa.Array:
    """Dictionary decode: ``values[codes]`` as a pyarrow string array."""
    return pa.array(values.astype(str)).take(pa.array(codes.astype(np.int32)))


@dataclass
class _Products:
    """The product table; prices kept both as floats and as their CSV strings."""

    n: int
    retail: np.ndarray  # float64 (float32-rounded) true retail price
    retail_text: pa.Array  # the retail_price column as written (some "0")
    columns: dict[str, pa.Array]


def _products(n: int, seed: int) -> _Products:
    rng = np.random.default_rng([seed, 1])
    names = np.array(list(CATEGORIES), dtype=object)
    men = np.array([v[0] for v in CATEGORIES.values()], dtype=float)
    women = np.array([v[1] for v in CATEGORIES.values()], dtype=float)
    weights = np.concatenate([men, women])
    cell = rng.choice(weights.size, size=n, p=weights / weights.sum())
    category = cell % names.size
    is_women = cell >= names.size
    median = np.array([v[2] for v in CATEGORIES.values()])[category]
    raw = median * rng.lognormal(0.0, 0.55, n)
    style = rng.random(n)
    price = np.where(style < 0.3, np.round(raw), np.where(style < 0.7, np.floor(raw) + 0.99, np.round(raw, 2)))
    retail = np.clip(price, 0.02, 999.0).astype(np.float32).astype(np.float64)
    cost = retail * rng.uniform(0.331, 0.67, n)

    retail_text = _bq_floats(retail)
    cost_text = _bq_floats(cost)
    # Rows the cleaning rules exclude: cost 0 / missing, retail_price 0, category missing.
    cost_zero = rng.random(n) < 0.004
    cost_null = rng.random(n) < 0.002
    retail_zero = rng.random(n) < 0.002
    category_null = rng.random(n) < 0.005
    cost_text = pc.if_else(pa.array(cost_zero), "0", cost_text)
    cost_text = pc.if_else(pa.array(cost_null), pa.scalar(None, pa.string()), cost_text)
    retail_text = pc.if_else(pa.array(retail_zero), "0", retail_text)

    heads = np.array(_BRAND_HEADS, dtype=object)
    tails = np.array(_BRAND_TAILS, dtype=object)
    brand_id = rng.permutation(heads.size * tails.size)[rng.zipf(1.3, n) % (heads.size * tails.size)]
    brand = _join(_strings(heads, brand_id // tails.size), _strings(tails, brand_id % tails.size))
    gender = _strings(np.array(["Men's", "Women's"], dtype=object), is_women.astype(int))
    nouns = np.array([v[3] for v in CATEGORIES.values()], dtype=object)
    name = _join(
        brand,
        " ",
        gender,
        " ",
        _strings(np.array(_ADJECTIVES, dtype=object), rng.integers(0, 20, n)),
        " ",
        _strings(np.array(_MATERIALS, dtype=object), rng.integers(0, 16, n)),
        " ",
        _strings(nouns, category),
    )
    with_color = pa.array(rng.random(n) < 0.4)
    name = pc.if_else(
        with_color, _join(name, " - ", _strings(np.array(_COLORS, dtype=object), rng.integers(0, 15, n))), name
    )
    name = pc.if_else(pa.array(rng.random(n) < 0.0001), pa.scalar(None, pa.string()), name)
    brand = pc.if_else(pa.array(rng.random(n) < 0.0008), pa.scalar(None, pa.string()), brand)

    columns = {
        "id": pa.array(np.arange(1, n + 1, dtype=np.int64)),
        "cost": cost_text,
        "category": pa.array(names[category].astype(str), mask=category_null),
        "name": name,
        "brand": brand,
        "retail_price": retail_text,
        "department": _strings(np.array(["Men", "Women"], dtype=object), is_women.astype(int)),
        "sku": _hex32(rng, n),
        "distribution_center_id": pa.array(rng.integers(1, 11, n)),
    }
    return _Products(n=n, retail=retail, retail_text=retail_text, columns=columns)


@dataclass
class _Orders:
    """Orders and their items as numpy arrays (true values; exclusions applied at write time)."""

    order_id: np.ndarray
    user_id: np.ndarray
    status: np.ndarray  # int codes into STATUSES
    created: np.ndarray  # epoch micros
    shipped: np.ndarray
    delivered: np.ndarray
    returned: np.ndarray
    count: np.ndarray  # true items per order
    num_zero: np.ndarray  # num_of_item written as 0
    created_null: np.ndarray  # created_at written empty
    trim: np.ndarray  # created_at written with its microseconds
    # items (grouped by order, in order row order)
    item_id: np.ndarray
    item_order_row: np.ndarray  # row index of the item's order
    product_id: np.ndarray  # 0 = missing
    inventory_item_id: np.ndarray
    item_status: np.ndarray
    item_offset: np.ndarray  # micros between the order's and the item's created_at
    price_row: np.ndarray  # product row whose retail price is the sale price
    price_zero: np.ndarray
    price_null: np.ndarray


def _orders(
    rng: np.random.Generator,
    n_items: int,
    first_order_id: int,
    first_item_id: int,
    n_users: int,
    n_products: int,
    t0: int,
    t1: int,
    status_p: tuple[float, ...],
    ramp: bool,
) -> _Orders:
    """Random orders holding exactly ``n_items`` items, created in [t0, t1) (epoch seconds)."""
    guess = int(n_items / 2.5 * 1.1) + 8
    count = rng.choice(np.arange(1, 5), size=guess, p=ITEMS_PER_ORDER_P)
    total = np.cumsum(count)
    n_orders = int(np.searchsorted(total, n_items) + 1)
    count = count[:n_orders].copy()
    count[-1] -= int(total[n_orders - 1] - n_items)  # exact total

    order_id = np.arange(first_order_id, first_order_id + n_orders, dtype=np.int64)
    user_id = rng.integers(1, n_users + 1, n_orders, dtype=np.int64)
    status = rng.choice(5, size=n_orders, p=status_p)
    u = rng.random(n_orders)
    frac = (np.sqrt(1.0 + 8.0 * u) - 1.0) / 2.0 if ramp else u  # density grows 1 -> 3 over the range
    seconds = t0 + (frac * (t1 - t0)).astype(np.int64)
    trim = rng.random(n_orders) < 0.024
    created = np.where(trim, seconds * MICROS + rng.integers(1, MICROS, n_orders), (seconds - seconds % 60) * MICROS)
    minute = 60 * MICROS
    shipped = created - created % minute + rng.integers(30, 3 * 24 * 60, n_orders) * minute
    delivered = shipped + rng.integers(12 * 60, 5 * 24 * 60, n_orders) * minute
    returned = delivered + rng.integers(60, 7 * 24 * 60, n_orders) * minute

    n = int(count.sum())
    item_order_row = np.repeat(np.arange(n_orders), count)
    item_id = np.arange(first_item_id, first_item_id + n, dtype=np.int64)
    product_id = rng.integers(1, n_products + 1, n, dtype=np.int64)
    price_row = product_id - 1
    missing = rng.random(n) < 0.01
    unknown = rng.random(n) < 0.002  # a product id the products table does not hold
    product_id = np.where(unknown, n_products + 1 + rng.integers(0, 1000, n), product_id)
    product_id[missing] = 0
    item_status = status[item_order_row].copy()
    odd = rng.random(n) < 0.03
    item_status[odd] = rng.choice(5, size=int(odd.sum()), p=BASE_STATUS_P)
    return _Orders(
        order_id=order_id,
        user_id=user_id,
        status=status,
        created=created,
        shipped=shipped,
        delivered=delivered,
        returned=returned,
        count=count,
        num_zero=rng.random(n_orders) < 0.01,
        created_null=rng.random(n_orders) < 0.002,
        trim=trim,
        item_id=item_id,
        item_order_row=item_order_row,
        product_id=product_id,
        inventory_item_id=item_id * 3 - rng.integers(0, 3, n),
        item_status=item_status,
        item_offset=rng.integers(-3600, 3600, n) * MICROS,
        price_row=price_row,
        price_zero=rng.random(n) < 0.01,
        price_null=rng.random(n) < 0.001,
    )


def _gender(user_id: np.ndarray) -> pa.Array:
    female = ((user_id.astype(np.uint64) * np.uint64(2654435761)) >> np.uint64(15)) & np.uint64(1)
    return _strings(np.array(["M", "F"], dtype=object), female.astype(int))


def _order_columns(o: _Orders, rows: np.ndarray | None = None) -> dict[str, pa.Array]:
    """CSV columns of the orders (all, or the given rows)."""
    sel = slice(None) if rows is None else rows
    status = o.status[sel]
    shipped_ok = np.isin(status, (SHIPPED, COMPLETE, RETURNED))
    delivered_ok = np.isin(status, (COMPLETE, RETURNED))
    user_id = o.user_id[sel]
    return {
        "order_id": pa.array(o.order_id[sel]),
        "user_id": pa.array(user_id),
        "status": _strings(STATUSES, status),
        "gender": _gender(user_id),
        "created_at": _ts_strings(o.created[sel], ~o.created_null[sel], trim_mask=o.trim[sel]),
        "returned_at": _ts_strings(o.returned[sel], status == RETURNED),
        "shipped_at": _ts_strings(o.shipped[sel], shipped_ok),
        "delivered_at": _ts_strings(o.delivered[sel], delivered_ok),
        "num_of_item": pa.array(np.where(o.num_zero[sel], 0, o.count[sel])),
    }


def _item_columns(o: _Orders, products: _Products, rows: np.ndarray | None = None) -> dict[str, pa.Array]:
    """CSV columns of the order items (all, or the given item rows)."""
    sel = slice(None) if rows is None else rows
    order_row = o.item_order_row[sel]
    status = o.item_status[sel]
    price = products.retail_text.take(pa.array(o.price_row[sel]))
    price = pc.if_else(pa.array(o.price_zero[sel]), "0", price)
    price = pc.if_else(pa.array(o.price_null[sel]), pa.scalar(None, pa.string()), price)
    product_id = o.product_id[sel]
    return {
        "id": pa.array(o.item_id[sel]),
        "order_id": pa.array(o.order_id[order_row]),
        "user_id": pa.array(o.user_id[order_row]),
        "product_id": pa.array(product_id, mask=product_id == 0),
        "inventory_item_id": pa.array(o.inventory_item_id[sel]),
        "status": _strings(STATUSES, status),
        "created_at": _ts_strings(o.created[order_row] + o.item_offset[sel], fractional=True),
        "shipped_at": _ts_strings(
            o.shipped[order_row], np.isin(status, (SHIPPED, COMPLETE, RETURNED)), fractional=True
        ),
        "delivered_at": _ts_strings(o.delivered[order_row], np.isin(status, (COMPLETE, RETURNED)), fractional=True),
        "returned_at": _ts_strings(o.returned[order_row], status == RETURNED, fractional=True),
        "sale_price": price,
    }


def _n_users(n_items: int) -> int:
    return max(100, int(n_items / 2.5 * 0.8))


def _build_base(n_items: int, seed: int, n_products: int) -> tuple[_Products, _Orders]:
    products = _products(n_products, seed)
    rng = np.random.default_rng([seed, 2])
    orders = _orders(rng, n_items, 1, 1, _n_users(n_items), n_products, START, END, BASE_STATUS_P, ramp=True)
    return products, orders


def _iso(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat()


def generate_base(out_dir: Path, n_items: int, seed: int = 0, *, n_products: int = N_PRODUCTS) -> dict:
    """Write ``products.csv``, ``orders.csv`` and ``order_items.csv`` into ``out_dir``.

    Args:
        out_dir: Target directory (created if missing).
        n_items: Number of order_items rows (exact); orders follow at ~2.5 items per order.
        seed: Random seed; the same seed and sizes give byte-identical files.
        n_products: Number of products (default 29,120 as in the real export).

    Returns:
        A JSON-serialisable dict: ``seed``, ``n_items``, ``n_orders``, ``n_products``, ``n_users``,
        ``max_order_id``, ``max_item_id``, ``max_product_id``, ``start`` / ``end`` (ISO timestamps of
        the created_at range ``[start, end)``), ``files`` (name -> path) and ``seconds`` (wall time).
        Pass it to :func:`generate_increment`.
    """
    if n_items < 1:
        raise ValueError("n_items must be >= 1")
    began = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    products, orders = _build_base(n_items, seed, n_products)
    files = {
        "products": out_dir / "products.csv",
        "orders": out_dir / "orders.csv",
        "order_items": out_dir / "order_items.csv",
    }
    _write(files["products"], PRODUCTS_HEADER, products.columns)
    _write(files["orders"], ORDERS_HEADER, _order_columns(orders))
    _write(files["order_items"], ITEMS_HEADER, _item_columns(orders, products))
    return {
        "seed": seed,
        "n_items": n_items,
        "n_orders": int(orders.order_id.size),
        "n_products": n_products,
        "n_users": _n_users(n_items),
        "max_order_id": int(orders.order_id[-1]),
        "max_item_id": int(orders.item_id[-1]),
        "max_product_id": n_products,
        "start": _iso(START),
        "end": _iso(END),
        "files": {name: str(path) for name, path in files.items()},
        "seconds": round(time.perf_counter() - began, 3),
    }


def generate_increment(
    out_dir: Path,
    base: dict,
    n_items: int = 50_000,
    days: int = 3,
    update_fraction: float = 0.05,
    seed: int = 1,
    recent_days: int | None = 30,
) -> dict:
    """Write ``orders_increment.csv`` and ``order_items_increment.csv`` into ``out_dir``.

    About ``(1 - update_fraction) * n_items`` item rows belong to new orders (ids above the base's
    maxima) created in the ``days`` days after the base's end; the other ~``update_fraction``
    of the item rows, and about the same share of the order rows, are updates of existing base
    orders: same ``order_id`` / item ``id``, a new status (with matching shipped/delivered/returned
    times), ``num_of_item`` and ``created_at`` repaired where the base row was excluded, and one in
    five of them moved to another ``created_at`` day (their items move with them).

    Args:
        out_dir: Target directory (created if missing).
        base: The dict returned by :func:`generate_base` (or by a previous increment, to chain them:
            ids and times then continue after that increment; updates always target base orders).
        n_items: Total item rows of the increment (new + updated, approximately).
        days: Width of the window, after ``base["end"]``, in which the new orders are created.
        update_fraction: Share of the rows that update existing base orders (0 .. 1).
        recent_days: Updates pick orders created in this many days before the base's end (status
            changes follow recent orders, as in a live shop); None picks from all base orders.
        seed: Random seed of the increment.

    Returns:
        A copy of ``base`` with ``max_order_id``, ``max_item_id`` and ``end`` advanced, and an
        ``increment`` dict: ``n_orders``, ``n_items``, ``n_new_orders``, ``n_new_items``,
        ``n_updated_orders``, ``n_updated_items``, ``n_moved_orders``, ``updated_order_ids`` (a
        sample of up to 20), ``files`` and ``seconds``.
    """
    if not 0.0 <= update_fraction <= 1.0:
        raise ValueError("update_fraction must be within [0, 1]")
    began = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    products, old = _build_base(int(base["n_items"]), int(base["seed"]), int(base["n_products"]))
    rng = np.random.default_rng([int(base["seed"]), 3, seed])

    end = int(datetime.fromisoformat(base["end"]).timestamp())
    # Updates: a random set of base orders whose items add up to ~update_fraction * n_items.
    target = round(n_items * update_fraction)
    upd = np.empty(0, dtype=np.int64)
    if target > 0:
        candidates = np.arange(old.order_id.size)
        if recent_days is not None:
            candidates = np.flatnonzero(old.created >= (end - recent_days * DAY) * MICROS)
        pick = candidates[rng.permutation(candidates.size)[: min(candidates.size, target)]]
        within = np.cumsum(old.count[pick]) <= target
        within[0] = True
        upd = np.sort(pick[within])
    old.status[upd] = NEXT_STATUS[old.status[upd], (rng.random(upd.size) < 0.3).astype(int)]
    moved = rng.random(upd.size) < 0.2
    shift = np.where(moved, rng.integers(1, 31, upd.size), 0) * DAY * MICROS
    # Move forwards or backwards, staying within [START, end of this increment's window).
    forwards = (rng.random(upd.size) < 0.5) & (old.created[upd] + shift < (end + days * DAY) * MICROS)
    shift = np.where(forwards | (old.created[upd] - shift < START * MICROS), shift, -shift)
    for ts in (old.created, old.shipped, old.delivered, old.returned):
        ts[upd] += shift
    old.num_zero[upd] = False
    old.created_null[upd] = False
    item_rows = np.flatnonzero(np.isin(old.item_order_row, upd))
    old.item_status[item_rows] = old.status[old.item_order_row[item_rows]]
    odd = rng.random(item_rows.size) < 0.03
    old.item_status[item_rows[odd]] = rng.choice(5, size=int(odd.sum()), p=BASE_STATUS_P)

    # New orders after the (previous) end.
    n_new = max(0, n_items - item_rows.size)
    new_columns: tuple[dict[str, pa.Array], dict[str, pa.Array]] | None = None
    new_orders = new_items = 0
    max_order_id, max_item_id = int(base["max_order_id"]), int(base["max_item_id"])
    if n_new:
        new = _orders(
            rng,
            n_new,
            max_order_id + 1,
            max_item_id + 1,
            int(base["n_users"] * 1.02) + 1,
            int(base["n_products"]),
            end,
            end + days * DAY,
            NEW_STATUS_P,
            ramp=False,
        )
        new_columns = (_order_columns(new), _item_columns(new, products))
        new_orders, new_items = int(new.order_id.size), int(new.item_id.size)
        max_order_id, max_item_id = int(new.order_id[-1]), int(new.item_id[-1])

    order_parts = [_order_columns(old, upd)]
    item_parts = [_item_columns(old, products, item_rows)]
    if new_columns is not None:
        order_parts.append(new_columns[0])
        item_parts.append(new_columns[1])
    orders_cols = {c: pa.concat_arrays([p[c] for p in order_parts]) for c in ORDERS_HEADER}
    items_cols = {c: pa.concat_arrays([p[c] for p in item_parts]) for c in ITEMS_HEADER}
    files = {"orders": out_dir / "orders_increment.csv", "order_items": out_dir / "order_items_increment.csv"}
    _write(files["orders"], ORDERS_HEADER, orders_cols)
    _write(files["order_items"], ITEMS_HEADER, items_cols)

    result = dict(base)
    result.update(max_order_id=max_order_id, max_item_id=max_item_id, end=_iso(end + days * DAY))
    result["increment"] = {
        "n_orders": int(upd.size) + new_orders,
        "n_items": int(item_rows.size) + new_items,
        "n_new_orders": new_orders,
        "n_new_items": new_items,
        "n_updated_orders": int(upd.size),
        "n_updated_items": int(item_rows.size),
        "n_moved_orders": int(moved.sum()),
        "updated_order_ids": [int(x) for x in old.order_id[upd[:20]]],
        "files": {name: str(path) for name, path in files.items()},
        "seconds": round(time.perf_counter() - began, 3),
    }
    return result


def main(argv: list[str] | None = None) -> None:
    """CLI: ``python bench/generate.py OUT_DIR --items N [--seed S] [--increment-items M --days D]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--items", type=int, required=True, help="order_items rows of the base data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--increment-items", type=int, default=0, help="also write an increment of this many items")
    parser.add_argument("--days", type=int, default=3, help="window of the increment's new orders")
    parser.add_argument("--update-fraction", type=float, default=0.05)
    args = parser.parse_args(argv)
    result = generate_base(args.out_dir, args.items, args.seed)
    if args.increment_items:
        result = generate_increment(
            args.out_dir, result, args.increment_items, args.days, args.update_fraction, seed=args.seed + 1
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
