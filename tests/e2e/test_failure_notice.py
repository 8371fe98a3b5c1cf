"""The failure notification names the batch, the failed state, its error and its executed notebook (issue 18, item 7).

NotifyFailure finds the failed state from the execution's data with intrinsic functions
(see its Comment in statemachine/pipeline.asl.json): checked here for every state that can
fail, on moto's Step Functions interpreter, and end to end for a failing staging task.
"""

from __future__ import annotations

import json
import re
import time

import boto3
import pytest
from moto import mock_aws
from moto.core.config import default_user_config

from pipeline_tasks.io import aws
from pipeline_tasks.local import asl
from pipeline_tasks.local.moto_cloudformation.completions import substitute
from tests.e2e.test_orchestration import BATCH, _messages, _put, _run, _subscribe
from tests.expected_states import FAILED_AT_STAGING
from tests.local_stacks import deployed

ERROR = {"Error": "States.TaskFailed", "Cause": "the task broke"}


def _ok(step: str, code: int = 0) -> dict:
    """A notebook task's result, as its ResultSelector writes it."""
    state = {"validate": "ValidationTask", "stage": "StagingTask", "transform": "TransformationTask"}[step]
    return {"exit_code": code, "task_arn": "arn:task", "completed_state": [state] if code == 0 else []}


VALIDATION = {
    "has_valid_files": True,
    "valid_count": 1,
    "invalid_count": 0,
    "completed_state": ["ReadValidationResult"],
}
REJECTED = {"completed_state": ["HandleInvalidFiles"]}

#: The execution's data when NotifyFailure starts, per way of failing: the state and notebook it must name.
FAILURES = {
    "ValidationTask caught": ({"error": ERROR}, "ValidationTask", "10_validate"),
    "validate exits 4": ({"tasks": {"validate": _ok("validate", 4)}}, "ValidationTask", "10_validate"),
    "ReadValidationResult caught": (
        {"tasks": {"validate": _ok("validate")}, "error": ERROR},
        "ReadValidationResult",
        "10_validate",
    ),
    "HandleInvalidFiles caught": (
        {"tasks": {"validate": _ok("validate")}, "validation": VALIDATION, "error": ERROR},
        "HandleInvalidFiles",
        "10_validate",
    ),
    "StagingTask caught": (
        {
            "tasks": {"validate": _ok("validate")},
            "validation": VALIDATION,
            "moved": {"rejected": REJECTED},
            "error": ERROR,
        },
        "StagingTask",
        "20_stage",
    ),
    "stage exits 4": (
        {
            "tasks": {"validate": _ok("validate"), "stage": _ok("stage", 4)},
            "validation": VALIDATION,
            "moved": {"rejected": REJECTED},
        },
        "StagingTask",
        "20_stage",
    ),
    "TransformationTask caught": (
        {
            "tasks": {"validate": _ok("validate"), "stage": _ok("stage")},
            "validation": VALIDATION,
            "moved": {"rejected": REJECTED},
            "error": ERROR,
        },
        "TransformationTask",
        "30_transform_kpis",
    ),
    "transform exits 137": (
        {
            "tasks": {"validate": _ok("validate"), "stage": _ok("stage"), "transform": _ok("transform", 137)},
            "validation": VALIDATION,
            "moved": {"rejected": REJECTED},
        },
        "TransformationTask",
        "30_transform_kpis",
    ),
    "ArchiveValidFiles caught": (
        {
            "tasks": {"validate": _ok("validate"), "stage": _ok("stage"), "transform": _ok("transform")},
            "validation": VALIDATION,
            "moved": {"rejected": REJECTED},
            "error": ERROR,
        },
        "ArchiveValidFiles",
        "30_transform_kpis",
    ),
}


def _notices(inputs: dict[str, dict]) -> dict[str, str]:
    """NotifyFailure's message for each input, evaluated by moto's Step Functions.

    The definition's FailureNotice state, then a Pass state with NotifyFailure's Parameters.
    """
    defined = asl.load()["States"]
    states = {name: defined[name] for name in ("FailureNotice", "NotifyFailure")}
    values = {"BucketName": "bucket", "Region": "eu-west-1", "FailureTopicArn": "arn:aws:sns:eu-west-1:1:f"}
    states = json.loads(substitute(json.dumps(states), values))
    message = states["NotifyFailure"]["Parameters"]["Message.$"]
    definition = {
        "StartAt": "FailureNotice",
        "States": {
            "FailureNotice": {**states["FailureNotice"], "Next": "Notify"},
            "Notify": {"Type": "Pass", "Parameters": {"Message.$": message}, "End": True},
        },
    }
    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    notices = {}
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="eu-west-1")
        machine = sfn.create_state_machine(
            name="notify", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
        for number, (name, data) in enumerate(inputs.items()):
            started = sfn.start_execution(stateMachineArn=machine, name=f"failure-{number}", input=json.dumps(data))
            arn = started["executionArn"]
            for _ in range(100):
                described = sfn.describe_execution(executionArn=arn)
                if described["status"] != "RUNNING":
                    break
                time.sleep(0.05)
            assert described["status"] == "SUCCEEDED", (name, described.get("cause"))
            notices[name] = json.loads(described["output"])["Message"] + "\n" + arn
    return notices


def test_the_notice_names_the_state_that_failed_its_error_and_notebook():
    inputs = {name: {"execution_id": "batch-7", "manifest_key": "m", **data} for name, (data, _, _) in FAILURES.items()}
    notices = _notices(inputs)
    for name, (data, state, notebook) in FAILURES.items():
        notice, arn = notices[name].rsplit("\n", 1)
        assert notice.startswith(f"Batch batch-7 failed in state {state}.\n"), (name, notice)
        assert f"Executed notebook: s3://bucket/runs/batch-7/{notebook}.ipynb\n" in notice, name
        assert f"region=eu-west-1#/v2/executions/details/{arn}" in notice, name
        [error] = [line for line in notice.splitlines() if line.startswith("Error: ")]
        [codes] = [line for line in notice.splitlines() if line.startswith("Exit codes of its notebook tasks")]
        if "error" in data:
            assert "the task broke" in error and "States.TaskFailed" in error, (name, error)
        else:
            code = data["tasks"][max(data["tasks"], key=list(data["tasks"]).index)]["exit_code"]
            assert error == "Error: []", (name, error)
            # The last exit code listed is the failed task's (moto gives one match unwrapped, AWS a list).
            assert re.search(rf": \[?(\d+,)*{code}\]?$", codes), (name, codes)


@pytest.mark.aws
@pytest.mark.slow
@pytest.mark.spark
def test_a_failing_batch_notifies_its_id_state_error_and_notebook(tmp_path):
    server, stack = deployed(tmp_path)
    try:
        failures = _subscribe(stack, stack.failure_topic_name)
        s3 = aws.client(stack, "s3")  # the orders table broken: the staging task cannot open it
        s3.put_object(Bucket=stack.bucket, Key="staging/orders/_delta_log/00000000000000000000.json", Body=b"{not json")
        _put(stack, BATCH)
        failed = _run(stack)
        assert failed.status == "FAILED" and failed.states == FAILED_AT_STAGING
        [notice] = _messages(stack, failures)
    finally:
        server.stop()
    assert notice.startswith(f"Batch {failed.name} failed in state StagingTask.\n"), notice
    assert "\nExit codes of its notebook tasks so far (validate, stage, transform): [0,4]\n" in notice
    assert f"\nExecuted notebook: s3://{stack.bucket}/runs/{failed.name}/20_stage.ipynb\n" in notice
    assert f"#/v2/executions/details/{failed.execution_arn}" in notice
