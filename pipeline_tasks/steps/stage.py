"""StagingTask: upsert the batch's valid files into the staged Delta tables.

Reads the valid files of a batch (in arrival order) from S3, types and
deduplicates their rows (the last row of a key wins), and MERGEs each dataset
into ``staging/{dataset}``. Writes ``reports/{execution_id}/stage.json``: the
data-quality funnel per file and what each MERGE did.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from pipeline_tasks.contract import DATASETS, Dataset, classify
from pipeline_tasks.csv_reader import (
    HEADER_LIMIT,
    RowProblems,
    empty_raw_table,
    parse_header,
    read_raw_batches,
)
from pipeline_tasks.errors import StepFailed
from pipeline_tasks.io import delta
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps import validate
from pipeline_tasks.transforms.staging import (
    QUARANTINE_SCHEMA,
    Provenance,
    count_cleaning_exclusions,
    count_row_problems,
    dedupe_last_wins,
    not_staged_reasons,
    quarantine_records,
    reader_records,
    stage_rows,
    with_execution_id,
)
from pipeline_tasks.validation import Source

log = logging.getLogger(__name__)


def report_key(settings: Settings, execution_id: str, step: str) -> str:
    return f"{settings.reports_prefix}{execution_id}/{step}.json"


@dataclass(frozen=True)
class StagedFile:
    """One valid file as the staging step reads it: its rows, funnel and quarantined rows."""

    rows: pa.Table
    funnel: dict[str, Any]
    quarantined: pa.Table


def read_file_rows(source: Source, dataset: Dataset, origin: Provenance) -> StagedFile:
    """Typed rows of one valid file, its data-quality funnel and its quarantine records.

    The funnel holds ``rows_read``, ``rows_not_staged`` per reason (the reader's, the
    key's and the row rules'), ``rows_quarantined``, ``rows_staged``,
    ``rows_excluded_by_cleaning`` per §4 rule (what the transform's cleaning will drop)
    and ``rows_kept``. The rows are typed, key parsed, duplicates kept in file order.
    """
    prefix, complete = source.read_prefix(HEADER_LIMIT)
    header = parse_header(prefix, complete=complete)
    problems = RowProblems()
    with source.open() as stream:
        batches = list(read_raw_batches(stream, header, dataset, problems))
    raw = pa.Table.from_batches(batches) if batches else empty_raw_table(dataset)
    reasons = not_staged_reasons(raw, dataset)
    keys = pa.repeat(pa.scalar(source.key, pa.string()), raw.num_rows)
    rows = stage_rows(raw, dataset, source_keys=keys, event_time=origin.event_time, reasons=reasons)
    quarantined = pa.concat_tables(
        [reader_records(_dropped(problems), dataset, origin), quarantine_records(raw, reasons, dataset, origin)]
    )
    not_staged = {**problems.counts(), **count_row_problems(raw, dataset)}
    excluded = count_cleaning_exclusions(rows, dataset)
    funnel = {
        "key": source.key,
        "dataset": dataset.name,
        "rows_read": raw.num_rows + problems.rows,
        "rows_not_staged": {reason: n for reason, n in not_staged.items() if n},
        "rows_quarantined": quarantined.num_rows,
        "rows_staged": rows.num_rows,
        "rows_excluded_by_cleaning": excluded,
        "rows_kept": rows.num_rows - sum(excluded.values()),
    }
    return StagedFile(rows, funnel, quarantined)


def _dropped(problems: RowProblems) -> list[dict[str, object]]:
    """The reader's dropped rows as quarantine records (``line``, ``reason``, ``row``)."""
    return [{"line": d.line, "reason": d.reason, "row": d.text} for d in problems.dropped]


@dataclass(frozen=True)
class FileToStage:
    """A valid file of the batch and where its rows come from."""

    source: Source
    origin: Provenance


def stage_dataset(
    settings: Settings, execution_id: str, dataset: Dataset, files: Sequence[FileToStage]
) -> tuple[list[dict[str, Any]], dict[str, Any], pa.Table]:
    """Read, dedupe and merge the files of one dataset; return the funnels, the merge and the quarantine."""
    started = time.perf_counter()
    funnels = []
    parts = []
    quarantined = []
    for item in files:
        staged = read_file_rows(item.source, dataset, item.origin)
        parts.append(staged.rows)
        funnels.append(staged.funnel)
        quarantined.append(staged.quarantined)
        log.info(
            "stage %s: %d rows read, %d staged, %d quarantined",
            item.source.key,
            staged.funnel["rows_read"],
            staged.funnel["rows_staged"],
            staged.funnel["rows_quarantined"],
        )
    rows = pa.concat_tables(parts)
    deduped = with_execution_id(dedupe_last_wins(rows, dataset.key), execution_id)
    options = delta.storage_options(settings)
    table = delta.ensure_table(settings.table_uri(dataset.name), dataset, options)
    result = delta.merge_rows(table, deduped, dataset)
    merge = asdict(result) | {
        "rows_superseded_in_batch": rows.num_rows - deduped.num_rows,
        "seconds": round(time.perf_counter() - started, 3),
    }
    log.info(
        "merge %s: %d inserted, %d updated, %d unchanged, %d older than staged (version %d)",
        dataset.name,
        result.inserted,
        result.updated,
        result.unchanged,
        result.older,
        result.version,
    )
    return funnels, merge, pa.concat_tables(quarantined)


def files_to_stage(
    settings: Settings, s3: Any, execution_id: str, valid_files: Sequence[Mapping[str, Any] | str]
) -> list[FileToStage]:
    """The batch's valid files with their provenance, in arrival order.

    A file's event time is the one its validation result carries (the S3 event the
    orchestrator pinned); without one, the object's ``LastModified``.
    """
    files = []
    for item in valid_files:
        entry: Mapping[str, Any] = {"key": item} if isinstance(item, str) else item
        key, version = entry["key"], entry.get("version_id")
        pinned = {"version_id": version} if version else {}
        source = s3io.S3Source(s3, settings.bucket, key, **pinned)
        when = entry.get("event_time")
        if when:
            event_time = datetime.fromisoformat(str(when))
        else:
            head = s3.head_object(Bucket=settings.bucket, Key=key, **({"VersionId": version} if version else {}))
            event_time = head["LastModified"]
        files.append(FileToStage(source, Provenance(key, version, execution_id, event_time.astimezone(UTC))))
    return files


def run(
    settings: Settings, execution_id: str, valid_files: Sequence[Mapping[str, Any] | str] | None = None
) -> dict[str, Any]:
    """Stage the valid files of a batch.

    Args:
        settings: Bucket and lake location.
        execution_id: Id of the execution (recorded on every row it writes).
        valid_files: Keys (or result entries with a ``key``) in arrival order;
            by default the valid files of the execution's validation result.

    Returns:
        The stage report (also written to ``reports/{execution_id}/stage.json``).
    """
    s3 = s3io.client(settings, "s3")
    if valid_files is None:
        key = validate.result_key(settings, execution_id)
        result = s3io.get_json_or_none(s3, settings.bucket, key)
        if result is None:
            raise StepFailed(f"no validation result s3://{settings.bucket}/{key}: run the validate step first")
        valid_files = result["valid_files"]
    batch = files_to_stage(settings, s3, execution_id, valid_files)
    by_dataset: dict[str, list[FileToStage]] = {}
    for item in batch:
        dataset = classify(item.source.key)
        if dataset is not None:
            by_dataset.setdefault(dataset.name, []).append(item)
    files: list[dict[str, Any]] = []
    merges: dict[str, Any] = {}
    quarantined = []
    for dataset in DATASETS:
        if dataset.name in by_dataset:
            funnels, merge, records = stage_dataset(settings, execution_id, dataset, by_dataset[dataset.name])
            files += funnels
            merges[dataset.name] = merge
            quarantined.append(records)
    order = {item.source.key: n for n, item in enumerate(batch)}
    files.sort(key=lambda f: order[f["key"]])
    quarantine_uri = settings.table_uri(delta.QUARANTINE_TABLE)
    records = pa.concat_tables(quarantined) if quarantined else QUARANTINE_SCHEMA.empty_table()
    delta.record_quarantine(quarantine_uri, records, delta.storage_options(settings))
    report = {
        "execution_id": execution_id,
        "files": files,
        "tables": merges,
        "quarantine": {"table": quarantine_uri, "rows": records.num_rows},
    }
    s3io.put_json(s3, settings.bucket, report_key(settings, execution_id, "stage"), report)
    return report
