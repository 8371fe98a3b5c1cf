"""Staging rules (§3): trimming, nulls, types, keys, dedup, partitions."""

import random
from datetime import UTC, datetime
from decimal import Decimal, localcontext

import pyarrow as pa
import pytest

from pipeline_tasks.contract import ORDER_ITEMS, ORDERS, PRODUCTS, SALE_PRICE_PARTS, SALE_PRICE_PARTS_LIMIT
from pipeline_tasks.schemas import MONEY, staged_schema
from pipeline_tasks.transforms.staging import (
    dedupe_last_wins,
    money_parts,
    parse_decimal,
    parse_int64,
    parse_timestamp,
    stage_rows,
    trim_to_null,
)


def ts(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-01-15 10:23:45+02:00", ts(2023, 1, 15, 8, 23, 45)),
        ("2023-01-15T10:23:45Z", ts(2023, 1, 15, 10, 23, 45)),
        ("2024-06-23 23:41:55.000000 UTC", ts(2024, 6, 23, 23, 41, 55)),
        ("2023-01-15 10:23:45", ts(2023, 1, 15, 10, 23, 45)),
        ("2023-01-15T10:23:45.5", ts(2023, 1, 15, 10, 23, 45, 500000)),
        ("2023-01-15T10:23:45.123456789Z", ts(2023, 1, 15, 10, 23, 45, 123456)),
        ("2023-01-15T23:30:00-05:30", ts(2023, 1, 16, 5, 0, 0)),
        ("2023-01-16T01:00:00+0200", ts(2023, 1, 15, 23, 0, 0)),
        ("2023-01-16T01:00:00+02", ts(2023, 1, 15, 23, 0, 0)),
        ("2024-07-23 11:09:00 UTC", ts(2024, 7, 23, 11, 9, 0)),
        ("2023-01-15 10:23", ts(2023, 1, 15, 10, 23, 0)),
        ("2023-02-30 10:00:00", None),
        ("2023-01-15 25:00:00", None),
        ("2023-01-15", None),
        ("15/01/2023 10:23:45", None),
        ("yesterday", None),
        (None, None),
    ],
)
def test_timestamps(text, expected):
    assert parse_timestamp(pa.array([text], pa.string())).to_pylist() == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0199999995529651", Decimal("0.0199999995529651")),
        ("46.35", Decimal("46.35")),
        ("-3", Decimal("-3")),
        ("+4.5", Decimal("4.5")),
        (".5", Decimal("0.5")),
        ("1e2", Decimal("100")),
        ("1e18", Decimal(10**18)),  # 37 digits with the scale: past Python's default context
        ("-2.5E19", Decimal("-25000000000000000000")),
        ("1e20", None),  # 21 whole digits do not fit decimal(38, 18)
        ("0.12345678901234567891", Decimal("0.123456789012345678")),
        ("12,50", None),
        ("$5", None),
        ("NaN", None),
        ("inf", None),
        (None, None),
    ],
)
def test_decimals_are_exact(text, expected):
    [value] = parse_decimal(pa.array([text], pa.string())).to_pylist()
    assert value == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("+2", 2),
        ("-3", -3),
        ("007", 7),
        ("9223372036854775807", 2**63 - 1),
        ("9223372036854775808", None),
        ("1.0", None),
        ("1e3", None),
        ("x", None),
        (None, None),
        ("0x10", None),
        ("0X1F", None),
        ("--5", None),
        ("\u0661\u0662", None),
    ],
)
def test_integers(text, expected):
    assert parse_int64(pa.array([text], pa.string())).to_pylist() == [expected]


def test_trim_and_empty_is_null():
    assert trim_to_null(pa.array(["  a ", "", "   ", "\tb\n", None])).to_pylist() == ["a", None, None, "b", None]


def _raw(dataset, rows):
    return pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in dataset.required_columns})


def test_stage_rows_types_trims_drops_bad_keys_and_partitions():
    raw = _raw(
        ORDERS,
        [
            {
                "order_id": " 1 ",
                "user_id": "10",
                "status": " Complete ",
                "created_at": "2024-03-31 23:30:00-01:00",
                "num_of_item": "2",
            },
            {"order_id": "x", "user_id": "11", "created_at": "2024-01-01 00:00:00"},
            {"order_id": "", "user_id": "12"},
            {"order_id": "3", "user_id": "abc", "status": "", "created_at": "garbage", "num_of_item": "1.5"},
        ],
    )
    staged = stage_rows(raw, ORDERS)
    rows = staged.to_pylist()
    assert [r["order_id"] for r in rows] == [1, 3]
    assert rows[0]["status"] == "Complete"
    assert rows[0]["created_at"] == ts(2024, 4, 1, 0, 30)
    assert (rows[0]["year"], rows[0]["month"]) == (2024, 4)
    assert rows[1]["user_id"] is None and rows[1]["status"] is None and rows[1]["num_of_item"] is None
    assert rows[1]["created_at"] is None and rows[1]["year"] is None


