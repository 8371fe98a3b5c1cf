"""Heartbeats while a state of an execution runs: its name, its seconds, its task's latest progress line.

``executions.follow`` keeps a ``Heartbeat``: while a top-level state runs it reports, at
most every ``interval`` seconds (``Settings.heartbeat_seconds``, 10 by default; 0 turns
heartbeats off)::

    .. TransformationTask 12 s: transform: computing KPIs for 55 days

The line comes from a ``LineSource``, which is pluggable:

* ``CloudWatchLines`` (the default) reads the CloudWatch Logs group of the state's ECS
  task, found from its task definition's ``awslogs`` configuration. On AWS, and on the
  local stack too: the emulator copies each task's output to its awslogs stream
  (``moto_workarounds.runtime.LogMirror``). Without permission (``logs:FilterLogEvents``,
  ``ecs:DescribeTaskDefinition``) it gives nothing and the heartbeat is state + seconds.
* ``LogDirLines`` reads the newest task log file of a folder (the emulator's log dir,
  ``{log_dir}/{container}-{task_id}.log``).

Only the pipeline's own log lines count (``PROGRESS_LINE``: the format of the
``pipeline_tasks`` loggers), never the JVM's or papermill's.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipeline_tasks.io import aws
from pipeline_tasks.settings import Settings

#: A line of a ``pipeline_tasks`` logger, as the CLI formats it (``%(asctime)s %(levelname)s %(name)s: %(message)s``).
PROGRESS_LINE = re.compile(
    r"^(?:\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)? )?"
    r"(?:INFO|WARNING|ERROR|CRITICAL) pipeline_tasks(?:\.\w+)*: (?P<message>\S.*?)\s*$"
)
#: The format of the pipeline's log lines (the CLI's); ``PROGRESS_LINE`` matches it.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: A heartbeat shows at most this many characters of a line.
WIDTH = 160
#: Log events a little older than the state's start still count (clocks differ).
_SKEW_MS = 2000


def heartbeat_interval(value: float | None, settings: Settings) -> float:
    """``value`` when given, else ``Settings.heartbeat_seconds``; 0 (or less) means no heartbeats."""
    return max(0.0, settings.heartbeat_seconds if value is None else value)


def log_to_task_output(level: int = logging.INFO) -> None:
    """In a step's kernel: the ``pipeline_tasks`` loggers also write to the task's output, not the notebook's.

    In a kernel, ``sys.stderr`` is the notebook's output and its ``fileno()`` the process's
    original stderr: the task's output (on Fargate its awslogs stream, locally its log
    file), where heartbeats read the latest progress line. Lines in ``LOG_FORMAT``;
    calling it again changes nothing.
    """
    logger = logging.getLogger("pipeline_tasks")
    if not any(isinstance(h, _TaskOutput) for h in logger.handlers):
        try:
            stream: Any = open(  # noqa: SIM115 - the process's stderr, open as long as the process
                sys.stderr.fileno(), "w", buffering=1, encoding="utf-8", errors="replace", closefd=False
            )
        except (AttributeError, OSError, ValueError):
            stream = sys.__stderr__
        handler = _TaskOutput(stream)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)


class _TaskOutput(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``log_to_task_output`` adds (to find it again)."""


def progress_message(line: str) -> str | None:
    """The message of a pipeline log line (shortened to ``WIDTH``); None for any other line."""
    found = PROGRESS_LINE.match(line.strip())
    if not found:
        return None
    message = found["message"]
    return message if len(message) <= WIDTH else message[: WIDTH - 1] + "…"


def latest_message(lines: Iterable[str]) -> str | None:
    """The message of the last pipeline log line among ``lines``."""
    latest = None
    for line in lines:
        latest = progress_message(line) or latest
    return latest


class LineSource(Protocol):
    """Where the progress lines of a running state's task are read."""

    def latest(self, state: str, since: float) -> str | None:
        """The latest progress message of the task of ``state``, entered at ``since`` (epoch seconds)."""
        ...


class NoLines:
    """No progress lines: heartbeats say the state and its seconds."""

    def latest(self, state: str, since: float) -> str | None:
        return None


class LogDirLines:
    """The newest ``*.log`` file of a folder written since the state began (the emulator's task logs).

    ``containers`` maps a state to its container's name, to read only that task's files
    (``{container}-{task_id}.log``); without it, the newest file is the running task's.
    """

    def __init__(self, log_dir: Path, containers: Mapping[str, str] | None = None, tail_bytes: int = 65536) -> None:
        self.log_dir = log_dir
        self.containers = dict(containers or {})
        self.tail_bytes = tail_bytes

    def latest(self, state: str, since: float) -> str | None:
        pattern = f"{self.containers[state]}-*.log" if state in self.containers else "*.log"
        try:
            files = [(p.stat().st_mtime, p) for p in self.log_dir.glob(pattern)]
            recent = [(m, p) for m, p in files if m >= since - _SKEW_MS / 1000]
            if not recent:
                return None
            with max(recent)[1].open("rb") as handle:
                handle.seek(max(0, handle.seek(0, os.SEEK_END) - self.tail_bytes))
                text = handle.read().decode("utf-8", errors="replace")
        except OSError:
            return None
        return latest_message(text.splitlines())


