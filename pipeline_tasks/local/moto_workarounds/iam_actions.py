"""Workaround 10 for every service but S3: the actions and resources AWS authorizes a request by.

DynamoDB, SNS, SQS, Lambda, Step Functions, ECS (with ``iam:PassRole`` of the roles a
request hands over) and IAM; ``required_permissions`` dispatches by service, S3 to
``iam_s3_actions``.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from pipeline_tasks.local.moto_workarounds.iam_requests import RequestFacts
from pipeline_tasks.local.moto_workarounds.iam_s3_actions import s3_permissions


def _dynamodb_permissions(facts: RequestFacts) -> list[tuple[str, str]]:
    def table(name: str) -> str:
        return name if name.startswith("arn:") else facts.arn("dynamodb", f"table/{name}")

    operation = facts.operation
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [(f"dynamodb:{operation}", table(name)) for name in facts.param("RequestItems") or {}] or [
            (f"dynamodb:{operation}", "*")
        ]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        actions = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
            "Get": "GetItem",
        }
        needed = []
        for item in facts.param("TransactItems") or []:
            for kind, request in item.items():
                needed.append((f"dynamodb:{actions.get(kind, kind)}", table(request["TableName"])))
        return needed or [(f"dynamodb:{operation}", "*")]
    name = facts.param("TableName")
    if name and operation in ("Query", "Scan") and facts.param("IndexName"):
        return [(f"dynamodb:{operation}", f"{table(name)}/index/{facts.param('IndexName')}")]
    resource = table(name) if name else facts.param("ResourceArn") or facts.param("StreamArn") or "*"
    return [(f"dynamodb:{operation}", resource)]


def _sns_permissions(facts: RequestFacts) -> list[tuple[str, str]]:
    action = "sns:Publish" if facts.operation == "PublishBatch" else f"sns:{facts.operation}"
    topic = facts.param("TopicArn")
    if not topic and facts.operation == "CreateTopic" and facts.param("Name"):
        topic = facts.arn("sns", facts.param("Name"))
    if not topic and str(facts.param("TargetArn") or "").count(":") == 5:
        topic = facts.param("TargetArn")  # a topic's ARN (an endpoint's has more parts)
    if not topic and facts.param("SubscriptionArn"):
        topic = str(facts.param("SubscriptionArn")).rsplit(":", 1)[0]
    return [(action, topic or facts.param("ResourceArn") or "*")]


def _sqs_permissions(facts: RequestFacts, resource: str) -> list[tuple[str, str]]:
    if facts.operation in ("GetQueueUrl", "CreateQueue") and facts.param("QueueName"):
        account = facts.param("QueueOwnerAWSAccountId") or facts.account
        return [
            (f"sqs:{facts.operation}", f"arn:{facts.partition}:sqs:{facts.region}:{account}:{facts.param('QueueName')}")
        ]
    # A batch is authorized as its single action (SendMessageBatch as sqs:SendMessage …).
    action = {
        "SendMessageBatch": "SendMessage",
        "DeleteMessageBatch": "DeleteMessage",
        "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
    }.get(facts.operation, facts.operation)
    return [(f"sqs:{action}", resource)]


def _lambda_permissions(facts: RequestFacts) -> list[tuple[str, str]]:
    action = {"Invoke": "InvokeFunction", "InvokeWithResponseStream": "InvokeFunction"}.get(
        facts.operation, facts.operation
    )
    found = re.search(r"/functions/([^/]+)", facts.path)
    name = found.group(1) if found else facts.param("FunctionName")
    needed = [(f"lambda:{action}", lambda_function_arn(name, facts.param("Qualifier"), facts) if name else "*")]
    if facts.operation in ("CreateFunction", "UpdateFunctionConfiguration") and facts.param("Role"):
        needed.append(("iam:PassRole", facts.param("Role")))
    return needed


def lambda_function_arn(identifier: str, qualifier: str | None, facts: RequestFacts) -> str:
    """The ARN of a function named by name, ``name:qualifier``, partial ARN or ARN.

    Qualified when a version or alias is given, as Lambda authorizes it.
    """
    if identifier.startswith("arn:"):
        parts = identifier.split(":")
        region, account, name, named = parts[3], parts[4], parts[6], parts[7] if len(parts) > 7 else None
    elif ":function:" in identifier:
        account, _, rest = identifier.partition(":function:")
        region, (name, _, named) = facts.region, rest.partition(":")
    else:
        region, account, (name, _, named) = facts.region, facts.account, identifier.partition(":")
    version = qualifier or named or None
    return f"arn:{facts.partition}:lambda:{region}:{account}:function:{name}" + (f":{version}" if version else "")


def _states_permissions(facts: RequestFacts) -> list[tuple[str, str]]:
    resource = (
        facts.param("stateMachineArn")
        or facts.param("executionArn")
        or facts.param("mapRunArn")
        or facts.param("resourceArn")
        or "*"
    )
    if facts.operation == "CreateStateMachine" and facts.param("name"):
        resource = facts.arn("states", f"stateMachine:{facts.param('name')}")
    needed = [(f"states:{facts.operation}", resource)]
    if facts.operation in ("CreateStateMachine", "UpdateStateMachine") and facts.param("roleArn"):
        needed.append(("iam:PassRole", facts.param("roleArn")))
    return needed


def _ecs_permissions(facts: RequestFacts) -> list[tuple[str, str]]:
    from moto.ecs.models import ecs_backends

    backend = ecs_backends[facts.account][facts.region]
    operation = facts.operation
    cluster = str(facts.param("cluster") or "default").rsplit("/", 1)[-1]
    if operation in ("RunTask", "StartTask"):
        try:
            definition = backend.describe_task_definition(facts.param("taskDefinition"))
        except Exception:  # no such definition: the request fails on its own
            definition = None
        overrides = facts.param("overrides") or {}
        roles = [
            overrides.get("taskRoleArn") or getattr(definition, "task_role_arn", None),
            overrides.get("executionRoleArn") or getattr(definition, "execution_role_arn", None),
        ]
        needed = [(f"ecs:{operation}", definition.arn if definition else "*")]
        return needed + [("iam:PassRole", role) for role in roles if role]
    if operation in ("DescribeTasks", "StopTask"):
        tasks = facts.param("tasks") or [facts.param("task")]
        return [(f"ecs:{operation}", _task_arn(backend, facts, cluster, str(task))) for task in tasks if task]
    if operation == "DescribeClusters":
        names = facts.param("clusters") or ["default"]
        return [
            (f"ecs:{operation}", n if str(n).startswith("arn:") else facts.arn("ecs", f"cluster/{n}")) for n in names
        ]
    if operation == "RegisterTaskDefinition":
        roles = [facts.param("taskRoleArn"), facts.param("executionRoleArn")]
        return [(f"ecs:{operation}", "*")] + [("iam:PassRole", role) for role in roles if role]
    return [(f"ecs:{operation}", facts.param("resourceArn") or "*")]


def _task_arn(backend: Any, facts: RequestFacts, cluster: str, task: str) -> str:
    if task.startswith("arn:"):
        return task
    known = backend.tasks.get(cluster, {}).get(task)
    return str(known.task_arn) if known is not None else facts.arn("ecs", f"task/{cluster}/{task}")


def _iam_permissions(facts: RequestFacts, resource: str) -> list[tuple[str, str]]:
    from moto.iam.models import iam_backends

    if resource == "*" and facts.param("UserName"):
        with contextlib.suppress(Exception):  # no such user: the request fails on its own
            resource = iam_backends[facts.account][facts.partition].get_user(facts.param("UserName")).arn
    return [(f"iam:{facts.operation}", resource)]


def required_permissions(facts: RequestFacts, resource: str) -> list[tuple[str, str]]:
    """The ``(action, resource)`` pairs a request needs (``resource``: what moto resolved, ``*`` if nothing)."""
    service = facts.service
    if service == "s3":
        return s3_permissions(facts, resource)
    if service == "dynamodb":
        return _dynamodb_permissions(facts)
    if service == "sns":
        return _sns_permissions(facts)
    if service == "sqs":
        return _sqs_permissions(facts, resource)
    if service == "lambda":
        return _lambda_permissions(facts)
    if service == "states":
        return _states_permissions(facts)
    if service == "ecs":
        return _ecs_permissions(facts)
    if service == "iam":
        return _iam_permissions(facts, resource)
    return [(f"{service}:{facts.operation}", resource)]  # STS as moto resolves it; the rest on the action alone
