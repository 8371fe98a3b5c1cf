"""The header row of a CSV file: parsed from the file's first bytes, checked against a dataset.

The header is parsed with the standard library, not by Arrow, so that every
file-level verdict (empty, not UTF-8, binary, no header, a missing or repeated
required column) has a precise, human-readable reason.
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from dataclasses import dataclass

from pipeline_tasks.contract import Dataset, normalise_header_name
from pipeline_tasks.errors import InvalidFile

#: How many bytes of a file the header must fit in.
HEADER_LIMIT = 1 << 20
#: The UTF-8 byte-order mark a file may start with.
BOM = codecs.BOM_UTF8

#: Delimiters a file is sometimes written with instead of the comma.
_OTHER_DELIMITERS = {";": "';'", "\t": "tab", "|": "'|'"}


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
    if prefix == BOM:
        raise InvalidFile("empty file: only a byte-order mark")
    body = prefix[len(BOM) :] if prefix.startswith(BOM) else prefix
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
