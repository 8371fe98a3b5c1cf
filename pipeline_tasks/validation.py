"""File-level validation (§1–2 of the contract) and the row-level data-quality count.

A file is read twice as a stream: its first bytes for the header verdict, then
all rows through Arrow's CSV reader to prove it decodes and to count the rows
that staging will drop. Memory stays bounded by one block whatever the size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import BinaryIO, Protocol

from pipeline_tasks.contract import DATASETS, ROW_RULES, RowRule, classify
from pipeline_tasks.csv_reader import (
    HEADER_LIMIT,
    ROW_REASONS,
    RowProblems,
    check_columns,
    parse_header,
    read_raw_batches,
)
from pipeline_tasks.errors import InvalidFile
from pipeline_tasks.transforms.staging import count_row_problems


class Source(Protocol):
    """A readable object: a local file or an S3 object."""

    @property
    def key(self) -> str:
        """Object key (or path) of the source."""
        ...

    def read_prefix(self, size: int) -> tuple[bytes, bool]:
        """The first ``size`` bytes, and whether they are the whole object."""
        ...

    def open(self) -> BinaryIO:
        """A fresh binary stream over the whole object."""
        ...


@dataclass(frozen=True)
class ValidationResult:
    """The verdict on one file.

    Attributes:
        key: Object key (or path) of the file.
        dataset: Dataset name, or None for an unknown dataset.
        valid: True when the file will be staged.
        reason: Why the file is invalid (None when valid).
        rows_read: Data rows in the file: rows parsed plus rows dropped by the reader;
            blank lines are not rows (valid files only).
        rows_not_staged: Rows staging will drop, per reason; reasons with no rows are
            left out (valid files only).
    """

    key: str
    dataset: str | None
    valid: bool
    reason: str | None = None
    rows_read: int = 0
    rows_not_staged: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def unknown_dataset_reason() -> str:
    patterns = ", ".join(d.pattern for d in DATASETS)
    return f"unknown dataset: the file name matches none of {patterns}"


def default_share(rule: RowRule) -> float:
    return rule.max_share


def validate(source: Source, *, max_share: Callable[[RowRule], float] = default_share) -> ValidationResult:
    """Validate one file and count its row-level problems.

    Never raises for a bad file: the verdict carries the reason. A file where more
    than ``max_share(rule)`` of the rows break a row rule (``contract.ROW_RULES``) is
    invalid: a systematic fault, rejected whole rather than quarantined row by row.
    """
    dataset = classify(source.key)
    if dataset is None:
        return ValidationResult(source.key, None, False, unknown_dataset_reason())
    try:
        prefix, complete = source.read_prefix(HEADER_LIMIT)
        header = parse_header(prefix, complete=complete)
        check_columns(header, dataset)
        problems = RowProblems()
        counts = dict.fromkeys(ROW_REASONS, 0)
        rows = 0
        with source.open() as stream:
            for batch in read_raw_batches(stream, header, dataset, problems):
                rows += batch.num_rows
                for reason, count in count_row_problems(batch, dataset).items():
                    counts[reason] = counts.get(reason, 0) + count
    except InvalidFile as error:
        return ValidationResult(source.key, dataset.name, False, str(error))
    counts.update(problems.counts())
    rows += problems.rows
    for rule in ROW_RULES[dataset.name]:
        broken, allowed = counts.get(rule.name, 0), max_share(rule)
        if broken and broken > allowed * rows:
            reason = (
                f"{broken} of {rows} rows ({broken / rows:.0%}) break the row rule {rule.name} "
                f"({rule.column} over {rule.limit:,} {rule.measure}: {rule.why}); "
                f"more than {allowed:.0%} of a file's rows reject the whole file"
            )
            return ValidationResult(source.key, dataset.name, False, reason, rows_read=rows)
    return ValidationResult(
        source.key,
        dataset.name,
        True,
        rows_read=rows,
        rows_not_staged={reason: n for reason, n in counts.items() if n},
    )
