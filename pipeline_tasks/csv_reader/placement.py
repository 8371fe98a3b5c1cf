"""Places each record Arrow reads on its physical line, and records the rejected ones as dropped rows."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipeline_tasks.csv_reader.header import Header
from pipeline_tasks.csv_reader.lines import LineStream
from pipeline_tasks.csv_reader.problems import (
    DROPPED_TEXT_LIMIT,
    LINE_BREAK,
    UNBALANCED_QUOTE,
    WRONG_FIELD_COUNT,
    DroppedRow,
    RowProblems,
    rejected_record,
)


@dataclass
class _Rejected:
    record: int  # Arrow's record number
    cover: int  # non-empty lines the record spans
    reason: str | None  # None for a blank line
    rows: list[str]


class LinePlacer:
    """Gives each record Arrow reads its physical line, and records the rejected ones.

    Arrow numbers the records (from the first line after the skipped header lines,
    empty lines not counted), reports the rejected ones with their number and text,
    and yields the accepted ones in order: the accepted records take the numbers the
    rejected ones left. Each record covers the non-empty lines it spans; records take
    the non-empty lines in order; the empty lines found by ``LineStream`` turn a
    position among non-empty lines into a physical line number.
    """

    def __init__(self, stream: LineStream, header: Header, problems: RowProblems, *, sample_limit: int) -> None:
        self._stream = stream
        self._problems = problems
        self._sample_limit = sample_limit  # dropped rows ``problems.dropped`` keeps at most
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
        reason, rows = rejected_record(row.text)
        if reason == WRONG_FIELD_COUNT:
            self._problems.wrong_field_count += 1
        elif reason == UNBALANCED_QUOTE:
            self._problems.unbalanced_quote += sum(1 for text in rows if text.strip())
        cover = 1 + sum(1 for line in LINE_BREAK.split(row.text)[1:] if line)
        if len(self._problems.dropped) >= self._sample_limit:
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
        if not self._last_is_accepted or not LINE_BREAK.search(values[-1]):
            return False
        self._take_empty_lines()
        last_line = self._physical(np.array([self._next_position - 1]))[0]
        if self._stream.line_count > self._stream.line_breaks:  # no line break at the end
            return self._stream.last_byte != b'"'
        return bool(last_line > self._stream.line_count)

    def unaccept_last(self, values: list[str], line: int) -> None:
        """Count the last accepted record (its values, from ``line``) as lines swallowed by a quote."""
        text = ",".join([*values[:-1], '"' + values[-1]])  # as written, but for doubled quotes
        rows = LINE_BREAK.split(text)
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
                cover[row] += 1 + sum(1 for line in LINE_BREAK.split(value)[1:-1] if line)
        return cover

    def _drop(self, entry: _Rejected, line: int) -> None:
        dropped = self._problems.dropped
        if entry.reason is None:
            return
        for offset, text in enumerate(entry.rows):
            if len(dropped) >= self._sample_limit:
                return
            if text.strip():
                dropped.append(DroppedRow(line + offset, entry.reason, text[:DROPPED_TEXT_LIMIT]))
