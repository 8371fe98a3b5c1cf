"""The streaming reader: every data line is a yielded row or a dropped row, each with its line."""

from __future__ import annotations

import io
import random

import pytest

from pipeline_tasks import csv_reader
from pipeline_tasks.contract import ORDERS
from pipeline_tasks.csv_reader import (
    LINE_COLUMN,
    UNBALANCED_QUOTE,
    WRONG_FIELD_COUNT,
    DroppedRow,
    RowProblems,
    empty_raw_table,
    parse_header,
    read_raw_batches,
)

HEADER = "order_id,user_id,status,created_at,returned_at,shipped_at,delivered_at,num_of_item"


def row(key: int | str, status: str = "Complete") -> str:
    return f"{key},10,{status},2024-01-01 10:00:00,,,,1"


def read(data: bytes) -> tuple[list[tuple[str, int]], RowProblems]:
    """(order_id, line) of each yielded row, and the reader's problems."""
    header = parse_header(data[: csv_reader.HEADER_LIMIT], complete=len(data) <= csv_reader.HEADER_LIMIT)
    problems = RowProblems()
    rows: list[tuple[str, int]] = []
    for batch in read_raw_batches(io.BytesIO(data), header, ORDERS, problems):
        assert batch.schema.names == [*ORDERS.required_columns, LINE_COLUMN]
        rows += zip(batch.column("order_id").to_pylist(), batch.column(LINE_COLUMN).to_pylist(), strict=True)
    return rows, problems


def lines(*physical: str, end: str = "\n") -> bytes:
    """A file of these physical lines, each ended by ``end``."""
    return "".join(line + end for line in physical).encode()


def test_batches_carry_the_line_column_and_so_does_the_empty_table():
    rows, _ = read(lines(HEADER, row(1), row(2)))
    assert rows == [("1", 2), ("2", 3)]
    empty = empty_raw_table(ORDERS)
    assert empty.schema.names == [*ORDERS.required_columns, LINE_COLUMN]
    assert empty.schema.field(LINE_COLUMN).type == "int64"


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_blank_and_whitespace_only_lines_are_not_rows_but_keep_their_line(end):
    data = lines(HEADER, row(1), "", "   ", row(2), "\t", "", row(3), " ", "\t ", "", end=end)
    rows, problems = read(data)
    # Lines: 1 header, 2 row 1, 3-4 blank, 5 row 2, 6-7 blank, 8 row 3, 9-11 blank.
    assert rows == [("1", 2), ("2", 5), ("3", 8)]
    assert problems.rows == 0 and problems.dropped == []


def test_blank_lines_before_the_header_shift_every_line():
    rows, problems = read(lines("", "  ", HEADER, row(1), "", row(2)))
    assert rows == [("1", 4), ("2", 6)]
    assert problems.rows == 0


def test_a_byte_order_mark_is_not_a_line():
    rows, _ = read(b"\xef\xbb\xbf" + lines(HEADER, row(1), "", row(2)))
    assert rows == [("1", 2), ("2", 4)]


