"""Heartbeats while a state runs (issue 18): state, seconds, the task's latest progress line; no sleeps."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pipeline_tasks import executions, progress
from pipeline_tasks.settings import Settings

JVM_NOISE = [
    "WARNING: Using incubator modules: jdk.incubator.vector",
    "26/11/30 18:16:32 WARN NativeCodeLoader: Unable to load native-hadoop library for your platform...",
    'Setting default log level to "WARN".',
    "$ ecom-pipeline notebook transform --no-progress -p execution_id batch-1",
    "2026-11-30 18:16:40,001 WARNING py4j.clientserver: closing",
]
PLAN = "2026-11-30 18:16:35,120 INFO pipeline_tasks.steps.transform.plan: transform: computing KPIs for 55 days"
PUBLISH = "2026-11-30 18:16:50,003 INFO pipeline_tasks.steps.transform.publish: OrderKPIs: 55 put, 0 deleted"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Lines:
    """A source whose latest line the test sets; records each question."""

    def __init__(self) -> None:
        self.line: str | None = None
        self.asked: list[tuple[str, float]] = []

    def latest(self, state: str, since: float) -> str | None:
        self.asked.append((state, since))
        return self.line


def test_pipeline_lines_count_and_jvm_noise_does_not():
    assert progress.progress_message(PLAN) == "transform: computing KPIs for 55 days"
    assert progress.progress_message("INFO pipeline_tasks.steps.stage: stage: 3 file(s)") == "stage: 3 file(s)"
    for line in JVM_NOISE:
        assert progress.progress_message(line) is None
    assert progress.latest_message([PLAN, *JVM_NOISE, PUBLISH, *JVM_NOISE]) == "OrderKPIs: 55 put, 0 deleted"
    assert progress.latest_message(JVM_NOISE) is None
    long = progress.progress_message("INFO pipeline_tasks.x: " + "y" * 500)
    assert long is not None and len(long) == progress.WIDTH


def test_the_interval_is_configurable_and_zero_turns_heartbeats_off():
    assert progress.heartbeat_interval(None, Settings.from_env({})) == 10.0
    assert progress.heartbeat_interval(None, Settings.from_env({"PIPELINE_HEARTBEAT_SECONDS": "2.5"})) == 2.5
    with pytest.raises(ValueError):
        Settings.from_env({"PIPELINE_HEARTBEAT_SECONDS": "soon"})
    assert progress.heartbeat_interval(3.0, Settings.from_env({"PIPELINE_HEARTBEAT_SECONDS": "7"})) == 3.0
    clock, printed = Clock(), []
    beats = progress.Heartbeat(Lines(), interval=0, progress=printed.append, clock=clock)
    beats.enter("TransformationTask", clock.now)
    clock.now += 100
    assert beats.beat() is None and printed == []


def test_heartbeats_name_the_state_its_seconds_and_the_latest_line():
    clock, printed, lines = Clock(), [], Lines()
    beats = progress.Heartbeat(lines, interval=10, progress=printed.append, clock=clock)
    beats.enter("TransformationTask", clock.now - 2)  # seen 2 s after it was entered
    for _ in range(60):  # 30 s of polls every 0.5 s
        clock.now += 0.5
        if clock.now >= 1012:
            lines.line = "transform: computing KPIs for 55 days"
        beats.beat()
    assert printed == [
        "    .. TransformationTask 12 s",
        "    .. TransformationTask 22 s: transform: computing KPIs for 55 days",
        "    .. TransformationTask 32 s: transform: computing KPIs for 55 days",
    ]
    assert set(lines.asked) == {("TransformationTask", 998.0)}


def test_an_unchanged_line_is_shown_at_most_once_per_interval_and_a_new_state_restarts_the_count():
    clock, printed, lines = Clock(), [], Lines()
    lines.line = "stage: 3 file(s)"
    beats = progress.Heartbeat(lines, interval=10, progress=printed.append, clock=clock)
    beats.enter("StagingTask", clock.now)
    for _ in range(199):  # 19.9 s of polls every 0.1 s
        clock.now += 0.1
        beats.enter("StagingTask", 1000.0)  # the same state again: no restart
        beats.beat()
    assert len(printed) == 1 and printed[0].endswith(" s: stage: 3 file(s)")
    entered = clock.now = 1020.0
    beats.enter("TransformationTask", entered)
    clock.now = entered + 9.9
    assert beats.beat() is None
    clock.now = entered + 10
    assert beats.beat() == "    .. TransformationTask 10 s: stage: 3 file(s)"
    beats.stop()
    clock.now += 60
    assert beats.beat() is None and len(printed) == 2


def test_the_log_dir_source_reads_the_newest_task_log_written_since_the_state_began(tmp_path: Path):
    old = tmp_path / "staging-1.log"
    old.write_text(f"{PLAN}\n")
    os.utime(old, (500, 500))
    source = progress.LogDirLines(tmp_path)
    assert source.latest("TransformationTask", 1000) is None
    task = tmp_path / "transformer-2.log"
    task.write_text("\n".join([*JVM_NOISE[:3], PLAN, *JVM_NOISE[3:]]) + "\n")
    os.utime(task, (1005, 1005))
    assert source.latest("TransformationTask", 1000) == "transform: computing KPIs for 55 days"
    with task.open("a") as handle:
        handle.write(PUBLISH + "\n" + "noise\n" * 50)
    os.utime(task, (1010, 1010))
    assert source.latest("TransformationTask", 1000) == "OrderKPIs: 55 put, 0 deleted"
    by_container = progress.LogDirLines(tmp_path, {"StagingTask": "staging"})
    os.utime(old, (1020, 1020))
    assert by_container.latest("StagingTask", 1000) == "transform: computing KPIs for 55 days"
    assert progress.LogDirLines(tmp_path / "absent").latest("StagingTask", 0) is None


DEFINITION = {
    "States": {
        "TransformationTask": {"Type": "Task", "Parameters": {"TaskDefinition": "arn:task-definition/transformer:1"}},
        "ReadValidationResult": {"Type": "Task", "Parameters": {"FunctionName": "arn:function"}},
    }
}
TRANSFORMER = {
    "containerDefinitions": [
        {
            "name": "transformer",
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-group": "/ecom-pipeline/prod/transformer", "awslogs-stream-prefix": "transformer"},
            },
        }
    ]
}


class Logs:
    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self.pages, self.requests = pages, []

    def filter_log_events(self, **request: Any) -> dict[str, Any]:
        self.requests.append(dict(request))
        events = self.pages.pop(0) if self.pages else []
        return {"events": events, **({"nextToken": f"t{len(self.requests)}"} if self.pages else {})}


class Denied:
    def __getattr__(self, name: str) -> Any:
        def call(**_: Any) -> Any:
            raise PermissionError("AccessDeniedException")

        return call


def _cloudwatch(ecs: Any, logs: Any) -> progress.CloudWatchLines:
    source = progress.CloudWatchLines(Settings(), json.dumps(DEFINITION))
    source._clients.update(ecs=ecs, logs=logs)
    return source


def test_the_cloudwatch_source_reads_the_log_group_of_the_states_task():
    ecs = SimpleNamespace(describe_task_definition=lambda taskDefinition: {"taskDefinition": TRANSFORMER})
    logs = Logs(
        [
            [{"timestamp": 1_003_000, "message": m} for m in [JVM_NOISE[0], PLAN]],
            [{"timestamp": 1_004_000, "message": JVM_NOISE[1]}],
            [],
        ]
    )
    source = _cloudwatch(ecs, logs)
    assert source.latest("TransformationTask", 1000.0) == "transform: computing KPIs for 55 days"
    first = logs.requests[0]
    assert first["logGroupName"] == "/ecom-pipeline/prod/transformer"
    assert first["logStreamNamePrefix"] == "transformer/transformer/"
    assert first["startTime"] == 1_000_000 - 2000
    assert logs.requests[1]["nextToken"] == "t1"
    assert source.latest("TransformationTask", 1000.0) == "transform: computing KPIs for 55 days"
    assert logs.requests[-1]["startTime"] == 1_004_000 and "nextToken" not in logs.requests[-1]
    assert source.latest("ReadValidationResult", 1000.0) is None  # no ECS task


def test_without_permission_the_cloudwatch_source_is_silent():
    source = _cloudwatch(Denied(), Denied())
    assert source.latest("TransformationTask", 1000.0) is None
    ecs = SimpleNamespace(describe_task_definition=lambda taskDefinition: {"taskDefinition": TRANSFORMER})
    assert _cloudwatch(ecs, Denied()).latest("TransformationTask", 1000.0) is None


class StepFunctions:
    """An execution that enters StagingTask, then TransformationTask, then succeeds; one poll = 0.5 s."""

    def __init__(self, clock: Clock) -> None:
        self.clock, self.polls = clock, 0

    def describe_state_machine_for_execution(self, executionArn: str) -> dict[str, Any]:
        return {"definition": json.dumps(DEFINITION | {"States": {**DEFINITION["States"], "StagingTask": {}}})}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        self.polls += 1
        self.clock.now += 0.5
        return {"status": "RUNNING" if self.clock.now < 1030 else "SUCCEEDED"}

    def get_paginator(self, name: str) -> Any:
        entered = [("StagingTask", 1000.0), ("TransformationTask", 1004.0)]
        events = [
            {
                "type": "TaskStateEntered",
                "timestamp": datetime.fromtimestamp(at, UTC),
                "stateEnteredEventDetails": {"name": state},
            }
            for state, at in entered
            if at <= self.clock.now
        ]
        return SimpleNamespace(paginate=lambda executionArn: [{"events": events}])


def test_follow_reports_heartbeats_between_the_states(monkeypatch: pytest.MonkeyPatch):
    clock, lines, printed = Clock(), Lines(), []
    lines.line = "transform: computing KPIs for 55 days"
    sfn = StepFunctions(clock)
    monkeypatch.setattr(executions.aws, "client", lambda settings, service: sfn)
    report = executions.follow(
        Settings(), "arn:x:execution:m:run-1", progress=printed.append, poll=0, lines=lines, heartbeat=10, clock=clock
    )
    assert report.status == "SUCCEEDED" and report.states == ["StagingTask", "TransformationTask"]
    assert printed == [
        "    -> StagingTask",
        "    -> TransformationTask",
        "    .. TransformationTask 10 s: transform: computing KPIs for 55 days",
        "    .. TransformationTask 20 s: transform: computing KPIs for 55 days",
    ]
    assert set(lines.asked) == {("TransformationTask", 1004.0)}


def test_the_emulator_copies_a_task_log_to_its_awslogs_stream(tmp_path: Path):
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.logs.models import logs_backends

    from pipeline_tasks.local.moto_workarounds.runtime import LogMirror

    container = {"name": "transformer", **TRANSFORMER["containerDefinitions"][0]}
    task = SimpleNamespace(id="task-1", region_name="us-east-1")
    path = tmp_path / "transformer-task-1.log"
    path.write_text(f"$ ecom-pipeline notebook transform\n{PLAN}\npartial")
    with mock_aws():
        backend = logs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        assert LogMirror.of(path, container, task, DEFAULT_ACCOUNT_ID) is None  # no log group: the file only
        backend.create_log_group("/ecom-pipeline/prod/transformer", {})
        mirror = LogMirror.of(path, container, task, DEFAULT_ACCOUNT_ID)
        assert mirror is not None and mirror.stream == "transformer/transformer/task-1"
        mirror.finish()
        events = backend.filter_log_events("/ecom-pipeline/prod/transformer", [], None, None, None, None, "", False)
        assert [e["message"] for e in events[0]] == ["$ ecom-pipeline notebook transform", PLAN, "partial"]
        assert LogMirror.of(path, {"name": "x"}, task, DEFAULT_ACCOUNT_ID) is None  # no awslogs configuration


def test_a_kernel_can_send_the_steps_log_lines_to_the_task_output():
    import subprocess
    import sys

    script = (
        "import logging\n"
        "from pipeline_tasks.progress import log_to_task_output\n"
        "log_to_task_output(); log_to_task_output()\n"
        "logging.getLogger('pipeline_tasks.steps.transform').info('transform: computing KPIs for 55 days')\n"
        "logging.getLogger('py4j').info('not ours')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    lines = done.stderr.splitlines()
    assert [progress.progress_message(line) for line in lines] == ["transform: computing KPIs for 55 days"]
