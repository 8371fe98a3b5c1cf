"""File-level rules (§1–2) and the row-level data-quality count."""

from pathlib import Path

import pytest

from pipeline_tasks.csv_reader import MISSING_KEY, NON_INTEGER_KEY, UNBALANCED_QUOTE, WRONG_FIELD_COUNT
from pipeline_tasks.io.s3 import LocalSource
from pipeline_tasks.validation import validate

ORDERS_HEADER = "order_id,user_id,status,created_at,returned_at,shipped_at,delivered_at,num_of_item"
ROW = "1,10,Complete,2024-01-01 10:00:00,,,,1"


def _write(tmp_path: Path, name: str, data: bytes | str) -> LocalSource:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return LocalSource(path)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("orders.csv", f"{ORDERS_HEADER}\n{ROW}\n"),
        ("orders.csv", f"\ufeff{ORDERS_HEADER}\n{ROW}\n"),
        ("orders.csv", f"{ORDERS_HEADER}\r\n{ROW}\r\n"),
        ("orders.csv", f"{ORDERS_HEADER}"),
        ("orders.csv", f"{ORDERS_HEADER}\n"),
        (
            "Orders_Extra.CSV",
            "Num_Of_Item , order_id,USER_ID,status ,created_at,returned_at,shipped_at,delivered_at,x\n",
        ),
        ("orders.csv", f"{ORDERS_HEADER},gender,extra\n{ROW},F,1\n"),
        ("orders.csv", f"{ORDERS_HEADER},x,X \n{ROW},1,2\n"),
        ("orders.csv", f"\n  \n{ORDERS_HEADER}\n{ROW}\n"),
        (
            "orders.csv",
            f'"order_id","user_id",status,created_at,returned_at,shipped_at,delivered_at,num_of_item\n{ROW}\n',
        ),
    ],
    ids=[
        "plain",
        "bom",
        "crlf",
        "header-no-newline",
        "header-only",
        "reordered-cased-spaced",
        "extra-columns",
        "duplicated-extra-column",
        "blank-lines-before-header",
        "quoted",
    ],
)
def test_valid_files(tmp_path, name, data):
    verdict = validate(_write(tmp_path, name, data))
    assert verdict.valid, verdict.reason
    assert verdict.dataset == "orders"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("orders.csv", b"", "empty file (0 bytes)"),
        ("orders.csv", b"\xef\xbb\xbf", "empty file: only a byte-order mark"),
        ("orders.csv", b"\n\n  \n", "no header row"),
        ("orders.csv", f"{ORDERS_HEADER}\n1,2,\xff\n".encode("latin-1"), "not UTF-8"),
        ("orders.csv", b"\xff\xfeo\x00r\x00", "not UTF-8"),
        ("orders.csv", b"order_id\x00,user_id\n", "not a CSV"),
        ("orders.csv", "order_id,user_id,status\n1,2,x\n", "missing required column(s) for orders: created_at"),
        ("orders.csv", f"{ROW}\n{ROW}\n", "is the first row a header?"),
        ("customers.csv", f"{ORDERS_HEADER}\n{ROW}\n", "unknown dataset"),
        ("orders.json", f"{ORDERS_HEADER}\n{ROW}\n", "unknown dataset"),
    ],
    ids=[
        "empty",
        "bom-only",
        "blank-lines",
        "bad-utf8-in-rows",
        "utf16",
        "nul",
        "missing-column",
        "no-header",
        "unknown",
        "not-csv-name",
    ],
)
def test_invalid_files_have_a_reason(tmp_path, name, data, reason):
    verdict = validate(_write(tmp_path, name, data))
    assert not verdict.valid
    assert reason in verdict.reason


def test_invalid_utf8_deep_in_a_large_file_is_found(tmp_path):
    rows = "".join(f"{i},10,Complete,2024-01-01 10:00:00,,,,1\n" for i in range(200_000))
    data = f"{ORDERS_HEADER}\n{rows}".encode() + b"9,1,\xc3\x28,2024-01-01 10:00:00,,,,1\n"
    verdict = validate(_write(tmp_path, "orders.csv", data))
    assert not verdict.valid and "not UTF-8" in verdict.reason


# pyarrow cannot decode the row's text for the handler: it reports that as unraisable, then fails the read.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_invalid_utf8_in_a_row_with_a_wrong_field_count_is_not_utf8(tmp_path):
    rows = "".join(f"{i},10,Complete,2024-01-01 10:00:00,,,,1\n" for i in range(200_000))
    data = f"{ORDERS_HEADER}\n{rows}".encode() + b"9,\xff\n"
    verdict = validate(_write(tmp_path, "orders.csv", data))
    assert not verdict.valid and verdict.reason.startswith("not UTF-8 text")


