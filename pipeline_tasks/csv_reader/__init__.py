"""Streaming CSV reading shared by validation and staging.

The package owns reading a CSV file: its header (``header``), the stream of its
rows as Arrow string batches with each row's physical line (here), and the rows it
drops with their reasons (``problems``). The header is parsed with the standard
library from the first bytes of the file (so every file-level verdict has a
precise reason); the rows are then streamed by Arrow's CSV reader as strings,
block by block, so a file of any size is never held in memory to validate it.

Every data line of the file is accounted for: a row is either yielded (with the
physical line it starts on) or dropped under a named reason, and blank or
whitespace-only lines are not rows. Arrow numbers the records it rejects but not
the ones it accepts, and it drops empty lines without trace, so the line of each
row is computed here: the bytes Arrow reads are scanned for empty lines
(``lines``), each record spans one line plus the line breaks inside its values,
and the records fill the non-empty lines in order (``placement``, numpy per batch).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv

from pipeline_tasks.contract import Dataset
from pipeline_tasks.csv_reader.header import HEADER_LIMIT, Header, check_columns, parse_header
from pipeline_tasks.csv_reader.lines import LineStream
from pipeline_tasks.csv_reader.placement import LinePlacer
from pipeline_tasks.csv_reader.problems import (
    DROPPED_TEXT_LIMIT,
    MISSING_KEY,
    NON_INTEGER_KEY,
    ROW_REASONS,
    UNBALANCED_QUOTE,
    WRONG_FIELD_COUNT,
    DroppedRow,
    RowProblems,
)
from pipeline_tasks.errors import InvalidFile

__all__ = [
    "BLOCK_SIZE",
    "DROPPED_SAMPLE_LIMIT",
    "DROPPED_TEXT_LIMIT",
    "HEADER_LIMIT",
    "LINE_COLUMN",
    "MISSING_KEY",
    "NON_INTEGER_KEY",
    "ROW_REASONS",
    "UNBALANCED_QUOTE",
    "WRONG_FIELD_COUNT",
    "DroppedRow",
    "Header",
    "RowProblems",
    "check_columns",
    "empty_raw_table",
    "parse_header",
    "read_raw_batches",
]

#: Arrow reads this many bytes per block. The reader holds several blocks' worth at once, so the
#: block size, not the file's, bounds the memory a read takes: it is kept small enough for the
#: validation task's memory (docs/benchmarks.md, "A shop's whole history in one batch").
BLOCK_SIZE = 4 << 20

#: Column of every batch ``read_raw_batches`` yields: the physical line (1-based) where the row starts.
LINE_COLUMN = "_line"
#: ``RowProblems.dropped`` keeps at most this many rows.
DROPPED_SAMPLE_LIMIT = 10_000


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
    lines = LineStream(stream)
    placer = LinePlacer(lines, header, problems, sample_limit=DROPPED_SAMPLE_LIMIT)
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