@dataclass(frozen=True)
class LogTarget:
    """Where a state's ECS task logs: its awslogs group and the prefix of its streams."""

    group: str
    stream_prefix: str | None


def log_target(
    definition: Mapping[str, Any], state: str, describe: Callable[[str], dict[str, Any]]
) -> LogTarget | None:
    """The awslogs target of a state's task; None when the state runs no ECS task or it logs elsewhere.

    Args:
        definition: The state machine's definition (its ``States``).
        describe: ``ecs.describe_task_definition``'s ``taskDefinition`` for an ARN or family.
    """
    task_definition = definition.get("States", {}).get(state, {}).get("Parameters", {}).get("TaskDefinition")
    if not isinstance(task_definition, str):
        return None
    container = describe(task_definition)["containerDefinitions"][0]
    config = container.get("logConfiguration") or {}
    options = config.get("options") or {}
    if config.get("logDriver") != "awslogs" or not options.get("awslogs-group"):
        return None
    prefix = options.get("awslogs-stream-prefix")
    return LogTarget(options["awslogs-group"], f"{prefix}/{container['name']}/" if prefix else None)


class CloudWatchLines:
    """The latest pipeline line in the CloudWatch Logs group of the state's task (the task's awslogs stream).

    Any error (no permission, no log group, no task definition) silences the state: its
    heartbeats say the state and its seconds only.
    """

    def __init__(self, settings: Settings, definition: str | Mapping[str, Any], *, pages: int = 5) -> None:
        self.settings = settings
        self.definition = json.loads(definition) if isinstance(definition, str) else definition
        self.pages = pages
        self._clients: dict[str, Any] = {}
        self._targets: dict[str, LogTarget | None] = {}
        self._read: dict[tuple[str, float], tuple[int, str | None]] = {}

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = aws.client(self.settings, service)
        return self._clients[service]

    def latest(self, state: str, since: float) -> str | None:
        try:
            if state not in self._targets:
                describe = self._client("ecs").describe_task_definition
                self._targets[state] = log_target(
                    self.definition, state, lambda arn: describe(taskDefinition=arn)["taskDefinition"]
                )
            target = self._targets[state]
            return None if target is None else self._newest(state, since, target)
        except Exception:  # a heartbeat never fails the follow: without lines it is state + seconds
            self._targets[state] = None
            return None

    def _newest(self, state: str, since: float, target: LogTarget) -> str | None:
        start, message = self._read.get((state, since), (max(0, int(since * 1000) - _SKEW_MS), None))
        request: dict[str, Any] = {"logGroupName": target.group, "startTime": start}
        if target.stream_prefix:
            request["logStreamNamePrefix"] = target.stream_prefix
        for _ in range(self.pages):
            page = self._client("logs").filter_log_events(**request)
            for event in page.get("events", []):
                start = max(start, int(event["timestamp"]))
                message = progress_message(str(event.get("message", ""))) or message
            if not page.get("nextToken"):
                break
            request["nextToken"] = page["nextToken"]
        self._read[(state, since)] = (start, message)
        return message


class Heartbeat:
    """Reports the running state at most every ``interval`` seconds, with its task's latest progress line."""

    def __init__(
        self,
        source: LineSource,
        *,
        interval: float = Settings.heartbeat_seconds,
        progress: Callable[[str], None] = print,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.interval = interval
        self.progress = progress
        self.clock = clock
        self._state: tuple[str, float] | None = None
        self._last = 0.0

    def enter(self, state: str, since: float) -> None:
        """The running state and when it was entered (epoch seconds); its ``->`` line counts as a beat."""
        if self._state != (state, since):
            self._state = (state, since)
            self._last = self.clock()

    def stop(self) -> None:
        self._state = None

    def beat(self) -> str | None:
        """Report the running state when ``interval`` has passed since the last report; the line reported."""
        if self._state is None or self.interval <= 0:
            return None
        now = self.clock()
        if now - self._last < self.interval:
            return None
        self._last = now
        state, since = self._state
        message = self.source.latest(state, since)
        line = f"    .. {state} {max(0, int(now - since))} s" + (f": {message}" if message else "")
        self.progress(line)
        return line