def test_row_problems_are_counted_not_rejected(tmp_path):
    data = "\n".join(
        [
            ORDERS_HEADER,
            ROW,
            "2,10,Complete",  # too few fields
            "3,10,Complete,2024-01-01,,,,1,extra",  # too many
            ",10,Complete,2024-01-01 10:00:00,,,,1",  # missing key
            "   ,10,Complete,2024-01-01 10:00:00,,,,1",  # blank key
            "x7,10,Complete,2024-01-01 10:00:00,,,,1",  # not an integer
            "7.0,10,Complete,2024-01-01 10:00:00,,,,1",  # not an integer
            "99999999999999999999,10,Complete,2024-01-01 10:00:00,,,,1",  # beyond int64
            " 8 ,10,Complete,2024-01-01 10:00:00,,,,1",  # fine after trimming
            "",
        ]
    )
    verdict = validate(_write(tmp_path, "orders_dq.csv", data))
    assert verdict.valid
    assert verdict.rows_read == 9
    assert verdict.rows_not_staged == {WRONG_FIELD_COUNT: 2, MISSING_KEY: 2, NON_INTEGER_KEY: 3}


def test_quoted_newlines_and_quotes_stay_in_one_field(tmp_path):
    header = "id,sku,cost,category,name,brand,retail_price,department"
    data = f'{header}\n1,S1,1.5,Tops,"The ""Best""\nShirt",B,3.0,Women\n'
    verdict = validate(_write(tmp_path, "products.csv", data))
    assert verdict.valid and verdict.rows_read == 1 and verdict.rows_not_staged == {}


def test_bom_only_and_empty_are_told_apart(tmp_path):
    assert validate(_write(tmp_path, "orders.csv", b"")).reason == "empty file (0 bytes)"
    assert validate(_write(tmp_path, "orders.csv", b"\xef\xbb\xbf")).reason == "empty file: only a byte-order mark"


@pytest.mark.parametrize("end", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_whitespace_only_lines_are_not_rows(tmp_path, end):
    data = end.join([ORDERS_HEADER, ROW, "   ", "\t", ROW, "", " \t ", "   "]) + end
    verdict = validate(_write(tmp_path, "orders.csv", data))
    assert verdict.valid
    assert verdict.rows_read == 2
    assert verdict.rows_not_staged == {}


def test_an_unclosed_quote_counts_every_swallowed_line(tmp_path):
    rows = [ROW.replace("1,", f"{i},", 1) for i in range(1, 11)]
    rows[1] = rows[1].replace("Complete", '"Complete')  # data row 2 opens a quote that never closes
    verdict = validate(_write(tmp_path, "orders.csv", "\n".join([ORDERS_HEADER, *rows]) + "\n"))
    assert verdict.valid
    assert verdict.rows_read == 10
    assert verdict.rows_not_staged == {UNBALANCED_QUOTE: 9}


def test_a_required_column_named_twice_is_invalid_with_its_positions(tmp_path):
    data = f"{ORDERS_HEADER},Order_ID\n{ROW},2\n"
    verdict = validate(_write(tmp_path, "orders.csv", data))
    assert not verdict.valid
    assert "order_id" in verdict.reason and "columns 1 and 9" in verdict.reason


@pytest.mark.parametrize(
    ("delimiter", "named"), [(";", "';'-separated"), ("\t", "tab-separated"), ("|", "'|'-separated")]
)
def test_another_delimiter_is_named_in_the_reason(tmp_path, delimiter, named):
    data = f"{ORDERS_HEADER.replace(',', delimiter)}\n{ROW.replace(',', delimiter)}\n"
    verdict = validate(_write(tmp_path, "orders.csv", data))
    assert not verdict.valid
    assert verdict.reason.startswith("missing required column(s) for orders: order_id")
    assert f"the header looks {named}; files must be comma-separated" in verdict.reason


def test_an_invisible_character_in_a_required_name_is_named(tmp_path):
    header = ORDERS_HEADER.replace("order_id", "user_x", 1).replace("status", "status,order_id\u200b")
    verdict = validate(_write(tmp_path, "orders.csv", f"{header}\n"))
    assert not verdict.valid
    assert "missing required column(s) for orders: order_id" in verdict.reason
    assert "header column 4 'order_id\\u200b' contains an invisible character U+200B (ZERO WIDTH SPACE)" in (
        verdict.reason
    )


def test_an_invisible_character_is_not_mentioned_when_the_name_would_still_not_match(tmp_path):
    header = ORDERS_HEADER.replace("order_id", "order_idx\u200b", 1)
    verdict = validate(_write(tmp_path, "orders.csv", f"{header}\n"))
    assert verdict.reason == "missing required column(s) for orders: order_id"
