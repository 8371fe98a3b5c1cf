"""Streaming CSV reading shared by validation and staging.

The header is parsed with the standard library from the first bytes of the file
(so every file-level verdict has a precise reason); the rows are then streamed
by Arrow's CSV reader as strings, block by block, so a file of any size is never
held in memory to validate it.

Every data line of the file is accounted for: a row is either yielded (with the
physical line it starts on) or dropped under a named reason, and blank or
whitespace-only lines are not rows. Arrow numbers the records it rejects but not
the ones it accepts, and it drops empty lines without trace, so the line of each
row is computed here: the bytes Arrow reads are scanned for empty lines, each
record spans one line plus the line breaks inside its values, and the records
fill the non-empty lines in order (numpy, per batch).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipeline_tasks.contract import Dataset, normalise_header_name
from pipeline_tasks.errors import InvalidFile

#: How many bytes of a file the header must fit in.
HEADER_LIMIT = 1 << 20
#: Arrow reads this many bytes per block. The reader holds several blocks' worth at once: with
#: 16 MiB blocks the validation task (1 GB) peaked over its memory on a 3 GB file
#: (docs/benchmarks.md, "A shop's whole history in one batch").
BLOCK_SIZE = 4 << 20
_BOM = codecs.BOM_UTF8

WRONG_FIELD_COUNT = "wrong_field_count"
UNBALANCED_QUOTE = "unbalanced_quote"
MISSING_KEY = "missing_key"
NON_INTEGER_KEY = "non_integer_key"
ROW_REASONS = (WRONG_FIELD_COUNT, UNBALANCED_QUOTE, MISSING_KEY, NON_INTEGER_KEY)

#: Column of every batch ``read_raw_batches`` yields: the physical line (1-based) where the row starts.
LINE_COLUMN = "_line"
#: ``RowProblems.dropped`` keeps at most this many rows.
DROPPED_SAMPLE_LIMIT = 10_000
#: ``DroppedRow.text`` keeps at most this many characters of a row.
DROPPED_TEXT_LIMIT = 1_000

#: Delimiters a file is sometimes written with instead of the comma.
_OTHER_DELIMITERS = {";": "';'", "\t": "tab", "|": "'|'"}
#: Line breaks as Arrow and the csv module see them.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_TWO_BYTES = np.dtype("<u2")


@dataclass(frozen=True)
class Header:
    """The parsed header row of a CSV file.

    Attributes:
        raw: Column names as written in the file.
        names: Names after trimming and lower-casing.
        last_line: Physical line (1-based) on which the header row ends; data starts after it.
        ends_file: True when nothing follows the header row (no data lines).
    """

    raw: tuple[str, ...]
    names: tuple[str, ...]
    last_line: int = 1
    ends_file: bool = False

    def index_of(self, column: str) -> int:
        """Position of the first column with this normalised name."""
        return self.names.index(column)

    def missing(self, dataset: Dataset) -> list[str]:
        present = set(self.names)
        return [c for c in dataset.required_columns if c not in present]


def _is_blank(row: list[str]) -> bool:
    return not row or (len(row) == 1 and not row[0].strip())


def parse_header(prefix: bytes, *, complete: bool) -> Header:
    """Parse the header from the first bytes of a file.

    Blank and whitespace-only lines before the header are skipped.

    Args:
        prefix: The first bytes of the file (at most ``HEADER_LIMIT``).
        complete: True when ``prefix`` is the whole file.

    Raises:
        InvalidFile: With a human-readable reason when there is no usable header.
    """
    if not prefix:
        raise InvalidFile("empty file (0 bytes)")
    if prefix == _BOM:
        raise InvalidFile("empty file: only a byte-order mark")
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
    reader = csv.reader(lines, strict=True)
    try:
        row = next((r for r in reader if not _is_blank(r)), None)
    except csv.Error as error:
        raise InvalidFile(f"not a CSV file: {error}") from None
    if row is None:
        raise InvalidFile("no header row: the file holds only blank lines")
    ends_file = lines.tell() >= len(text)
    if not complete and ends_file:
        raise InvalidFile(f"not a CSV file: no line break in the first {HEADER_LIMIT} bytes")
    names = tuple(normalise_header_name(name) for name in row)
    if not any(names):
        raise InvalidFile("no header row: the first row has no column names")
    return Header(raw=tuple(row), names=names, last_line=reader.line_num, ends_file=complete and ends_file)


def check_columns(header: Header, dataset: Dataset) -> None:
    """Raise InvalidFile when the header misses or repeats a required column of the dataset.

    The reason says what to fix: an invisible character glued to a required name, a
    header that seems to use another delimiter than the comma, or the positions of a
    required column named twice. A repeated extra column is allowed (it is not read).
    """
    problems = []
    missing = header.missing(dataset)
    if missing:
        reason = f"missing required column(s) for {dataset.name}: {', '.join(missing)}"
        hints = _invisible_characters(header, missing) + _other_delimiter(header)
        if hints:
            reason += " — " + "; ".join(hints)
        elif len(missing) == len(dataset.required_columns):
            reason += " (is the first row a header?)"
        problems.append(reason)
    repeated = [
        f"{name} (columns {_and_list([str(i + 1) for i, n in enumerate(header.names) if n == name])})"
        for name in dataset.required_columns
        if header.names.count(name) > 1
    ]
    if repeated:
        problems.append(f"required column(s) named more than once for {dataset.name}: {', '.join(repeated)}")
    if problems:
        raise InvalidFile("; ".join(problems))


def _and_list(items: list[str]) -> str:
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else items[0]


def _invisible_characters(header: Header, missing: list[str]) -> list[str]:
    """Hints for header names that match a missing column once invisible characters are removed."""
    hints = []
    for position, raw in enumerate(header.raw, start=1):
        invisible = [c for c in dict.fromkeys(raw) if unicodedata.category(c) == "Cf"]
        visible = normalise_header_name("".join(c for c in raw if c not in invisible))
        if invisible and visible in missing:
            described = ", ".join(f"U+{ord(c):04X} ({unicodedata.name(c, 'unnamed')})" for c in invisible)
            which, it = ("an invisible character", "it") if len(invisible) == 1 else ("invisible characters", "them")
            hints.append(f"header column {position} {raw!r} contains {which} {described}; remove {it}")
    return hints


def _other_delimiter(header: Header) -> list[str]:
    """A hint when the header seems to be separated by something else than commas."""
    text = ",".join(header.raw)
    counts = {d: text.count(d) for d in _OTHER_DELIMITERS if d in text}
    if not counts:
        return []
    delimiter = max(counts, key=lambda d: counts[d])
    name = _OTHER_DELIMITERS[delimiter]
    return [f"the header looks {name}-separated; files must be comma-separated"]


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
        dropped: One entry per dropped row, in file order, up to ``DROPPED_SAMPLE_LIMIT``.
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


def _rejected_record(text: str) -> tuple[str | None, list[str]]:
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
    return (WRONG_FIELD_COUNT, [text]) if balanced else (UNBALANCED_QUOTE, _LINE_BREAK.split(text))


def _pairs(chunk: bytes, pair: bytes) -> int:
    """Occurrences of a two-byte sequence, compared two bytes at a time at even and at odd offsets."""
    value = int.from_bytes(pair, "little")
    even = np.frombuffer(chunk, _TWO_BYTES, count=len(chunk) // 2)
    odd = np.frombuffer(chunk, _TWO_BYTES, count=(len(chunk) - 1) // 2, offset=1)
    return int(np.count_nonzero(even == value)) + int(np.count_nonzero(odd == value))


class _LineStream:
    """The byte stream Arrow reads, noting the empty lines it passes (Arrow skips them)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.closed = False
        #: Whether the file has a line break that is a lone carriage return.
        self.lone_cr = False
        self._lines = 0
        self._empty: list[np.ndarray] = []
        self._empty_lock = threading.Lock()  # Arrow may read on another thread
        self._at_line_start = True
        self._carry = b""
        self._started = False
        #: The last byte read.
        self.last_byte = b""

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._scan(data, final=not data)
        self.last_byte = data[-1:] or self.last_byte
        return data

    @property
    def line_breaks(self) -> int:
        """Line breaks scanned."""
        return self._lines

    @property
    def line_count(self) -> int:
        """Physical lines scanned, a last line without a line break included (final once read to the end)."""
        return self._lines + (0 if self._at_line_start else 1)

    def take_empty_lines(self) -> np.ndarray:
        """Physical numbers (1-based) of the empty lines scanned since the last call, ascending."""
        with self._empty_lock:
            found, self._empty = self._empty, []
        return np.concatenate(found) if found else np.empty(0, np.int64)

    def _scan(self, data: bytes, *, final: bool) -> None:
        chunk = self._carry + data
        self._carry = b""
        if not self._started and chunk:
            self._started = True
            chunk = chunk.removeprefix(_BOM)
        if not final and chunk.endswith(b"\r"):
            self._carry, chunk = b"\r", chunk[:-1]  # a "\r\n" split between two reads
        if not chunk:
            return
        codes = np.frombuffer(chunk, np.uint8)
        line_feeds = int(np.count_nonzero(codes == 10))
        has_cr = b"\r" in chunk
        crlf = _pairs(chunk, b"\r\n") if has_cr else 0
        if has_cr and crlf != int(np.count_nonzero(codes == 13)):  # a lone "\r" ends a line too
            ends, firsts = self._line_breaks_with_cr(codes)
        elif self._may_have_empty_line(chunk, every_lf_after_cr=has_cr and crlf == line_feeds):
            ends = np.flatnonzero(codes == 10)
            firsts = ends - ((ends > 0) & (codes[np.maximum(ends - 1, 0)] == 13))
        else:  # the common case: count the lines, no empty one to note
            self._lines += line_feeds
            self._at_line_start = bool(line_feeds) and chunk[-1] == 10
            return
        if len(ends):
            line_starts = np.concatenate(([0 if self._at_line_start else -1], ends[:-1] + 1))
            empty = np.flatnonzero(firsts == line_starts)
            if len(empty):
                with self._empty_lock:
                    self._empty.append(self._lines + 1 + empty)
            self._at_line_start = bool(ends[-1] == len(chunk) - 1)
        else:
            self._at_line_start = False
        self._lines += len(ends)

    def _may_have_empty_line(self, chunk: bytes, *, every_lf_after_cr: bool) -> bool:
        """Whether a line may be empty, when every "\r" is part of a "\r\n"."""
        if self._at_line_start and chunk[0] in (10, 13):
            return True
        if every_lf_after_cr:  # "\r\n" line breaks only: an empty line is a "\n\r"
            return bool(_pairs(chunk, b"\n\r"))
        return bool(_pairs(chunk, b"\n\n") or (b"\r" in chunk and _pairs(chunk, b"\n\r")))

    def _line_breaks_with_cr(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Last and first byte of each line break ("\\r\\n", "\\r" or "\\n"), ascending."""
        lf = np.flatnonzero(codes == 10)
        cr = np.flatnonzero(codes == 13)
        last = len(codes) - 1
        lone = cr[(cr == last) | (codes[np.minimum(cr + 1, last)] != 10)]
        if len(lone):
            self.lone_cr = True
        ends = np.sort(np.concatenate((lf, lone)))
        after_cr = (ends > 0) & (codes[ends] == 10) & (codes[np.maximum(ends - 1, 0)] == 13)
        return ends, ends - after_cr


@dataclass
class _Rejected:
    record: int  # Arrow's record number
    cover: int  # non-empty lines the record spans
    reason: str | None  # None for a blank line
    rows: list[str]


class _LinePlacer:
    """Gives each record Arrow reads its physical line, and records the rejected ones.

    Arrow numbers the records (from the first line after the skipped header lines,
    empty lines not counted), reports the rejected ones with their number and text,
    and yields the accepted ones in order: the accepted records take the numbers the
    rejected ones left. Each record covers the non-empty lines it spans; records take
    the non-empty lines in order; the empty lines found by ``_LineStream`` turn a
    position among non-empty lines into a physical line number.
    """

    def __init__(self, stream: _LineStream, header: Header, problems: RowProblems) -> None:
        self._stream = stream
        self._problems = problems
        self._last_header_line = header.last_line
        self._next_record = header.last_line + 1
        self._next_position = 0  # among non-empty lines; set when the first block has been read
        self._empty = np.empty(0, np.int64)  # empty lines not yet passed
        self._empty_passed = 0
        self._pending: list[_Rejected] = []
        self._pending_lock = threading.Lock()
        self._last_is_accepted = False

    def on_invalid_row(self, row: pacsv.InvalidRow) -> str:
        """Arrow's invalid-row handler: count the row now, place it with the next batch."""
        if row.number is None:  # Arrow numbers rows only when reading on one thread
            raise RuntimeError("Arrow gave no number for a rejected CSV row; line numbers need use_threads=False")
        reason, rows = _rejected_record(row.text)
        if reason == WRONG_FIELD_COUNT:
            self._problems.wrong_field_count += 1
        elif reason == UNBALANCED_QUOTE:
            self._problems.unbalanced_quote += sum(1 for text in rows if text.strip())
        cover = 1 + sum(1 for line in _LINE_BREAK.split(row.text)[1:] if line)
        if len(self._problems.dropped) >= DROPPED_SAMPLE_LIMIT:
            rows = []
        with self._pending_lock:
            self._pending.append(_Rejected(row.number, cover, reason, rows))
        return "skip"

    def place(self, batch: pa.RecordBatch) -> np.ndarray:
        """Physical lines of a batch's accepted records; also places the rejected records around them."""
        self._take_empty_lines()
        count = batch.num_rows
        with self._pending_lock:
            pending = sorted(self._pending, key=lambda r: r.record)
        if not pending:  # the common case: every record of the batch was accepted
            covers = self._covers(batch)
            lines = self._physical(self._next_position + np.cumsum(covers) - covers)
            self._next_position += int(covers.sum())
            self._next_record += count
            self._last_is_accepted = self._last_is_accepted or count > 0
            return lines
        rejected = np.fromiter((r.record for r in pending), np.int64, len(pending))
        rejected -= self._next_record
        # The i-th accepted record takes the i-th number no rejected record took.
        free_before = rejected - np.arange(len(rejected))
        accepted = np.arange(count) + np.searchsorted(free_before, np.arange(count), "right")
        last = int(accepted[-1]) if count else -1
        # The rejected records before the last accepted one, and the run right after it.
        placed = int(np.searchsorted(rejected, last))
        run = rejected[placed:] - (last + 1) - np.arange(len(rejected) - placed)
        placed += int(np.argmax(run != 0)) if run.any() else len(run)
        records = placed + count
        if records:
            self._last_is_accepted = last == records - 1
        if last >= records or (placed and rejected[placed - 1] >= records):
            raise RuntimeError("line numbering lost track of Arrow's records")
        covers = np.empty(records, np.int64)
        covers[accepted] = self._covers(batch)
        covers[rejected[:placed]] = [r.cover for r in pending[:placed]]
        lines = self._physical(self._next_position + np.cumsum(covers) - covers)
        self._next_position += int(covers.sum())
        self._next_record += records
        for entry, line in zip(pending[:placed], lines[rejected[:placed]].tolist(), strict=True):
            self._drop(entry, line)
        with self._pending_lock:
            self._pending = [r for r in self._pending if r.record >= self._next_record]
        return lines[accepted]

    def finish(self) -> None:
        """Place the rejected records after the last accepted one."""
        self.place(pa.RecordBatch.from_pylist([]))
        if self._pending:
            raise RuntimeError("line numbering lost track of Arrow's records")

    def last_is_unclosed(self, values: list[str]) -> bool:
        """Whether the last record is an accepted one whose last field opened a quote that never closed.

        Arrow accepts such a record when its field count is right: the field swallows
        the rest of the file. With a line break at the end of the file, the record then
        ends one line after the file's last line; without one, the file does not end
        with the quote that a field holding a line break needs. Call at the end of the file.
        """
        if not self._last_is_accepted or not _LINE_BREAK.search(values[-1]):
            return False
        self._take_empty_lines()
        last_line = self._physical(np.array([self._next_position - 1]))[0]
        if self._stream.line_count > self._stream.line_breaks:  # no line break at the end
            return self._stream.last_byte != b'"'
        return bool(last_line > self._stream.line_count)

    def unaccept_last(self, values: list[str], line: int) -> None:
        """Count the last accepted record (its values, from ``line``) as lines swallowed by a quote."""
        text = ",".join([*values[:-1], '"' + values[-1]])  # as written, but for doubled quotes
        rows = _LINE_BREAK.split(text)
        self._problems.unbalanced_quote += sum(1 for row in rows if row.strip())
        self._drop(_Rejected(0, 0, UNBALANCED_QUOTE, rows), line)

    def _take_empty_lines(self) -> None:
        found = self._stream.take_empty_lines()
        if not self._next_position:
            # The first record is on the first non-empty line after the header.
            self._empty_passed = int(np.searchsorted(found, self._last_header_line, "right"))
            self._next_position = self._last_header_line - self._empty_passed + 1
            found = found[self._empty_passed :]
        self._empty = np.concatenate((self._empty, found))

    def _physical(self, positions: np.ndarray) -> np.ndarray:
        """Physical line of the non-empty lines at these ascending positions (1-based)."""
        # Empty line j is before the line at position p when its number minus the empty lines before it <= p.
        ranks = self._empty - (self._empty_passed + np.arange(len(self._empty)))
        lines = positions + self._empty_passed + np.searchsorted(ranks, positions, "right")
        if len(positions):
            passed = int(np.searchsorted(ranks, positions[-1], "right"))
            self._empty = self._empty[passed:]
            self._empty_passed += passed
        return lines

    def _covers(self, batch: pa.RecordBatch) -> np.ndarray:
        """Non-empty lines each accepted record spans: 1 unless a value holds a line break."""
        cover = np.ones(batch.num_rows, np.int64)
        breaks = (b"\n", b"\r") if self._stream.lone_cr else (b"\n",)
        for column in batch.columns:
            data = column.buffers()[2]
            values = data.to_pybytes() if data is not None else b""
            if not any(b in values for b in breaks):
                continue
            holds = pc.match_substring(column, "\n")
            if self._stream.lone_cr:
                holds = pc.or_(holds, pc.match_substring(column, "\r"))
            rows = np.flatnonzero(holds.to_numpy(zero_copy_only=False))
            for row, value in zip(rows.tolist(), column.take(rows).to_pylist(), strict=True):
                # The line after the last break carries the closing quote; the lines between
                # breaks are whole lines, empty ones excepted (they are not positions).
                cover[row] += 1 + sum(1 for line in _LINE_BREAK.split(value)[1:-1] if line)
        return cover

    def _drop(self, entry: _Rejected, line: int) -> None:
        dropped = self._problems.dropped
        if entry.reason is None:
            return
        for offset, text in enumerate(entry.rows):
            if len(dropped) >= DROPPED_SAMPLE_LIMIT:
                return
            if text.strip():
                dropped.append(DroppedRow(line + offset, entry.reason, text[:DROPPED_TEXT_LIMIT]))


def read_raw_batches(
    stream: BinaryIO, header: Header, dataset: Dataset, problems: RowProblems
) -> Iterator[pa.RecordBatch]:
    """Stream the rows of a CSV file as string batches of the dataset's required columns.

    Each batch holds the required columns under their normalised names, then
    ``LINE_COLUMN`` (int64): the physical line (1-based) where each row starts.
    Extra columns are dropped; blank and whitespace-only lines are skipped; rows
    Arrow cannot split into the header's fields are not yielded but counted, with
    their line, in ``problems`` (complete once the iterator is exhausted).

    Raises:
        InvalidFile: When the bytes are not UTF-8 or Arrow cannot parse the CSV.
    """
    lines = _LineStream(stream)
    placer = _LinePlacer(lines, header, problems)
    names = [f"f{i}" for i in range(len(header.raw))]  # the header's own names may repeat
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    parse = pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=placer.on_invalid_row)
    # One thread: only then does Arrow number the rows it rejects.
    read = pacsv.ReadOptions(block_size=BLOCK_SIZE, use_threads=False, skip_rows=header.last_line, column_names=names)
    wanted = [header.index_of(c) for c in dataset.required_columns]
    if header.ends_file:
        return  # Arrow cannot skip a header that has no line break after it
    # The last batch is held back until the end of the file: its last row may have to be dropped.
    held: tuple[pa.RecordBatch, list[str]] | None = None
    try:
        reader = pacsv.open_csv(lines, read_options=read, parse_options=parse, convert_options=convert)
        for batch in reader:
            line = pa.array(placer.place(batch), pa.int64())
            if not batch.num_rows:
                continue
            if held is not None:
                yield held[0]
            columns = [batch.column(i) for i in wanted]
            rows = pa.RecordBatch.from_arrays([*columns, line], names=[*dataset.required_columns, LINE_COLUMN])
            held = rows, [column[-1].as_py() for column in batch.columns]
    except pa.ArrowInvalid as error:
        message = str(error)
        # A rejected row Arrow cannot decode reaches no handler: its text shows U+FFFD instead.
        if "UTF8" in message or "UTF-8" in message or "\ufffd" in message:
            raise InvalidFile(f"not UTF-8 text: {message}") from None
        raise InvalidFile(f"not a CSV file: {message}") from None
    placer.finish()
    if held is not None:
        rows, last_values = held
        if placer.last_is_unclosed(last_values):
            placer.unaccept_last(last_values, rows.column(LINE_COLUMN)[-1].as_py())
            rows = rows.slice(0, rows.num_rows - 1)
        yield rows


def empty_raw_table(dataset: Dataset) -> pa.Table:
    """A table of the dataset's required columns as strings and ``LINE_COLUMN``, with no rows."""
    columns = {c: pa.array([], pa.string()) for c in dataset.required_columns}
    return pa.table(columns | {LINE_COLUMN: pa.array([], pa.int64())})