@pytest.mark.parametrize("end", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_a_quoted_multi_line_field_is_one_row_on_its_first_line(end):
    # Row 2's status spans lines 3-6, one of them empty inside the quotes.
    data = lines(HEADER, row(1), row(2, f'"Com{end}{end}ple{end}te"'), row(3), end=end)
    rows, problems = read(data)
    assert rows == [("1", 2), ("2", 3), ("3", 7)]
    assert problems.rows == 0


def test_a_row_with_a_wrong_field_count_is_dropped_with_its_line():
    data = lines(HEADER, row(1), "2,10,Complete", "", row(3) + ",extra", row(4))
    rows, problems = read(data)
    assert rows == [("1", 2), ("4", 6)]
    assert problems.counts() == {WRONG_FIELD_COUNT: 2, UNBALANCED_QUOTE: 0}
    assert problems.rows == 2 and problems.wrong_field_count == 2
    assert problems.dropped == [
        DroppedRow(3, WRONG_FIELD_COUNT, "2,10,Complete"),
        DroppedRow(5, WRONG_FIELD_COUNT, row(3) + ",extra"),
    ]


def test_a_quote_never_closed_swallows_the_rest_of_the_file_and_each_line_is_counted():
    body = [row(i) for i in range(1, 11)]
    body[1] = row(2, '"Complete')  # opens a quote on line 3 that nothing closes
    rows, problems = read(lines(HEADER, *body))
    assert rows == [("1", 2)]
    assert problems.counts() == {WRONG_FIELD_COUNT: 0, UNBALANCED_QUOTE: 9}
    # Each swallowed line is one dropped row, on its own line, with its own text.
    assert problems.dropped == [DroppedRow(i + 2, UNBALANCED_QUOTE, body[i]) for i in range(1, 10)]


def test_a_quote_closed_by_a_later_quote_swallows_the_lines_between():
    body = [row(i) for i in range(1, 8)]
    body[1] = row(2, '"Complete')  # line 3 opens a quote ...
    body[4] = '5,"10",Complete,2024-01-01 10:00:00,,,,1'  # ... that the quote on line 6 closes: 9 fields
    rows, problems = read(lines(HEADER, *body, "", "   "))
    assert rows == [("1", 2), ("6", 7), ("7", 8)]
    assert problems.counts() == {WRONG_FIELD_COUNT: 0, UNBALANCED_QUOTE: 4}
    assert [d.line for d in problems.dropped] == [3, 4, 5, 6]


def test_a_swallowed_blank_line_is_not_a_row():
    rows, problems = read(lines(HEADER, row(1), row(2, '"Complete'), "", "  ", row(3)))
    assert rows == [("1", 2)]
    assert problems.unbalanced_quote == 2
    assert [d.line for d in problems.dropped] == [3, 6]


def test_a_multi_line_record_with_balanced_quotes_and_a_wrong_field_count_is_one_row():
    rows, problems = read(lines(HEADER, '2,10,"Com', 'plete"', row(3)))
    assert rows == [("3", 4)]
    assert problems.counts() == {WRONG_FIELD_COUNT: 1, UNBALANCED_QUOTE: 0}
    assert problems.dropped == [DroppedRow(2, WRONG_FIELD_COUNT, '2,10,"Com\nplete"')]


def test_dropped_text_is_truncated():
    long = "x" * (csv_reader.DROPPED_TEXT_LIMIT + 50)
    _, problems = read(lines(HEADER, long))
    assert problems.dropped == [DroppedRow(2, WRONG_FIELD_COUNT, long[: csv_reader.DROPPED_TEXT_LIMIT])]


def test_dropped_samples_are_capped_but_counts_are_not(monkeypatch):
    monkeypatch.setattr(csv_reader, "DROPPED_SAMPLE_LIMIT", 3)
    _, problems = read(lines(HEADER, *["1,2"] * 5))
    assert problems.wrong_field_count == 5
    assert [d.line for d in problems.dropped] == [2, 3, 4]


@pytest.mark.parametrize("block_size", [100, 113, 128, 131, 150, 173, 257])
def test_lines_stay_right_across_block_boundaries(monkeypatch, block_size):
    monkeypatch.setattr(csv_reader, "BLOCK_SIZE", block_size)
    body = [
        row(1),
        row(2, '"a\n\nlong\nstatus"'),  # lines 3-6
        "",
        row(3),  # line 8
        "bad,row",  # line 9
        "\t",
        row(4, '"x"'),  # line 11
        row(5, '"' + "y" * 25 + "\n" + "z" * 25 + '"'),  # lines 12-13
        "",
        "",
        row(6),  # line 16
    ]
    rows, problems = read(b"\xef\xbb\xbf" + lines(HEADER, *body, end="\r\n"))
    assert rows == [("1", 2), ("2", 3), ("3", 8), ("4", 11), ("5", 12), ("6", 16)]
    assert problems.dropped == [DroppedRow(9, WRONG_FIELD_COUNT, "bad,row")]


def _random_file(rng: random.Random, end: str) -> tuple[bytes, list[tuple[str, int]], list[int]]:
    """A file of random records, with the line of each row known as it is written."""
    physical = [HEADER]
    expected: list[tuple[str, int]] = []
    wrong: list[int] = []
    for key in range(200):
        kind = rng.choice(["row", "row", "row", "quoted", "blank", "spaces", "wrong"])
        line = len(physical) + 1
        if kind == "row":
            expected.append((str(key), line))
            physical.append(row(key))
        elif kind == "quoted":
            parts = [rng.choice(["", "a", "b,c", "  "]) for _ in range(rng.randint(2, 4))]
            expected.append((str(key), line))
            text = row(key, '"' + end.join(parts) + '"')
            physical += text.split(end) if end else [text]
        elif kind == "blank":
            physical.append("")
        elif kind == "spaces":
            physical.append(rng.choice([" ", "\t", "  \t "]))
        else:
            wrong.append(line)
            physical.append(f"{key},10")
    return lines(*physical, end=end), expected, wrong


@pytest.mark.parametrize("seed", range(6))
def test_lines_of_random_files_match_where_they_were_written(monkeypatch, seed):
    rng = random.Random(seed)
    end = ["\n", "\r\n"][seed % 2]
    data, expected, wrong = _random_file(rng, end)
    monkeypatch.setattr(csv_reader, "BLOCK_SIZE", rng.randint(100, 2000))
    rows, problems = read(data)
    assert rows == expected
    assert [d.line for d in problems.dropped] == wrong
    assert problems.counts() == {WRONG_FIELD_COUNT: len(wrong), UNBALANCED_QUOTE: 0}


@pytest.mark.parametrize("end", ["\n", "\r\n", ""], ids=["lf", "crlf", "no-final-line-break"])
def test_a_quote_never_closed_in_the_last_field_swallows_the_rest_of_the_file(end):
    # Arrow accepts such a record (its field count is right); it is taken back at the end of the file.
    body = [f"{i},10,Complete,2024-01-01 10:00:00,,,,{i}" for i in range(1, 11)]
    body[1] = body[1][:-1] + '"2'  # line 3: the last field opens a quote
    data = ("\n".join([HEADER, *body]) + end).encode()
    rows, problems = read(data)
    assert rows == [("1", 2)]
    assert problems.counts() == {WRONG_FIELD_COUNT: 0, UNBALANCED_QUOTE: 9}
    assert [d.line for d in problems.dropped] == list(range(3, 12))
    assert [d.text for d in problems.dropped[1:]] == body[2:]


@pytest.mark.parametrize("end", ["\n", ""], ids=["lf", "no-final-line-break"])
def test_a_closed_quote_in_the_last_field_of_the_last_row_is_a_row(end):
    rows, problems = read((f'{HEADER}\n{row(1)}\n{row(2)[:-1]}"line\nbreak\n"' + end).encode())
    assert rows == [("1", 2), ("2", 3)]
    assert problems.rows == 0
