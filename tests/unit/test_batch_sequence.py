"""One description of a batch's sequence: process_batch runs statemachine/pipeline.asl.json itself.

A task state added to the definition that nothing here does fails
``test_every_task_of_the_definition_is_done_in_this_process``; a reordered or added
state changes the states entered, which these tests and the end-to-end tests share
(tests/expected_states.py).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pipeline_tasks.local import asl, runner
from pipeline_tasks.settings import Settings
from tests.expected_states import FAILED_AT_TRANSFORM, FLOW, PROCESSED

DEFINITION = asl.load()
SETTINGS = Settings(bucket="b")
INPUT = {"execution_id": "e-1", "manifest_key": "manifests/e-1.json", "files": 3}
VALID = [{"key": "input/orders.csv", "rows_read": 2, "rows_not_staged": {}}]
INVALID = [{"key": "input/junk.csv", "reason": "unknown dataset"}]


class Recorder:
    """Does every task as a local run would, recording what each was asked (and failing one on request)."""

    def __init__(self, valid: list[dict[str, Any]], *, fail: str | None = None, exits: str | None = None) -> None:
        self.valid, self.fail, self.exits = valid, fail, exits  # exits: the ECS task whose container exits 1
        self.done: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, task: asl.Task, inputs: dict[str, Any]) -> Any:
        self.done.append((task.key, inputs))
        if task.key == self.fail:
            raise RuntimeError(f"{task.name} broke")
        if task.kind == "ecs":
            return {"exit_code": 1 if task.key == self.exits else 0}
        if task.kind == "lambda":
            return {"has_valid_files": bool(self.valid), "valid_files": self.valid, "invalid_files": INVALID}
        return None


def _run(recorder: Recorder) -> tuple[asl.Outcome, list[str]]:
    entered: list[str] = []
    return asl.interpret(DEFINITION, recorder, INPUT, entered=entered.append), entered


def test_every_task_of_the_definition_is_done_in_this_process():
    assert {task.key for _, task in asl.tasks(DEFINITION)} == set(runner.LOCAL_TASKS)


def test_a_task_added_to_the_definition_is_one_nothing_does_here():
    definition = copy.deepcopy(DEFINITION)
    definition["States"]["PublishReport"] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "${PublishReportFunctionArn}", "Payload": {"execution_id.$": "$.execution_id"}},
        "End": True,
    }
    assert {task.key for _, task in asl.tasks(definition)} - set(runner.LOCAL_TASKS) == {"lambda:PublishReport"}


def test_the_tasks_ask_for_the_steps_with_the_parameters_of_their_container_commands():
    assert dict(asl.tasks(DEFINITION)) == {
        "ValidationTask": asl.Task(
            "ecs", "validate", {"execution_id": "$.execution_id", "manifest_key": "$.manifest_key"}
        ),
        "ReadValidationResult": asl.Task("lambda", "ReadValidationResult", {"execution_id": "$.execution_id"}),
        "HandleInvalidFiles": asl.Task("move", "rejected", {"items": "$.validation.invalid_files"}),
        "StagingTask": asl.Task("ecs", "stage", {"execution_id": "$.execution_id"}),
        "TransformationTask": asl.Task("ecs", "transform", {"execution_id": "$.execution_id"}),
        "ArchiveValidFiles": asl.Task("move", "archive", {"items": "$.validation.valid_files"}),
        "NotifySuccess": asl.Task("sns", "Success"),
        "NotifyFailure": asl.Task("sns", "Failure"),
    }


def test_a_batch_with_valid_files_goes_through_every_step_in_the_definitions_order():
    recorder = Recorder(VALID)
    outcome, entered = _run(recorder)
    assert (outcome.status, outcome.error, entered) == ("SUCCEEDED", None, PROCESSED)
    assert recorder.done == [
        ("ecs:validate", {"execution_id": "e-1", "manifest_key": "manifests/e-1.json"}),
        ("lambda:ReadValidationResult", {"execution_id": "e-1"}),
        ("move:rejected", {"items": INVALID}),
        ("ecs:stage", {"execution_id": "e-1"}),
        ("ecs:transform", {"execution_id": "e-1"}),
        ("move:archive", {"items": VALID}),
        ("sns:Success", {}),
    ]
    assert outcome.data["tasks"]["transform"] == {"exit_code": 0}


def test_a_batch_of_invalid_files_only_is_rejected_and_not_staged():
    recorder = Recorder([])
    outcome, entered = _run(recorder)
    assert (outcome.status, entered) == ("SUCCEEDED", [*FLOW, "NoValidFiles"])
    assert [key for key, _ in recorder.done] == ["ecs:validate", "lambda:ReadValidationResult", "move:rejected"]


def test_a_failing_step_is_caught_notified_and_fails_the_execution_with_its_error():
    recorder = Recorder(VALID, fail="ecs:transform")
    outcome, entered = _run(recorder)
    assert entered == [
        *FLOW,
        "StagingTask",
        "CheckStagingExit",
        "TransformationTask",
        "FailureNotice",
        "NotifyFailure",
        "PipelineFailed",
    ]
    assert outcome.status == "FAILED" and str(outcome.error) == "transform broke"
    assert outcome.data["error"] == {"Error": "RuntimeError", "Cause": "transform broke"}
    assert outcome.fail["Error"] == "PipelineFailed"
    assert [key for key, _ in recorder.done][-2:] == ["ecs:transform", "sns:Failure"]


def test_a_task_exiting_non_zero_fails_at_its_check_as_on_the_local_stack():
    recorder = Recorder(VALID, exits="ecs:transform")
    outcome, entered = _run(recorder)
    assert (outcome.status, outcome.error, entered) == ("FAILED", None, FAILED_AT_TRANSFORM)


def test_what_the_interpreter_does_not_know_is_refused():
    with pytest.raises(asl.Unsupported, match="resource"):
        asl.task_of({"Type": "Task", "Resource": "arn:aws:states:::glue:startJobRun.sync"})
    choice = {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "X"}]}
    with pytest.raises(asl.Unsupported, match="NumericGreaterThan"):
        asl.choose(choice, {"n": 2})
    with pytest.raises(asl.Unsupported, match="Parallel"):
        asl.interpret({"StartAt": "P", "States": {"P": {"Type": "Parallel"}}}, Recorder([]), {})


def test_a_failure_without_a_catch_is_raised():
    definition = {"StartAt": "T", "States": {"T": {**DEFINITION["States"]["NotifySuccess"]}}}
    with pytest.raises(RuntimeError, match="Success broke"):
        asl.interpret(definition, Recorder([], fail="sns:Success"), INPUT)


@pytest.fixture
def local_batch(monkeypatch):
    """process_batch with its S3 reads and writes replaced: the steps, moves and documents recorded."""
    calls: list[tuple[str, Any]] = []
    result = {"valid_files": VALID, "invalid_files": INVALID}
    report = {"tables": {"OrderKPIs": {"put": 1, "deleted": 0, "unchanged": 0}}}
    monkeypatch.setattr(runner.aws, "client", lambda *_: None)
    monkeypatch.setattr(runner, "pin_current", lambda _settings, keys: list(keys))
    monkeypatch.setattr(runner.validate, "write_manifest", lambda _s, e, _k: f"manifests/{e}.json")
    monkeypatch.setattr(
        runner.s3io, "get_json", lambda _c, _b, key: report if "transform" in key.rsplit("/", 1)[-1] else result
    )
    monkeypatch.setattr(runner.files, "reject", lambda _s, items: calls.append(("reject", items)) or [])
    monkeypatch.setattr(
        runner.files, "archive", lambda _s, items: calls.append(("archive", items)) or ["archive/orders.csv"]
    )
    monkeypatch.setattr(runner.runs, "archived_keys", lambda _s, _e: [])
    return calls


def test_process_batch_runs_the_definition_with_the_injected_steps(local_batch):
    steps: list[tuple[str, dict[str, Any]]] = []
    lines: list[str] = []
    execution = runner.process_batch(
        SETTINGS, "e-2", ["input/orders.csv", "input/junk.csv"], steps=lambda *a: steps.append(a), progress=lines.append
    )
    assert (execution.status, execution.error, execution.states) == ("SUCCEEDED", None, PROCESSED)
    assert steps == [
        ("validate", {"execution_id": "e-2", "manifest_key": "manifests/e-2.json"}),
        ("stage", {"execution_id": "e-2"}),
        ("transform", {"execution_id": "e-2"}),
    ]
    assert local_batch == [("reject", INVALID), ("archive", VALID)]
    assert list(execution.seconds) == ["validate", "reject", "stage", "transform", "archive"]
    assert execution.valid_files == [{"key": "input/orders.csv"}]
    assert execution.invalid_files == [{"key": "input/junk.csv", "reason": "unknown dataset"}]
    assert "    archived archive/orders.csv" in lines and "    OrderKPIs: 1 put, 0 deleted, 0 unchanged" in lines


def test_process_batch_reports_a_failing_step_in_its_execution(local_batch):
    def steps(step: str, parameters: dict[str, Any]) -> None:
        if step == "stage":
            raise RuntimeError("no staging today")

    execution = runner.process_batch(SETTINGS, "e-3", ["input/orders.csv"], steps=steps, progress=lambda _: None)
    assert (execution.status, execution.error) == ("FAILED", "RuntimeError: no staging today")
    assert execution.states == [*FLOW, "StagingTask", "FailureNotice", "NotifyFailure", "PipelineFailed"]
    assert local_batch == [("reject", INVALID)]  # the valid files stay in input/ for a rerun
