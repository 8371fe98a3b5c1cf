"""What moto's CloudFormation needs to create infra/pipeline.yaml as AWS does, in one place.

The local stack is the template itself (``pipeline_tasks.local.template`` deploys it to
the emulator's CloudFormation). moto 5.2.5 creates most of its resource types, but
skips some and drops properties of others; without these completions the local stack
would differ from AWS's in exactly the places that matter (who may send to the queue,
which role a task runs under, the bucket's versioning and events). Applied inside the
emulator process (``pipeline_tasks.local.emulator``); nothing here runs on AWS.

Resource types moto skips, created here with their service APIs (``created_types``):
``AWS::SQS::QueuePolicy``, ``AWS::S3::BucketPolicy``, ``AWS::SNS::TopicPolicy``,
``AWS::SNS::Subscription``, ``AWS::Scheduler::Schedule``, ``AWS::CloudWatch::Alarm``,
``AWS::Logs::MetricFilter``.

Properties moto drops, completed here (``completions``):

- ``AWS::S3::Bucket``: ``VersioningConfiguration``, ``PublicAccessBlockConfiguration``,
  ``LifecycleConfiguration``, ``NotificationConfiguration`` (moto keeps only encryption
  and tags);
- ``AWS::ECS::TaskDefinition``: ``TaskRoleArn``, ``ExecutionRoleArn``, ``NetworkMode``,
  ``RequiresCompatibilities``, ``Cpu``, ``RuntimePlatform`` (moto keeps the family, the
  containers and the memory);
- ``AWS::StepFunctions::StateMachine``: ``DefinitionS3Location`` and
  ``DefinitionSubstitutions`` (moto reads only ``DefinitionString``), ``StateMachineType``,
  ``LoggingConfiguration``, ``TracingConfiguration``; and moto creates it in a backend the
  API does not serve when executions really run.

And the intrinsic function ``Fn::Cidr``, which moto's template parser does not know
(``completions``).

The service APIs are called as the template's deployer would call them: through boto3,
on this server, with the local stack's administrator credentials (``deployer``). This
module's ``check()`` verifies the moto internals all of them rely on; ``apply()`` applies them.
"""

from __future__ import annotations

from typing import Any

from pipeline_tasks.local.moto_cloudformation import completions, created_types
from pipeline_tasks.local.moto_cloudformation.completions import cidr, substitute
from pipeline_tasks.local.moto_cloudformation.created_types import CREATED_TYPES
from pipeline_tasks.local.moto_cloudformation.deployer import ADMIN_KEY_ID, ADMIN_SECRET, client

__all__ = ["ADMIN_KEY_ID", "ADMIN_SECRET", "CREATED_TYPES", "apply", "check", "cidr", "client", "substitute"]


def check() -> None:
    """Fail loudly when the moto internals these completions rely on are not as expected."""
    from moto.cloudformation import parsing
    from moto.ecs.models import TaskDefinition
    from moto.s3.models import FakeBucket
    from moto.stepfunctions.models import StateMachine

    problems = []
    for cls in (FakeBucket, TaskDefinition, StateMachine):
        if "create_from_cloudformation_json" not in vars(cls):
            problems.append(f"{cls.__name__}.create_from_cloudformation_json is gone")
    if not hasattr(parsing, "clean_json") or not hasattr(parsing, "get_model_map"):
        problems.append("moto.cloudformation.parsing no longer has clean_json/get_model_map")
    source = _source(TaskDefinition.create_from_cloudformation_json)
    if "TaskRoleArn" in source:
        problems.append("moto's TaskDefinition now reads TaskRoleArn: review the completion")
    if "VersioningConfiguration" in _source(FakeBucket.create_from_cloudformation_json):
        problems.append("moto's bucket now reads VersioningConfiguration: review the completion")
    if "Fn::Cidr" in _source(parsing.clean_json):
        problems.append("moto now parses Fn::Cidr: drop the completion")
    known = parsing.get_model_map()
    for resource_type in CREATED_TYPES:
        if resource_type in known and known[resource_type].__module__ != created_types.__name__:
            problems.append(f"moto now creates {resource_type}: drop ours")
    if problems:
        raise RuntimeError("moto changed under the local stack's CloudFormation completions: " + "; ".join(problems))


def _source(function: Any) -> str:
    import inspect

    return inspect.getsource(function)


def apply() -> None:
    """Register the missing resource types and complete the others (before moto's first template)."""
    check()
    from moto.cloudformation import parsing

    parsing.get_model_map.cache_clear()
    parsing.get_model_list.cache_clear()
    parsing.get_name_type_map.cache_clear()
    created_types.define_created_types()
    completions._complete_buckets()
    completions._complete_task_definitions()
    completions._complete_state_machines()
    completions._parse_cidr()
