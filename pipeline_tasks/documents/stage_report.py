"""The stage report ``reports/{execution_id}/stage.json`` (``steps.stage``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from pipeline_tasks.documents.base import Document, counts_of


@dataclass(frozen=True)
class FileFunnel(Document):
    """The data-quality funnel of one staged file: read → staged → kept.

    Attributes:
        key: The object key.
        dataset: Its dataset.
        rows_read: Data rows read.
        rows_not_staged: Rows not staged, per reason (zeros left out).
        rows_quarantined: Rows written to the quarantine table.
        rows_staged: Rows merged into the staged table.
        rows_excluded_by_cleaning: Staged rows the transform's cleaning will drop, per
            rule of docs/contract.md §4 (zeros left out).
        rows_kept: Staged rows the KPIs count (``rows_staged`` in a report without it).
    """

    key: str
    dataset: str
    rows_read: int
    rows_not_staged: dict[str, int]
    rows_staged: int
    rows_quarantined: int = 0
    rows_excluded_by_cleaning: dict[str, int] = field(default_factory=dict)
    rows_kept: int | None = None

    @property
    def kept(self) -> int:
        """Rows kept for the KPIs."""
        return self.rows_staged if self.rows_kept is None else self.rows_kept

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "dataset": self.dataset,
            "rows_read": self.rows_read,
            "rows_not_staged": dict(self.rows_not_staged),
            "rows_quarantined": self.rows_quarantined,
            "rows_staged": self.rows_staged,
            "rows_excluded_by_cleaning": dict(self.rows_excluded_by_cleaning),
            "rows_kept": self.kept,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        return cls(
            key=str(document["key"]),
            dataset=str(document["dataset"]),
            rows_read=int(document["rows_read"]),
            rows_not_staged=dict(document["rows_not_staged"]),
            rows_staged=int(document["rows_staged"]),
            rows_quarantined=int(document.get("rows_quarantined", 0)),
            rows_excluded_by_cleaning=counts_of(document, "rows_excluded_by_cleaning"),
            rows_kept=document.get("rows_kept"),
        )


#: The counts of a ``MergeSummary``, in the order the report writes them (after ``table``, ``version``).
MERGE_COUNTS = (
    "source_rows",
    "inserted",
    "updated",
    "unchanged",
    "partitions_touched",
    "older",
    "rows_superseded_in_batch",
    "chunks",
)


@dataclass(frozen=True)
class MergeSummary(Document):
    """What the MERGEs of one dataset did (``steps.stage.stage_dataset``); None: not in the report.

    Attributes:
        table: The staged table's URI.
        version: Its Delta version after the last chunk.
        source_rows, inserted, updated, unchanged, partitions_touched, older: The
            chunks' ``io.delta.MergeResult`` counts, summed.
        rows_superseded_in_batch: Rows deduplicated away within the chunks.
        chunks: How many merges ran.
        seconds: How long the dataset took.
    """

    table: str | None = None
    version: int | None = None
    source_rows: int | None = None
    inserted: int | None = None
    updated: int | None = None
    unchanged: int | None = None
    partitions_touched: int | None = None
    older: int | None = None
    rows_superseded_in_batch: int | None = None
    chunks: int | None = None
    seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        counts = {name: getattr(self, name) for name in MERGE_COUNTS}
        return {"table": self.table, "version": self.version} | counts | {"seconds": self.seconds}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        names = ("table", "version", *MERGE_COUNTS, "seconds")
        return cls(**{name: document.get(name) for name in names})


@dataclass(frozen=True)
class QuarantineWrite(Document):
    """Where a staging run wrote its quarantine records, and how many."""

    table: str
    rows: int

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        return cls(table=str(document["table"]), rows=int(document["rows"]))


@dataclass(frozen=True)
class StageReport(Document):
    """The stage report: ``reports/{execution_id}/stage.json``.

    Attributes:
        execution_id: The execution that staged the batch.
        files: Each staged file's funnel, in arrival order.
        tables: What the merges did, by dataset name.
        quarantine: The quarantine table written (None in a report of a version before it).
    """

    execution_id: str = ""
    files: tuple[FileFunnel, ...] = ()
    tables: dict[str, MergeSummary] = field(default_factory=dict)
    quarantine: QuarantineWrite | None = None

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "execution_id": self.execution_id,
            "files": [f.to_json() for f in self.files],
            "tables": {name: merge.to_json() for name, merge in self.tables.items()},
        }
        if self.quarantine is not None:
            document["quarantine"] = self.quarantine.to_json()
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        quarantine = document.get("quarantine")
        return cls(
            execution_id=str(document.get("execution_id") or ""),
            files=tuple(FileFunnel.from_json(f) for f in document.get("files") or ()),
            tables={name: MergeSummary.from_json(m) for name, m in (document.get("tables") or {}).items()},
            quarantine=None if quarantine is None else QuarantineWrite.from_json(quarantine),
        )
