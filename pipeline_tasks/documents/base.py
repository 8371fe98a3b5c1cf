"""The base of every document (``Document``), and a helper of their ``from_json``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, Self


class Document:
    """What every document has: ``to_json``, ``from_json`` and ``of``."""

    def to_json(self) -> dict[str, Any]:
        """Every field under its own name, in declaration order (a document whose JSON differs overrides it)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Self:
        raise NotImplementedError

    @classmethod
    def of(cls, document: Self | Mapping[str, Any]) -> Self:
        """The document itself, or the document its JSON holds."""
        return cls.from_json(document) if isinstance(document, Mapping) else document


def counts_of(document: Mapping[str, Any], name: str) -> dict[str, int]:
    """The counts a document holds under ``name``; empty when it holds none."""
    return dict(document.get(name) or {})


def _jsonable(value: Any) -> Any:
    if isinstance(value, Document):
        return value.to_json()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
