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
from dataclasses import asdict
from typing import Any

import pyarrow as pa

from pipeline_tasks.contract import DATASETS, Dataset, classify
from pipeline_tasks.csv_reader import (
    HEADER_LIMIT,
    WRONG_FIELD_COUNT,
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
    count_cleaning_exclusions,
    count_key_problems,
    dedupe_last_wins,
    stage_rows,
    with_execution_id,
)
from pipeline_tasks.validation import Source

log = logging.getLogger(__name__)


def report_key(settings: Settings, execution_id: str, step: str) -> str:
    return f"{settings.reports_prefix}{execution_id}/{step}.json"


def read_file_rows(source: Source, dataset: Dataset) -> tuple[pa.Table, dict[str, Any]]:
    """Typed rows of one valid file and its data-quality funnel.

    Returns:
        The typed rows (key parsed; duplicates kept, in file order) and the
        file's funnel: ``rows_read``, ``rows_not_staged`` per reason,
        ``rows_staged``, ``rows_excluded_by_cleaning`` per §4 rule (what the
        transform's cleaning will drop) and ``rows_kept``.
    """
    prefix, complete = source.read_prefix(HEADER_LIMIT)
    header = parse_header(prefix, complete=complete)
    problems = RowProblems()
    with source.open() as stream:
        batches = list(read_raw_batches(stream, header, dataset, problems))
    raw = pa.Table.from_batches(batches) if batches else empty_raw_table(dataset)
    not_staged = {WRONG_FIELD_COUNT: problems.wrong_field_count, **count_key_problems(raw, dataset)}
    keys = pa.repeat(pa.scalar(source.key, pa.string()), raw.num_rows)
    rows = stage_rows(raw, dataset, source_keys=keys)
    excluded = count_cleaning_exclusions(rows, dataset)
    funnel = {
        "key": source.key,
        "dataset": dataset.name,
        "rows_read": raw.num_rows + problems.wrong_field_count,
        "rows_not_staged": {reason: n for reason, n in not_staged.items() if n},
        "rows_staged": rows.num_rows,
        "rows_excluded_by_cleaning": excluded,
        "rows_kept": rows.num_rows - sum(excluded.values()),
    }
    return rows, funnel


def stage_dataset(
    settings: Settings, execution_id: str, dataset: Dataset, sources: Sequence[Source]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Read, dedupe and merge the files of one dataset; return the funnels and the merge."""
    started = time.perf_counter()
    funnels = []
    parts = []
    for source in sources:
        rows, funnel = read_file_rows(source, dataset)
        parts.append(rows)
        funnels.append(funnel)
        log.info("stage %s: %d rows read, %d staged", source.key, funnel["rows_read"], funnel["rows_staged"])
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
        "merge %s: %d inserted, %d updated, %d unchanged (version %d)",
        dataset.name,
        result.inserted,
        result.updated,
        result.unchanged,
        result.version,
    )
    return funnels, merge


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
    keys = [item if isinstance(item, str) else item["key"] for item in valid_files]
    by_dataset: dict[str, list[Source]] = {}
    for key in keys:
        dataset = classify(key)
        if dataset is not None:
            by_dataset.setdefault(dataset.name, []).append(s3io.S3Source(s3, settings.bucket, key))
    files: list[dict[str, Any]] = []
    merges: dict[str, Any] = {}
    for dataset in DATASETS:
        if dataset.name in by_dataset:
            funnels, merge = stage_dataset(settings, execution_id, dataset, by_dataset[dataset.name])
            files += funnels
            merges[dataset.name] = merge
    order = {key: n for n, key in enumerate(keys)}
    files.sort(key=lambda f: order[f["key"]])
    report = {"execution_id": execution_id, "files": files, "tables": merges}
    s3io.put_json(s3, settings.bucket, report_key(settings, execution_id, "stage"), report)
    return report
