"""The run record ``runs/{execution_id}/{notebook}.json`` (``notebooks``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from pipeline_tasks.documents.base import Document


@dataclass(frozen=True)
class RunRecord(Document):
    """How one step's notebook run ended: ``runs/{execution_id}/{notebook}.json``.

    Attributes:
        execution_id: The execution.
        step: ``validate``, ``stage`` or ``transform``.
        notebook: The notebook's name (``10_validate``).
        status: ``SUCCEEDED`` or ``FAILED``.
        started_at: When the run started (ISO 8601, seconds).
        parameters: The notebook's parameters, the injected ones included.
        exit_code: 0, or the failure kind's exit code (``errors``).
        error: The failure, when it failed.
        keys: S3 keys of the archived ``ipynb``, ``html`` and the ``record`` itself.
        local_path: Local path of the executed notebook, when one was kept.
        seconds: Wall-clock seconds of each part (``execute``, ``render``, ``archive``).
    """

    execution_id: str
    step: str
    status: str
    started_at: str
    notebook: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    exit_code: int = 0
    error: str | None = None
    keys: dict[str, str] = field(default_factory=dict)
    local_path: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "step": self.step,
            "notebook": self.notebook,
            "status": self.status,
            "started_at": self.started_at,
            "parameters": dict(self.parameters),
            "exit_code": self.exit_code,
            "error": self.error,
            "keys": dict(self.keys),
            "local_path": self.local_path,
            "seconds": dict(self.seconds),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        return cls(
            execution_id=str(document.get("execution_id") or ""),
            step=str(document["step"]),
            status=str(document["status"]),
            started_at=str(document["started_at"]),
            notebook=str(document.get("notebook") or ""),
            parameters=dict(document.get("parameters") or {}),
            exit_code=int(document.get("exit_code", 0)),
            error=document.get("error"),
            keys=dict(document.get("keys") or {}),
            local_path=document.get("local_path"),
            seconds=dict(document.get("seconds") or {}),
        )
