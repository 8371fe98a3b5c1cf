"""Pipeline-Orchestrator: one orchestrator run per scheduled invocation."""

from __future__ import annotations

from typing import Any

from pipeline_tasks import orchestrator
from pipeline_tasks.settings import Settings


def handle(event: Any, settings: Settings) -> dict[str, Any]:
    """The scheduler's event carries nothing we need; the run reads the queue."""
    return orchestrator.run(settings).to_dict()


def handler(event: Any, context: Any) -> dict[str, Any]:
    return handle(event, Settings.from_env())
