"""Read-Validation-Result: bring ``results/{execution_id}.json`` into the execution as a move plan."""

from __future__ import annotations

from typing import Any

from pipeline_tasks import state_payload
from pipeline_tasks.errors import ConfigurationError
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps import files


def handle(event: Any, settings: Settings) -> dict[str, Any]:
    """``{"execution_id": …}`` in; the files to reject and to archive, with their destinations, out.

    The plan becomes the execution's state: one Step Functions can carry (``state_payload``).
    """
    if not isinstance(event, dict) or not isinstance(event.get("execution_id"), str):
        raise ConfigurationError(f"expected {{'execution_id': str}}, got {event!r}")
    execution_id = event["execution_id"]
    return state_payload.check_fits(files.read_move_plan(settings, execution_id), execution_id)


def handler(event: Any, context: Any) -> dict[str, Any]:
    return handle(event, Settings.from_env())
