"""Row rules (docs/contract.md, "Row rules"): what staging quarantines, and why."""

import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from pipeline_tasks.contract import (
    CATEGORY_MAX_BYTES,
    DEPARTMENT_MAX_BYTES,
    ORDER_ITEMS,
    ORDERS,
    PRODUCTS,
    ROW_RULES,
    SALE_PRICE_PARTS_LIMIT,
    Dataset,
)
from pipeline_tasks.schemas import QUARANTINE_SCHEMA
from pipeline_tasks.settings import Settings
from pipeline_tasks.transforms.staging import (
    Provenance,
    count_row_problems,
    not_staged_reasons,
    parse_timestamp,
    quarantine_records,
    stage_rows,
)

WHEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def raw(dataset: Dataset, rows: list[dict[str, str]], lines: list[int] | None = None) -> pa.Table:
    columns = {c: pa.array([r.get(c, "") for r in rows], pa.string()) for c in dataset.required_columns}
    if lines is not None:
        columns["_line"] = pa.array(lines, pa.int64())
    return pa.table(columns)


def product(pid: str, category: str = "Tops", department: str = "Women") -> dict[str, str]:
    return {"id": pid, "cost": "1", "retail_price": "2", "category": category, "department": department}


def test_category_at_the_index_sort_key_limit_is_staged_one_byte_more_is_quarantined():
    at_limit = "é" * (CATEGORY_MAX_BYTES // 2)  # two bytes each
    over = at_limit + "x"
    rows = raw(PRODUCTS, [product("1", at_limit), product("2", over), product("3", "  " + at_limit + "  ")])
    assert not_staged_reasons(rows, PRODUCTS).to_pylist() == [None, "category_too_long", None]
    staged = stage_rows(rows, PRODUCTS)
    assert staged.column("id").to_pylist() == [1, 3]


def test_department_longer_than_a_partition_folder_allows_is_quarantined():
    rows = raw(PRODUCTS, [product("1", department="d" * DEPARTMENT_MAX_BYTES), product("2", department="日" * 27)])
    assert not_staged_reasons(rows, PRODUCTS).to_pylist() == [None, "department_too_long"]  # 81 bytes


@pytest.mark.parametrize(
    ("price", "quarantined"),
    [
        ("999999999999999999.999999999999999999", False),
        (str(SALE_PRICE_PARTS_LIMIT), True),
        ("-1e18", True),
        ("99999999999999999999", True),
        ("1e25", False),  # does not parse (over 20 whole digits): staged as null, excluded by cleaning
        ("abc", False),
        ("", False),
    ],
)
def test_sale_price_beyond_the_exact_parts_is_quarantined(price, quarantined):
    rows = raw(ORDER_ITEMS, [{"id": "1", "sale_price": price}])
    assert not_staged_reasons(rows, ORDER_ITEMS).to_pylist() == (["sale_price_out_of_range"] if quarantined else [None])


def test_key_reasons_come_before_row_rules_and_are_counted_once():
    rows = raw(
        PRODUCTS,
        [product("", "x" * 3000), product("1.5", "x" * 3000), product("7", "x" * 3000), product("8")],
    )
    assert not_staged_reasons(rows, PRODUCTS).to_pylist() == [
        "missing_key",
        "non_integer_key",
        "category_too_long",
        None,
    ]
    assert count_row_problems(rows, PRODUCTS) == {"missing_key": 1, "non_integer_key": 1, "category_too_long": 1}
    assert count_row_problems(raw(PRODUCTS, [product("8")]), PRODUCTS) == {}


def test_quarantine_records_say_where_why_and_what():
    rows = raw(PRODUCTS, [product("1"), product("2", "c" * 3000), product(" ", "Tops")], lines=[2, 3, 5])
    origin = Provenance("input/products 2025-03.csv", "v1", "exec-1", WHEN)
    records = quarantine_records(rows, not_staged_reasons(rows, PRODUCTS), PRODUCTS, origin)
    assert records.schema == QUARANTINE_SCHEMA
    got = records.to_pylist()
    assert [(r["line"], r["reason"], r["key"]) for r in got] == [(3, "category_too_long", "2"), (5, "missing_key", " ")]
    first = got[0]
    assert first["value"] == "c" * 2000  # cut at the text limit
    assert first["source_key"] == "input/products 2025-03.csv" and first["source_version"] == "v1"
    assert first["execution_id"] == "exec-1" and first["event_time"] == WHEN and first["dataset"] == "products"
    assert json.loads(got[1]["row"])["category"] == "Tops"


@pytest.mark.parametrize(
    ("text", "carried"),
    [
        ("0001-01-01 00:00:00", True),
        ("9999-12-31 23:59:59.999999", True),
        ("0000-06-01 00:00:00", False),  # year 0: no ISO order_date names it
        ("9999-12-31 23:00:00-05:00", False),  # year 10000 in UTC
        ("0001-01-01 00:30:00+01:00", False),  # year 0 in UTC
    ],
)
def test_timestamps_are_carried_within_years_1_to_9999_utc(text, carried):
    parsed = parse_timestamp(pa.array([text, "2024-01-01 00:00:00"])).to_pylist()
    assert (parsed[0] is not None) is carried
    assert parsed[1] == datetime(2024, 1, 1, tzinfo=UTC)


def test_staged_rows_carry_their_files_event_time():
    rows = stage_rows(raw(ORDERS, [{"order_id": "1", "created_at": "2024-01-01 00:00:00"}]), ORDERS, event_time=WHEN)
    assert rows.column("_event_time").to_pylist() == [WHEN]


def test_every_row_rule_has_a_share_and_settings_override_it():
    rules = [rule for rules in ROW_RULES.values() for rule in rules]
    assert {r.name for r in rules} == {"category_too_long", "department_too_long", "sale_price_out_of_range"}
    assert all(0 < r.max_share <= 1 and r.why for r in rules)
    settings = Settings.from_env({"PIPELINE_ROW_RULE_MAX_SHARE": "category_too_long=0.1"})
    by_name = {r.name: r for r in rules}
    assert settings.max_share(by_name["category_too_long"]) == 0.1
    assert settings.max_share(by_name["sale_price_out_of_range"]) == by_name["sale_price_out_of_range"].max_share
    assert Settings.from_env(settings.to_env()).row_rule_max_share == {"category_too_long": 0.1}
