"""Rows not staged: the reasons, and the rows the reader drops with their counts and lines.

A data row of a file is either yielded by the reader or dropped under a named
reason (``WRONG_FIELD_COUNT``, ``UNBALANCED_QUOTE``); ``RowProblems`` is filled
while the reader's batches are iterated. Staging drops the yielded rows whose key
is missing or not an integer (``MISSING_KEY``, ``NON_INTEGER_KEY``).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

WRONG_FIELD_COUNT = "wrong_field_count"
UNBALANCED_QUOTE = "unbalanced_quote"
MISSING_KEY = "missing_key"
NON_INTEGER_KEY = "non_integer_key"
ROW_REASONS = (WRONG_FIELD_COUNT, UNBALANCED_QUOTE, MISSING_KEY, NON_INTEGER_KEY)

#: ``DroppedRow.text`` keeps at most this many characters of a row.
DROPPED_TEXT_LIMIT = 1_000

#: Line breaks as Arrow and the csv module see them.
LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class DroppedRow:
    """A data row the reader did not yield.

    Attributes:
        line: Physical line (1-based) of the file where the row starts.
        reason: ``WRONG_FIELD_COUNT`` or ``UNBALANCED_QUOTE``.
        text: The row as written (at most ``DROPPED_TEXT_LIMIT`` characters, line break excluded).
    """

    line: int
    reason: str
    text: str


@dataclass
class RowProblems:
    """Rows a reader dropped, filled while its batches are iterated.

    Attributes:
        wrong_field_count: Rows with a wrong number of fields (on one line, or a
            multi-line record whose quotes are balanced).
        unbalanced_quote: Lines swallowed by a quote that opened and did not close
            where it should: each non-blank line of such a record is one row.
        dropped: One entry per dropped row, in file order, up to ``csv_reader.DROPPED_SAMPLE_LIMIT``.
    """

    wrong_field_count: int = 0
    unbalanced_quote: int = 0
    dropped: list[DroppedRow] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Rows dropped, whatever the reason (they count in ``rows_read``)."""
        return self.wrong_field_count + self.unbalanced_quote

    def counts(self) -> dict[str, int]:
        """Rows dropped per reason; both reasons are always present, zeros included."""
        return {WRONG_FIELD_COUNT: self.wrong_field_count, UNBALANCED_QUOTE: self.unbalanced_quote}


def rejected_record(text: str) -> tuple[str | None, list[str]]:
    """Reason of a record Arrow rejected, and its text as rows (``None`` for a blank line).

    A record on one line has a wrong field count. A record over several lines is one
    row with a wrong field count when its quotes are balanced (a quoted line break);
    otherwise a quote opened and never closed, or closed only at a later quote, and
    swallowed the lines after it: each of those lines is a row of its own.
    """
    if not text.strip():
        return None, []
    if "\n" not in text and "\r" not in text:
        return WRONG_FIELD_COUNT, [text]
    try:
        balanced = len(list(csv.reader(io.StringIO(text, newline=""), strict=True))) == 1
    except csv.Error:
        balanced = False
    return (WRONG_FIELD_COUNT, [text]) if balanced else (UNBALANCED_QUOTE, LINE_BREAK.split(text))
