"""The byte stream Arrow reads a CSV file from, scanned for line breaks and empty lines.

Arrow skips empty lines without trace, so the stream notes them as it passes them
on: with the records' spans, they give each row its physical line. The scan is
numpy over each block read, with a fast path for blocks without an empty line.
"""

from __future__ import annotations

import threading
from typing import BinaryIO

import numpy as np

from pipeline_tasks.csv_reader.header import BOM

_TWO_BYTES = np.dtype("<u2")


def _pairs(chunk: bytes, pair: bytes) -> int:
    """Occurrences of a two-byte sequence, compared two bytes at a time at even and at odd offsets."""
    value = int.from_bytes(pair, "little")
    even = np.frombuffer(chunk, _TWO_BYTES, count=len(chunk) // 2)
    odd = np.frombuffer(chunk, _TWO_BYTES, count=(len(chunk) - 1) // 2, offset=1)
    return int(np.count_nonzero(even == value)) + int(np.count_nonzero(odd == value))


class LineStream:
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
            chunk = chunk.removeprefix(BOM)
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
