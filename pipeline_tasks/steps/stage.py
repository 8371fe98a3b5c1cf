"""StagingTask: upsert the batch's valid files into the staged Delta tables.

Streams the valid files of a batch (in arrival order) from S3 batch by batch,
types their rows, and MERGEs each dataset into ``staging/{dataset}`` in chunks of
at most about ``CHUNK_ROWS`` typed rows, each deduplicated first (the last row of
a key wins), so that memory does not grow with the files or the batch. Writes
``reports/{execution_id}/stage.json`` (``documents.StageReport``): the
data-quality funnel per file and what the MERGEs of each dataset did.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from pipeline_tasks.contract import CLEANING_RULES, DATASETS, Dataset, classify
from pipeline_tasks.csv_reader import HEADER_LIMIT, RowProblems, parse_header, read_raw_batches
from pipeline_tasks.documents import (
    BatchValidation,
    FileFunnel,
    MergeSummary,
    QuarantineWrite,
    StageReport,
    ValidFile,
)
from pipeline_tasks.errors import StepFailed
from pipeline_tasks.io import aws, delta
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.layout import report_key, result_key
from pipeline_tasks.schemas import QUARANTINE_SCHEMA, staged_schema
from pipeline_tasks.settings import Settings
from pipeline_tasks.transforms.staging import (
    Provenance,
    count_cleaning_exclusions,
    count_reasons,
    dedupe_last_wins,
    not_staged_reasons,
    quarantine_records,
    reader_records,
    stage_rows,
    with_execution_id,
)
from pipeline_tasks.validation import Source

log = logging.getLogger(__name__)

#: Typed rows gathered (across files, in arrival order) before they are deduplicated and
#: merged. Peak memory follows this bound, not the size of a file or a batch: a chunk is
#: held while its deduplicated copy is built and merged (docs/benchmarks.md, "Staging in bounded memory").
CHUNK_ROWS = 1_000_000
#: Quarantine records held before they are written to the quarantine table.
QUARANTINE_FLUSH_ROWS = 100_000


@dataclass
class Funnel:
    """The data-quality funnel of one file, summed over its batches as they are read."""

    key: str
    dataset: Dataset
    rows_read: int = 0
    not_staged: Counter[str] = field(default_factory=Counter)
    rows_quarantined: int = 0
    rows_staged: int = 0
    excluded: Counter[str] = field(default_factory=Counter)

    def document(self) -> FileFunnel:
        """The funnel as the report holds it: ``rows_not_staged`` per reason, ``rows_excluded_by_cleaning``
        per §4 rule of docs/contract.md (what the transform's cleaning will drop), zeros left out; ``rows_kept``."""
        rules = [rule.name for rule in CLEANING_RULES[self.dataset.name]]
        excluded = {name: self.excluded[name] for name in rules if self.excluded[name]}
        return FileFunnel(
            key=self.key,
            dataset=self.dataset.name,
            rows_read=self.rows_read,
            rows_not_staged={reason: n for reason, n in self.not_staged.items() if n},
            rows_quarantined=self.rows_quarantined,
            rows_staged=self.rows_staged,
            rows_excluded_by_cleaning=excluded,
            rows_kept=self.rows_staged - sum(excluded.values()),
        )


@dataclass(frozen=True)
class StagedBatch:
    """Rows of one file as staging reads them: typed rows and quarantine records."""

    rows: pa.Table
    quarantined: pa.Table


def read_file_batches(source: Source, dataset: Dataset, origin: Provenance, funnel: Funnel) -> Iterator[StagedBatch]:
    """Stream one valid file: typed rows (key parsed, duplicates kept, file order) batch by batch.

    Each batch of the reader (``csv_reader.BLOCK_SIZE`` of CSV) is typed on its own;
    rows with a reason not to be staged become quarantine records. ``funnel`` is
    complete once the iterator is exhausted: the reader's dropped rows come last.
    """
    prefix, complete = source.read_prefix(HEADER_LIMIT)
    header = parse_header(prefix, complete=complete)
    problems = RowProblems()
    source_key = pa.scalar(source.key, pa.string())
    with source.open() as stream:
        for batch in read_raw_batches(stream, header, dataset, problems):
            raw = pa.Table.from_batches([batch])
            reasons = not_staged_reasons(raw, dataset)
            keys = pa.repeat(source_key, raw.num_rows)
            rows = stage_rows(raw, dataset, source_keys=keys, event_time=origin.event_time, reasons=reasons)
            quarantined = quarantine_records(raw, reasons, dataset, origin)
            funnel.rows_read += raw.num_rows
            funnel.not_staged.update(count_reasons(reasons))
            funnel.rows_quarantined += quarantined.num_rows
            funnel.rows_staged += rows.num_rows
            funnel.excluded.update(count_cleaning_exclusions(rows, dataset))
            yield StagedBatch(rows, quarantined)
    dropped = reader_records(_dropped(problems), dataset, origin)
    funnel.rows_read += problems.rows
    # The reader's reasons first, both always named (zeros are left out of the report).
    funnel.not_staged = Counter(problems.counts()) + funnel.not_staged
    funnel.rows_quarantined += dropped.num_rows
    yield StagedBatch(staged_schema(dataset).empty_table(), dropped)


def _dropped(problems: RowProblems) -> list[dict[str, object]]:
    """The reader's dropped rows as quarantine records (``line``, ``reason``, ``row``)."""
    return [{"line": d.line, "reason": d.reason, "row": d.text} for d in problems.dropped]


class QuarantineWriter:
    """The quarantine records of a staging run, written to their Delta table in bounded pieces.

    Records are held until ``flush_rows`` of them have gathered, then upserted
    (``delta.record_quarantine``: a rerun records each row once); ``close`` writes the
    rest and creates the table even when no row was quarantined.
    """

    def __init__(self, uri: str, options: Mapping[str, str], *, flush_rows: int = QUARANTINE_FLUSH_ROWS) -> None:
        self.uri = uri
        self.options = options
        self.flush_rows = flush_rows
        self.rows = 0
        self._held: list[pa.Table] = []
        self._held_rows = 0

    def add(self, records: pa.Table) -> None:
        if records.num_rows:
            self._held.append(records)
            self._held_rows += records.num_rows
        if self._held_rows >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        records = pa.concat_tables(self._held) if self._held else QUARANTINE_SCHEMA.empty_table()
        self._held, self._held_rows = [], 0
        delta.record_quarantine(self.uri, records, self.options)
        self.rows += records.num_rows

    def close(self) -> int:
        """Write the records still held; return how many records the run wrote."""
        self.flush()
        return self.rows


@dataclass
class _Chunk:
    """Typed rows gathered for the next merge, with the event time of their file."""

    parts: list[tuple[datetime | None, pa.Table]] = field(default_factory=list)
    rows: int = 0

    def add(self, event_time: datetime | None, rows: pa.Table) -> None:
        if rows.num_rows:
            self.parts.append((event_time, rows))
            self.rows += rows.num_rows

    def take(self, dataset: Dataset) -> pa.Table:
        """The gathered rows as one table, oldest file first; the chunk is empty afterwards.

        Files are put in the order of their event times (stable: arrival order among
        equal times), so that the last row of a key is the newest, as a merge of each
        file in turn would leave it; the orchestrator hands files over in that order
        anyway. With a file of unknown time, arrival order is kept.
        """
        parts, self.parts, self.rows = self.parts, [], 0
        dated = [(when, rows) for when, rows in parts if when is not None]
        if len(dated) == len(parts):
            dated.sort(key=lambda part: part[0])
            parts = list(dated)
        return pa.concat_tables([rows for _, rows in parts]) if parts else staged_schema(dataset).empty_table()


@dataclass(frozen=True)
class FileToStage:
    """A valid file of the batch and where its rows come from."""

    source: Source
    origin: Provenance


def _merge_chunk(table: Any, chunk: _Chunk, dataset: Dataset, execution_id: str) -> tuple[delta.MergeResult, int]:
    """Dedupe and merge the chunk's rows; the merge and the rows superseded within the chunk."""
    rows = chunk.take(dataset)
    gathered = rows.num_rows
    deduped = with_execution_id(dedupe_last_wins(rows, dataset.key), execution_id)
    del rows  # the chunk's rows are not needed while the merge runs
    return delta.merge_rows(table, deduped, dataset), gathered - deduped.num_rows


def stage_dataset(
    settings: Settings,
    execution_id: str,
    dataset: Dataset,
    files: Sequence[FileToStage],
    quarantine: QuarantineWriter,
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> tuple[list[FileFunnel], MergeSummary]:
    """Stream, dedupe and merge the files of one dataset, in chunks; return the funnels and the merges.

    Typed rows are gathered across files, in arrival order, until ``chunk_rows``
    (plus at most one reader batch) have gathered; that chunk is deduplicated and
    merged, and so on. Chunks in order end where one merge of the whole batch would:
    the merge is SEQUENCE BY the file's event time and a row of equal time replaces
    the staged one when its values differ, so a later chunk of the same file wins
    (``io.delta.merge_rows``). The merge summary sums the chunks' counts: a key
    repeated across chunks is inserted by one and updated (or unchanged) by the next;
    ``rows_superseded_in_batch`` counts the rows deduplicated away within chunks;
    ``partitions_touched`` is a sum (a partition two chunks touch counts twice);
    ``version`` is the last chunk's; ``chunks`` how many merges ran.
    """
    started = time.perf_counter()
    table = delta.ensure_table(settings.table_uri(dataset.name), dataset, delta.storage_options(settings))
    funnels = []
    merges: list[tuple[delta.MergeResult, int]] = []
    chunk = _Chunk()
    for item in files:
        funnel = Funnel(item.source.key, dataset)
        for batch in read_file_batches(item.source, dataset, item.origin, funnel):
            quarantine.add(batch.quarantined)
            chunk.add(item.origin.event_time, batch.rows)
            if chunk.rows >= chunk_rows:
                merges.append(_merge_chunk(table, chunk, dataset, execution_id))
        funnels.append(funnel.document())
        log.info(
            "stage %s: %d rows read, %d staged, %d quarantined",
            item.source.key,
            funnel.rows_read,
            funnel.rows_staged,
            funnel.rows_quarantined,
        )
    if chunk.rows or not merges:
        merges.append(_merge_chunk(table, chunk, dataset, execution_id))
    merge = _summary(merges, round(time.perf_counter() - started, 3))
    log.info(
        "merge %s: %d inserted, %d updated, %d unchanged, %d older than staged (version %d, %d chunk(s))",
        dataset.name,
        merge.inserted,
        merge.updated,
        merge.unchanged,
        merge.older,
        merge.version,
        merge.chunks,
    )
    return funnels, merge


def _summary(merges: Sequence[tuple[delta.MergeResult, int]], seconds: float) -> MergeSummary:
    """The chunks' merges (each with the rows it superseded) as one: counts summed, the last version."""
    results = [result for result, _ in merges]
    last = results[-1]
    summed = [f.name for f in fields(delta.MergeResult) if f.name not in ("table", "version")]
    return MergeSummary(
        table=last.table,
        version=last.version,
        **{name: sum(getattr(r, name) for r in results) for name in summed},
        rows_superseded_in_batch=sum(superseded for _, superseded in merges),
        chunks=len(merges),
        seconds=seconds,
    )


def files_to_stage(
    settings: Settings, s3: Any, execution_id: str, valid_files: Sequence[ValidFile | Mapping[str, Any] | str]
) -> list[FileToStage]:
    """The batch's valid files with their provenance, in arrival order.

    A file's event time is the one its validation result carries (the S3 event the
    orchestrator pinned); without one, the object's ``LastModified``.
    """
    files = []
    for item in valid_files:
        entry = ValidFile(item) if isinstance(item, str) else ValidFile.of(item)
        key, version = entry.key, entry.version_id or None
        source = s3io.S3Source(s3, settings.bucket, key, version_id=version)
        if entry.event_time:
            event_time = datetime.fromisoformat(str(entry.event_time))
        else:
            head = s3io.head_version(s3, settings.bucket, key, version)
            if head is None:
                raise StepFailed(f"s3://{settings.bucket}/{key} (version {version}) is no longer in the bucket")
            event_time = head["LastModified"]
        files.append(FileToStage(source, Provenance(key, version, execution_id, event_time.astimezone(UTC))))
    return files


def valid_files_of(settings: Settings, s3: Any, execution_id: str) -> tuple[ValidFile, ...]:
    """The valid files of the execution's validation result (``results/{execution_id}.json``)."""
    key = result_key(settings, execution_id)
    result = s3io.get_json_or_none(s3, settings.bucket, key)
    if result is None:
        raise StepFailed(f"no validation result s3://{settings.bucket}/{key}: run the validate step first")
    return BatchValidation.from_json(result).valid_files


def stage_files(
    settings: Settings, execution_id: str, batch: Sequence[FileToStage], *, chunk_rows: int = CHUNK_ROWS
) -> StageReport:
    """Stage files (dataset by dataset, in contract order) and record their quarantined rows; the report.

    Reads the files and writes the lake, nothing else: ``run`` stores the report.
    """
    by_dataset: dict[str, list[FileToStage]] = {}
    for item in batch:
        dataset = classify(item.source.key)
        if dataset is not None:
            by_dataset.setdefault(dataset.name, []).append(item)
    files: list[FileFunnel] = []
    merges: dict[str, MergeSummary] = {}
    quarantine_uri = settings.table_uri(delta.QUARANTINE_TABLE)
    quarantine = QuarantineWriter(quarantine_uri, delta.storage_options(settings), flush_rows=QUARANTINE_FLUSH_ROWS)
    for dataset in DATASETS:
        if dataset.name in by_dataset:
            funnels, merges[dataset.name] = stage_dataset(
                settings, execution_id, dataset, by_dataset[dataset.name], quarantine, chunk_rows=chunk_rows
            )
            files += funnels
    quarantined = quarantine.close()
    order = {item.source.key: n for n, item in enumerate(batch)}
    files.sort(key=lambda f: order[f.key])
    return StageReport(execution_id, tuple(files), merges, QuarantineWrite(quarantine_uri, quarantined))


def run(
    settings: Settings,
    execution_id: str,
    valid_files: Sequence[ValidFile | Mapping[str, Any] | str] | None = None,
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> StageReport:
    """Stage the valid files of a batch.

    Args:
        settings: Bucket and lake location.
        execution_id: Id of the execution (recorded on every row it writes).
        valid_files: Keys (or validation result entries, or their JSON) in arrival
            order; by default the valid files of the execution's validation result.
        chunk_rows: Typed rows gathered before each merge (see ``stage_dataset``).

    Returns:
        The stage report; its ``to_json()`` is written to ``reports/{execution_id}/stage.json``.
    """
    s3 = aws.client(settings, "s3")
    if valid_files is None:
        valid_files = valid_files_of(settings, s3, execution_id)
    batch = files_to_stage(settings, s3, execution_id, valid_files)
    report = stage_files(settings, execution_id, batch, chunk_rows=chunk_rows)
    s3io.put_json(s3, settings.bucket, report_key(settings, execution_id, "stage"), report.to_json())
    return report
