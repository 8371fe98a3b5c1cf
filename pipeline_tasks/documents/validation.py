"""The validation result ``results/{execution_id}.json`` (``steps.validate``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from pipeline_tasks.documents.base import Document, counts_of


@dataclass(frozen=True)
class ValidFile(Document):
    """A file the batch will stage: the version judged and its row-level data-quality count.

    Attributes:
        key: The object key under ``input/``.
        dataset: The dataset its name matched.
        rows_read: Data rows in the file (``validation.ValidationResult.rows_read``).
        rows_not_staged: Rows staging will drop, per reason (reasons with no row left out).
        version_id: The version judged; None for the current version of an unversioned bucket.
        event_time: When that version arrived (ISO 8601); None when unknown.
    """

    key: str
    dataset: str | None = None
    rows_read: int = 0
    rows_not_staged: dict[str, int] = field(default_factory=dict)
    version_id: str | None = None
    event_time: str | None = None

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        """Only ``key`` is required: ``steps.files`` plans moves of entries holding no more."""
        return cls(
            key=str(document["key"]),
            dataset=document.get("dataset"),
            rows_read=int(document.get("rows_read") or 0),
            rows_not_staged=counts_of(document, "rows_not_staged"),
            version_id=document.get("version_id"),
            event_time=document.get("event_time"),
        )


@dataclass(frozen=True)
class RejectedFile(Document):
    """A file the batch rejects, with why (it moves to ``rejected/``).

    Attributes:
        key: The object key under ``input/``.
        dataset: The dataset its name matched; None for an unknown dataset.
        reason: Why it is invalid.
        version_id: The version judged (see ``ValidFile``).
        event_time: When that version arrived (see ``ValidFile``).
    """

    key: str
    dataset: str | None = None
    reason: str | None = None
    version_id: str | None = None
    event_time: str | None = None

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        """Only ``key`` is required (see ``ValidFile.from_json``)."""
        return cls(
            key=str(document["key"]),
            dataset=document.get("dataset"),
            reason=document.get("reason"),
            version_id=document.get("version_id"),
            event_time=document.get("event_time"),
        )


@dataclass(frozen=True)
class BatchValidation(Document):
    """The validation result of a batch: ``results/{execution_id}.json``.

    Attributes:
        execution_id: The execution that validated the batch.
        keys: Every file's key, in arrival order.
        validated_at: When (ISO 8601, seconds).
        valid_files: The files to stage, in arrival order.
        invalid_files: The files to reject, in arrival order.
    """

    execution_id: str = ""
    keys: tuple[str, ...] = ()
    validated_at: str = ""
    valid_files: tuple[ValidFile, ...] = ()
    invalid_files: tuple[RejectedFile, ...] = ()

    @property
    def has_valid_files(self) -> bool:
        """Whether anything is left to stage (the state machine's choice after validation)."""
        return bool(self.valid_files)

    def to_json(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "keys": list(self.keys),
            "validated_at": self.validated_at,
            "valid_files": [f.to_json() for f in self.valid_files],
            "invalid_files": [f.to_json() for f in self.invalid_files],
            "has_valid_files": self.has_valid_files,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        return cls(
            execution_id=str(document.get("execution_id") or ""),
            keys=tuple(document.get("keys") or ()),
            validated_at=str(document.get("validated_at") or ""),
            valid_files=tuple(ValidFile.from_json(f) for f in document.get("valid_files") or ()),
            invalid_files=tuple(RejectedFile.from_json(f) for f in document.get("invalid_files") or ()),
        )
