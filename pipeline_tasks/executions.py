"""Trigger the orchestrator and follow an execution of the state machine, state by state.

The same on AWS and on the local stack: the orchestrator is invoked as the
scheduler invokes it (the Pipeline-Orchestrator Lambda), and the execution is read
from Step Functions' history. While a state runs, ``follow`` reports a heartbeat with
its task's latest progress line (``progress``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline_tasks import progress as heartbeats
from pipeline_tasks.errors import StepFailed
from pipeline_tasks.io import aws
from pipeline_tasks.settings import Settings

_ENTERED = "StateEntered"


@dataclass
class ExecutionReport:
    """How an execution ended and the top-level states it entered, in order."""

    execution_arn: str
    name: str
    status: str = "RUNNING"
    states: list[str] = field(default_factory=list)
    error: str | None = None
    cause: str | None = None
    seconds_by_state: dict[str, float] = field(default_factory=dict)


def invoke_orchestrator(settings: Settings) -> dict[str, Any]:
    """One orchestrator run through its Lambda function; its result document."""
    response = aws.client(settings, "lambda").invoke(FunctionName=settings.orchestrator_function_name, Payload=b"{}")
    payload = json.loads(response["Payload"].read() or b"{}")
    if response.get("FunctionError"):
        raise StepFailed(f"the orchestrator failed: {payload.get('errorType')}: {payload.get('errorMessage')}")
    return dict(payload)


def top_level_states(definition: str) -> set[str]:
    return set(json.loads(definition)["States"])


def entered_states(events: list[dict[str, Any]], names: set[str]) -> list[tuple[str, float]]:
    """The top-level states entered, in order, with the seconds each took (until the next one)."""
    entered = [
        (e["stateEnteredEventDetails"]["name"], e["timestamp"])
        for e in events
        if e["type"].endswith(_ENTERED) and e["stateEnteredEventDetails"]["name"] in names
    ]
    last = events[-1]["timestamp"] if events else None
    result = []
    for n, (name, started) in enumerate(entered):
        ended = entered[n + 1][1] if n + 1 < len(entered) else last
        result.append((name, (ended - started).total_seconds() if ended else 0.0))
    return result


def last_entered(events: list[dict[str, Any]], names: set[str]) -> tuple[str, float] | None:
    """The last top-level state entered and when (epoch seconds): the running one while the execution runs."""
    for event in reversed(events):
        if event["type"].endswith(_ENTERED) and event["stateEnteredEventDetails"]["name"] in names:
            return event["stateEnteredEventDetails"]["name"], event["timestamp"].timestamp()
    return None


def follow(
    settings: Settings,
    execution_arn: str,
    *,
    progress: Callable[[str], None] = print,
    poll: float = 0.5,
    timeout: float = 3600,
    lines: heartbeats.LineSource | None = None,
    heartbeat: float | None = None,
    clock: Callable[[], float] = time.time,
) -> ExecutionReport:
    """Wait for an execution to end, reporting each top-level state as it is entered.

    While a state runs, a heartbeat (``    .. State 12 s: latest progress line``) at most
    every ``heartbeat`` seconds (default ``Settings.heartbeat_seconds``; 0: none); its
    line from ``lines`` (default: the CloudWatch Logs of the state's ECS task, which the
    local stack's emulator fills too).
    """
    sfn = aws.client(settings, "stepfunctions")
    definition = sfn.describe_state_machine_for_execution(executionArn=execution_arn)["definition"]
    names = top_level_states(definition)
    report = ExecutionReport(execution_arn=execution_arn, name=execution_arn.rsplit(":", 1)[-1])
    beats = heartbeats.Heartbeat(
        lines if lines is not None else heartbeats.CloudWatchLines(settings, definition),
        interval=heartbeats.heartbeat_interval(heartbeat, settings),
        progress=progress,
        clock=clock,
    )
    deadline = time.monotonic() + timeout
    shown = 0
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        events = _history(sfn, execution_arn)
        states = entered_states(events, names)
        for name, _ in states[shown:]:
            progress(f"    -> {name}")
        shown = len(states)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            break
        running = last_entered(events, names)
        if running is not None:
            beats.enter(*running)
            beats.beat()
        time.sleep(poll)
    report.status = described["status"]
    report.states = [name for name, _ in states]
    report.seconds_by_state = _by_state(states)
    report.error, report.cause = described.get("error"), described.get("cause")
    return report


def _by_state(states: list[tuple[str, float]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for name, seconds in states:
        totals[name] = round(totals.get(name, 0.0) + seconds, 3)
    return totals


def _history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events
