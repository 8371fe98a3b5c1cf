"""Streaming CSV reading shared by validation and staging.

The header is parsed with the standard library from the first bytes of the file
(so every file-level verdict has a precise reason); the rows are then streamed
by Arrow's multi-threaded CSV reader as strings, block by block, so a file of
any size is never held in memory to validate it.
"""

from __future__ import annotations

import codecs
import csv
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv

from pipeline_tasks.contract import Dataset, normalise_header_name
from pipeline_tasks.errors import InvalidFile

#: How many bytes of a file the header must fit in.
HEADER_LIMIT = 1 << 20
#: Arrow reads this many bytes per block.
BLOCK_SIZE = 16 << 20
_BOM = codecs.BOM_UTF8

WRONG_FIELD_COUNT = "wrong_field_count"
MISSING_KEY = "missing_key"
NON_INTEGER_KEY = "non_integer_key"
ROW_REASONS = (WRONG_FIELD_COUNT, MISSING_KEY, NON_INTEGER_KEY)


@dataclass(frozen=True)
class Header:
    """The parsed header row of a CSV file.

    Attributes:
        raw: Column names as written in the file.
        names: Names after trimming and lower-casing.
    """

    raw: tuple[str, ...]
    names: tuple[str, ...]

    def index_of(self, column: str) -> int:
        """Position of the first column with this normalised name."""
        return self.names.index(column)

    def missing(self, dataset: Dataset) -> list[str]:
        present = set(self.names)
        return [c for c in dataset.required_columns if c not in present]


def parse_header(prefix: bytes, *, complete: bool) -> Header:
    """Parse the header from the first bytes of a file.

    Args:
        prefix: The first bytes of the file (at most ``HEADER_LIMIT``).
        complete: True when ``prefix`` is the whole file.

    Raises:
        InvalidFile: With a human-readable reason when there is no usable header.
    """
    if not prefix or prefix == _BOM:
        raise InvalidFile("empty file (0 bytes)")
    body = prefix[len(_BOM) :] if prefix.startswith(_BOM) else prefix
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        text = decoder.decode(body, final=complete)
    except UnicodeDecodeError as error:
        raise InvalidFile(
            f"not UTF-8 text: byte 0x{body[error.start]:02x} at offset {error.start} cannot be decoded"
        ) from None
    if "\x00" in text:
        raise InvalidFile("not a CSV file: binary content (NUL bytes)")
    if not text.strip():
        raise InvalidFile("no header row: the file holds only blank lines")
    lines = io.StringIO(text, newline="")
    try:
        row = next((r for r in csv.reader(lines, strict=True) if r), None)
    except csv.Error as error:
        raise InvalidFile(f"not a CSV file: {error}") from None
    if row is None:
        raise InvalidFile("no header row: the file holds only blank lines")
    if not complete and lines.tell() >= len(text):
        raise InvalidFile(f"not a CSV file: no line break in the first {HEADER_LIMIT} bytes")
    names = tuple(normalise_header_name(name) for name in row)
    if not any(names):
        raise InvalidFile("no header row: the first row has no column names")
    return Header(raw=tuple(row), names=names)


def check_columns(header: Header, dataset: Dataset) -> None:
    """Raise InvalidFile when the header misses a required column of the dataset."""
    missing = header.missing(dataset)
    if not missing:
        return
    reason = f"missing required column(s) for {dataset.name}: {', '.join(missing)}"
    if len(missing) == len(dataset.required_columns):
        reason += " (is the first row a header?)"
    raise InvalidFile(reason)


@dataclass
class RowProblems:
    """Counts of rows a reader dropped because their field count was wrong."""

    wrong_field_count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _on_invalid_row(self, row: pacsv.InvalidRow) -> str:
        with self._lock:
            self.wrong_field_count += 1
        return "skip"


def read_raw_batches(
    stream: BinaryIO, header: Header, dataset: Dataset, problems: RowProblems
) -> Iterator[pa.RecordBatch]:
    """Stream the rows of a CSV file as string batches of the dataset's required columns.

    Columns are renamed to their normalised names; extra columns are dropped;
    rows with a wrong number of fields are skipped and counted in ``problems``.

    Raises:
        InvalidFile: When the bytes are not UTF-8 or Arrow cannot parse the CSV.
    """
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in header.raw},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    parse = pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=problems._on_invalid_row)
    read = pacsv.ReadOptions(block_size=BLOCK_SIZE)
    wanted = [header.index_of(c) for c in dataset.required_columns]
    try:
        reader = pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
        if len(reader.schema) != len(header.raw):
            raise InvalidFile("not a CSV file: the header row could not be parsed consistently")
        for batch in reader:
            yield pa.RecordBatch.from_arrays([batch.column(i) for i in wanted], names=list(dataset.required_columns))
    except pa.ArrowInvalid as error:
        message = str(error)
        if "Empty CSV file" in message:
            return  # a header without a line break: Arrow sees no rows, nor do we
        if "UTF8" in message or "UTF-8" in message:
            raise InvalidFile(f"not UTF-8 text: {message}") from None
        raise InvalidFile(f"not a CSV file: {message}") from None


def empty_raw_table(dataset: Dataset) -> pa.Table:
    """A table of the dataset's required columns as strings, with no rows."""
    return pa.table({c: pa.array([], pa.string()) for c in dataset.required_columns})
