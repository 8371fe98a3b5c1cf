"""What the local stack cannot check, checked in the template instead (docs/deploy.md, "What the local
stack checks, and what it cannot").

The emulator enforces every identity policy of the template on every call the pipeline makes
(tests/e2e/test_least_privilege.py). It evaluates no resource policy but the bucket's, makes none of
the calls a service makes on our behalf outside the flow (S3 sending its events, the scheduler
invoking the orchestrator, ECS pulling images and shipping logs, Step Functions' ``.sync`` rule),
and evaluates few condition keys. Each of those is read from the template here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "infra" / "pipeline.yaml"


@pytest.fixture(scope="module")
def template() -> dict:
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(TEMPLATE))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _target(value: Any) -> str:
    """The logical resource a ``!Ref X``, ``!GetAtt X.Attr`` or ``!Sub "${X.Arn}…"`` points at, else the text."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            attribute = value["Fn::GetAtt"]
            return str(attribute[0] if isinstance(attribute, list) else attribute.split(".")[0])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            found = re.fullmatch(r"\$\{(\w+)(?:\.\w+)?\}", text)
            return found.group(1) if found else text
    return str(value)


def _statements(role: dict) -> list[dict]:
    return [s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def _allows(role: dict, action: str, resource: str) -> bool:
    """Whether an Allow statement of the role names ``action`` on ``resource`` (a logical id or a text)."""
    return any(
        s["Effect"] == "Allow"
        and action in _list(s["Action"])
        and resource in [_target(r) for r in _list(s["Resource"])]
        for s in _statements(role)
    )


def _trusts(role: dict, service: str) -> bool:
    statements = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    return any(
        s["Effect"] == "Allow"
        and "sts:AssumeRole" in _list(s["Action"])
        and service in _list(s["Principal"]["Service"])
        for s in statements
    )


def test_the_queue_policy_lets_exactly_the_bucket_send_its_events(template):
    """S3 sends its notifications under the queue's resource policy, which the emulator does not evaluate;
    with a policy AWS refuses, the stack would not even create (S3 checks it on PutBucketNotification).
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/ways-to-add-notification-config-to-bucket.html"""
    resources = template["Resources"]
    [statement] = resources["FileQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert [_target(q) for q in resources["FileQueuePolicy"]["Properties"]["Queues"]] == ["FileQueue"]
    assert statement["Effect"] == "Allow" and statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert _list(statement["Action"]) == ["sqs:SendMessage"] and _target(statement["Resource"]) == "FileQueue"
    source = statement["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"]
    bucket_name = resources["DataBucket"]["Properties"]["BucketName"]["Fn::Sub"]
    assert source == "arn:${AWS::Partition}:s3:::" + bucket_name  # the bucket itself, not "any bucket"
    assert _target(statement["Condition"]["StringEquals"]["aws:SourceAccount"]) == "AWS::AccountId"
    [queue] = resources["DataBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert _target(queue["Queue"]) == "FileQueue"
    assert "FileQueuePolicy" in _list(resources["DataBucket"].get("DependsOn", []))  # the policy exists first


def test_the_schedule_may_invoke_the_orchestrator(template):
    """EventBridge Scheduler invokes the function with the schedule's role; the emulator runs no schedule.
    https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html#setting-up-execution-role"""
    resources = template["Resources"]
    target = resources["Schedule"]["Properties"]["Target"]
    assert _target(target["Arn"]) == "OrchestratorFunction"
    role = resources[_target(target["RoleArn"])]
    assert _trusts(role, "scheduler.amazonaws.com")
    assert _allows(role, "lambda:InvokeFunction", "OrchestratorFunction")


def test_each_task_definition_may_write_its_logs_and_each_function_its_own(template):
    """ECS ships a task's output with the execution role, Lambda a function's with the function's role;
    locally output goes to files. https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_execution_IAM_role.html"""
    resources = template["Resources"]
    for name, resource in resources.items():
        if resource["Type"] == "AWS::ECS::TaskDefinition":
            properties = resource["Properties"]
            execution_role = resources[_target(properties["ExecutionRoleArn"])]
            assert _trusts(execution_role, "ecs-tasks.amazonaws.com"), name
            [container] = properties["ContainerDefinitions"]
            group = _target(container["LogConfiguration"]["Options"]["awslogs-group"])
            for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
                assert _allows(execution_role, action, group), (name, action)
            assert _trusts(resources[_target(properties["TaskRoleArn"])], "ecs-tasks.amazonaws.com"), name
        if resource["Type"] == "AWS::Lambda::Function":
            role = resources[_target(resource["Properties"]["Role"])]
            group = _target(resource["Properties"]["LoggingConfig"]["LogGroup"])
            assert _trusts(role, "lambda.amazonaws.com"), name
            for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
                assert _allows(role, action, group), (name, action)


def test_the_state_machine_may_follow_its_tasks_and_pass_their_roles(template):
    """``ecs:runTask.sync`` creates and reads an EventBridge rule, which moto's interpreter never does, and
    RunTask passes the task definition's two roles.
    https://docs.aws.amazon.com/step-functions/latest/dg/ecs-iam.html"""
    resources = template["Resources"]
    machine = resources["StateMachine"]["Properties"]
    role = resources[_target(machine["RoleArn"])]
    assert _trusts(role, "states.amazonaws.com")
    rule = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/StepFunctionsGetEventsForECSTaskRule"
    for action in ("events:PutTargets", "events:PutRule", "events:DescribeRule"):
        assert _allows(role, action, rule), action
    for resource in resources.values():
        if resource["Type"] == "AWS::ECS::TaskDefinition":
            for key in ("TaskRoleArn", "ExecutionRoleArn"):
                assert _allows(role, "iam:PassRole", _target(resource["Properties"][key])), key