def test_products_keep_department_for_partitioning():
    raw = _raw(PRODUCTS, [{"id": "1", "cost": "1", "retail_price": "2", "department": " Women ", "category": " "}])
    [row] = stage_rows(raw, PRODUCTS).to_pylist()
    assert row["department"] == "Women" and row["category"] is None


def test_dedupe_keeps_the_last_row_of_each_key():
    rows = pa.table({"id": [3, 1, 3, 2, 1], "v": ["a", "b", "c", "d", "e"]})
    assert dedupe_last_wins(rows, "id").to_pydict() == {"id": [1, 2, 3], "v": ["e", "d", "c"]}


def test_change_feed_values_of_any_string_layout():
    from pipeline_tasks.transforms.changes import changed_keys

    feed = pa.table({"category": pa.array(["b", None, "a", "b"], pa.string_view())})
    assert changed_keys(feed, "category") == ["a", "b"]


def test_cleaning_exclusions_count_each_row_under_the_first_rule_it_breaks():
    from pipeline_tasks.contract import ORDER_ITEMS
    from pipeline_tasks.transforms.staging import count_cleaning_exclusions

    raw = _raw(
        ORDER_ITEMS,
        [
            {"id": "1", "product_id": "7", "sale_price": "9.99"},  # kept
            {"id": "2", "product_id": "", "sale_price": "0"},  # breaks both rules: counted once, first rule
            {"id": "3", "product_id": "7", "sale_price": "0"},
            {"id": "4", "product_id": "7", "sale_price": "-1"},
            {"id": "5", "product_id": "7", "sale_price": ""},
            {"id": "6", "product_id": "7", "sale_price": "0.01"},  # kept
        ],
    )
    staged = stage_rows(raw, ORDER_ITEMS)
    assert count_cleaning_exclusions(staged, ORDER_ITEMS) == {
        "product_id_missing": 1,
        "sale_price_missing_or_not_positive": 3,
    }
    orders = stage_rows(
        _raw(ORDERS, [{"order_id": "1", "created_at": "2024-01-01 00:00:00", "num_of_item": "1"}]), ORDERS
    )
    assert count_cleaning_exclusions(orders, ORDERS) == {}


def _parts_of(value: Decimal | None) -> tuple[int | None, int | None, int | None]:
    with localcontext(prec=80):
        if value is None or abs(value) >= SALE_PRICE_PARTS_LIMIT:
            return None, None, None
        sign = -1 if value < 0 else 1
        attos = int(abs(value).scaleb(18))
    return sign * (attos // 10**18), sign * (attos // 10**9 % 10**9), sign * (attos % 10**9)


@pytest.mark.parametrize("seed", range(10))
def test_money_parts_add_up_to_the_exact_decimal(seed):
    rng = random.Random(seed)
    values: list[Decimal | None] = [
        None,
        Decimal(0),
        Decimal("1E-18"),
        Decimal("-1E-18"),
        Decimal("0.0199999995529651"),
    ]
    values += [Decimal("999999999999999999.999999999999999999"), Decimal("1E18"), Decimal("-12345678901234567890")]
    for _ in range(200):
        scale, whole_digits = rng.randint(0, 18), rng.randint(0, 20)
        value = Decimal(rng.randint(0, 10 ** (whole_digits + scale) - 1)).scaleb(-scale)
        values.append(-value if rng.random() < 0.3 else value)
    array = pa.array(values, MONEY)
    parts = [part.to_pylist() for part in money_parts(array)]
    assert list(zip(*parts, strict=True)) == [_parts_of(v) for v in values]
    with localcontext(prec=80):
        for value, units, nanos, attos in zip(values, *parts, strict=True):
            if units is not None:
                assert Decimal(units) + Decimal(nanos).scaleb(-9) + Decimal(attos).scaleb(-18) == value


def test_staged_items_carry_the_parts_of_their_sale_price():
    raw = pa.table({name: pa.array(["1"], pa.string()) for name in ORDER_ITEMS.required_columns})
    raw = raw.set_column(raw.schema.get_field_index("sale_price"), "sale_price", pa.array(["-2.5"]))
    staged = stage_rows(raw, ORDER_ITEMS)
    assert [staged.column(name).to_pylist() for name in SALE_PRICE_PARTS] == [[-2], [-500000000], [0]]
    assert staged.schema == staged_schema(ORDER_ITEMS)
    assert not set(SALE_PRICE_PARTS) & set(staged_schema(ORDERS).names)


def test_money_parts_of_no_values_and_of_only_nulls():
    assert [p.to_pylist() for p in money_parts(pa.array([], MONEY))] == [[], [], []]
    assert [p.to_pylist() for p in money_parts(pa.nulls(2, MONEY))] == [[None, None]] * 3
