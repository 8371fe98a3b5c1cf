"""What moto's CloudFormation needs to create infra/pipeline.yaml as AWS does, in one place.

The local stack is the template itself (``pipeline_tasks.local.template`` deploys it to
the emulator's CloudFormation). moto 5.2.5 creates most of its resource types, but
skips some and drops properties of others; without these completions the local stack
would differ from AWS's in exactly the places that matter (who may send to the queue,
which role a task runs under, the bucket's versioning and events). Applied inside the
emulator process (``pipeline_tasks.local.emulator``); nothing here runs on AWS.

Resource types moto skips, created here with their service APIs:
``AWS::SQS::QueuePolicy``, ``AWS::S3::BucketPolicy``, ``AWS::SNS::TopicPolicy``,
``AWS::SNS::Subscription``, ``AWS::Scheduler::Schedule``, ``AWS::CloudWatch::Alarm``,
``AWS::Logs::MetricFilter``.

Properties moto drops, completed here:

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

And the intrinsic function ``Fn::Cidr``, which moto's template parser does not know.

The service APIs are called as the template's deployer would call them: through boto3,
on this server, with the local stack's administrator credentials.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
from typing import Any

log = logging.getLogger(__name__)

#: The local stack's administrator credentials (the deployer's; never real ones).
ADMIN_KEY_ID = "testing"
ADMIN_SECRET = "testing"

#: Resource types this module creates (moto's CloudFormation skips them).
CREATED_TYPES = (
    "AWS::SQS::QueuePolicy",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SNS::Subscription",
    "AWS::Scheduler::Schedule",
    "AWS::CloudWatch::Alarm",
    "AWS::Logs::MetricFilter",
)


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
        if resource_type in known and known[resource_type].__module__ != __name__:
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
    _define_created_types()
    _complete_buckets()
    _complete_task_definitions()
    _complete_state_machines()
    _parse_cidr()


def client(service: str, region: str) -> Any:
    """A boto3 client of this server, with the deployer's credentials."""
    import boto3

    return boto3.client(
        service,
        region_name=region,
        endpoint_url=f"http://127.0.0.1:{os.environ['MOTO_PORT']}",
        aws_access_key_id=ADMIN_KEY_ID,
        aws_secret_access_key=ADMIN_SECRET,
    )


# ---------------------------------------------------------------- the types moto skips


def _define_created_types() -> None:
    from moto.core.common_models import CloudFormationModel

    class Created:
        """A resource created through its service API; its physical id is what ``Ref`` returns.

        (A mixin: moto lists the direct subclasses of CloudFormationModel as the types it knows.)
        """

        resource_type = ""

        def __init__(self, physical_id: str) -> None:
            self.physical_id = physical_id

        @property
        def physical_resource_id(self) -> str:
            return self.physical_id

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return False

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> Any:
            properties = cloudformation_json.get("Properties", {})
            physical_id = cls.create(properties, region_name, kwargs.get("LogicalId", resource_name))
            return cls(physical_id)

        @classmethod
        def update_from_cloudformation_json(  # type: ignore[override]
            cls,
            original_resource: Any,
            new_resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
        ) -> Any:
            return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

        @classmethod
        def delete_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
        ) -> None:
            return None

        @classmethod
        def create(cls, properties: dict[str, Any], region: str, logical_id: str) -> str:
            raise NotImplementedError

    def policy(document: Any) -> str:
        return document if isinstance(document, str) else json.dumps(document)

    class QueuePolicy(Created, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SQS::QueuePolicy"

        @classmethod
        def create(cls, properties: dict[str, Any], region: str, logical_id: str) -> str:
            sqs = client("sqs", region)
            for queue_url in properties["Queues"]:
                sqs.set_queue_attributes(
                    QueueUrl=queue_url, Attributes={"Policy": policy(properties["PolicyDocument"])}
                )
            return logical_id

    class BucketPolicy(Created, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::S3::BucketPolicy"

        @classmethod
        def create(cls, properties: dict[str, Any], region: str, logical_id: str) -> str:
            client("s3", region).put_bucket_policy(
                Bucket=properties["Bucket"], Policy=policy(properties["PolicyDocument"])
            )
            return logical_id

    class TopicPolicy(Created, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SNS::TopicPolicy"

        @classmethod
        def create(cls, properties: dict[str, Any], region: str, logical_id: str) -> str:
            sns = client("sns", region)
            for topic in properties["Topics"]:
                sns.set_topic_attributes(
                    TopicArn=topic, AttributeName="Policy", AttributeValue=policy(properties["PolicyDocument"])
                )
            return logical_id

    class Subscription(Created, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SNS::Subscription"

        @classmethod
        def create(cls, properties: dict[str, Any], region: str, logical_id: str) -> str:
            answer = client("sns", region).subscribe(
                TopicArn=properties["TopicArn"], Protocol=properties["Protocol"], Endpoint=properties["Endpoint"]
            )
            return str(answer["SubscriptionArn"])

    class Schedule(Created, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Scheduler::Schedule"

        @classmethod
        def create(cls, properties: dict[str, Any], region: str, logical_id: str) -> str:
            client("scheduler", region).create_schedule(**properties)
            return str(properties["Name"])

    class Alarm(Created, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::CloudWatch::Alarm"

        @classmethod
        def create(cls, properties: dict[str, Any], region: str, logical_id: str) -> str:
            arguments = dict(properties)
            for number in ("Period", "EvaluationPeriods"):
                if number in arguments:
                    arguments[number] = int(arguments[number])
            if "Threshold" in arguments:
                arguments["Threshold"] = float(arguments["Threshold"])
            client("cloudwatch", region).put_metric_alarm(**arguments)
            return str(properties["AlarmName"])

    class MetricFilter(Created, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Logs::MetricFilter"

        @classmethod
        def create(cls, properties: dict[str, Any], region: str, logical_id: str) -> str:
            name = properties.get("FilterName", logical_id)
            transformations = [
                {
                    "metricNamespace": t["MetricNamespace"],
                    "metricName": t["MetricName"],
                    "metricValue": str(t["MetricValue"]),
                    **({"defaultValue": float(t["DefaultValue"])} if "DefaultValue" in t else {}),
                }
                for t in properties["MetricTransformations"]
            ]
            client("logs", region).put_metric_filter(
                logGroupName=properties["LogGroupName"],
                filterName=name,
                filterPattern=properties["FilterPattern"],
                metricTransformations=transformations,
            )
            return str(name)

    for created in (QueuePolicy, BucketPolicy, TopicPolicy, Subscription, Schedule, Alarm, MetricFilter):
        created.__module__ = __name__


# ---------------------------------------------------------------- the properties moto drops


def _complete_buckets() -> None:
    from moto.s3.models import FakeBucket

    original = FakeBucket.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        bucket = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        properties = cloudformation_json.get("Properties", {})
        s3 = client("s3", region_name)
        if "VersioningConfiguration" in properties:
            s3.put_bucket_versioning(
                Bucket=bucket.name, VersioningConfiguration={"Status": properties["VersioningConfiguration"]["Status"]}
            )
        if "PublicAccessBlockConfiguration" in properties:
            block = {k: _boolean(v) for k, v in properties["PublicAccessBlockConfiguration"].items()}
            s3.put_public_access_block(Bucket=bucket.name, PublicAccessBlockConfiguration=block)
        if "LifecycleConfiguration" in properties:
            rules = [_lifecycle_rule(rule) for rule in properties["LifecycleConfiguration"]["Rules"]]
            s3.put_bucket_lifecycle_configuration(Bucket=bucket.name, LifecycleConfiguration={"Rules": rules})
        if "NotificationConfiguration" in properties:
            s3.put_bucket_notification_configuration(
                Bucket=bucket.name, NotificationConfiguration=_notifications(properties["NotificationConfiguration"])
            )
        return bucket

    FakeBucket.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign,assignment]


def _boolean(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A lifecycle rule as CloudFormation spells it, as the S3 API takes it."""
    api: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "ExpirationInDays" in rule:
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    elif _boolean(rule.get("ExpiredObjectDeleteMarker", False)):
        api["Expiration"] = {"ExpiredObjectDeleteMarker": True}
    if "Transitions" in rule:
        api["Transitions"] = [
            {"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]} for t in rule["Transitions"]
        ]
    if "NoncurrentVersionExpiration" in rule:
        api["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return api


def _notifications(configuration: dict[str, Any]) -> dict[str, Any]:
    """A bucket's notifications as CloudFormation spells them, as the S3 API takes them."""
    api: dict[str, Any] = {}
    for cfn_name, api_name, target, api_target in (
        ("QueueConfigurations", "QueueConfigurations", "Queue", "QueueArn"),
        ("TopicConfigurations", "TopicConfigurations", "Topic", "TopicArn"),
        ("LambdaConfigurations", "LambdaFunctionConfigurations", "Function", "LambdaFunctionArn"),
    ):
        for item in configuration.get(cfn_name, []):
            entry: dict[str, Any] = {api_target: item[target], "Events": [item["Event"]]}
            rules = item.get("Filter", {}).get("S3Key", {}).get("Rules")
            if rules:
                entry["Filter"] = {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}}
            api.setdefault(api_name, []).append(entry)
    return api


def _complete_task_definitions() -> None:
    from moto.core.utils import pascal_to_camelcase, remap_nested_keys
    from moto.ecs.models import TaskDefinition, ecs_backends

    def create(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        properties = cloudformation_json["Properties"]
        containers = remap_nested_keys(properties.get("ContainerDefinitions", []), pascal_to_camelcase)
        for container in containers:  # log driver options keep their own names (awslogs-group…)
            options = container.get("logConfiguration", {}).get("options")
            if options is not None:
                container["logConfiguration"]["options"] = dict(options)
        platform = properties.get("RuntimePlatform")
        return ecs_backends[account_id][region_name].register_task_definition(
            family=properties.get("Family", resource_name),
            container_definitions=containers,
            volumes=remap_nested_keys(properties.get("Volumes", []), pascal_to_camelcase),
            network_mode=properties.get("NetworkMode"),
            requires_compatibilities=properties.get("RequiresCompatibilities"),
            cpu=properties.get("Cpu"),
            memory=properties.get("Memory"),
            task_role_arn=properties.get("TaskRoleArn"),
            execution_role_arn=properties.get("ExecutionRoleArn"),
            runtime_platform=remap_nested_keys(platform, pascal_to_camelcase) if platform else None,
        )

    TaskDefinition.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign,assignment]


def substitute(definition: str, values: dict[str, Any]) -> str:
    """``${Name}`` placeholders replaced as CloudFormation's ``DefinitionSubstitutions`` replaces them."""
    missing = sorted(set(re.findall(r"\$\{(\w+)\}", definition)) - set(values))
    if missing:
        raise ValueError(f"no DefinitionSubstitutions value for {', '.join(missing)}")
    return re.sub(r"\$\{(\w+)\}", lambda m: str(values[m.group(1)]), definition)


def _complete_state_machines() -> None:
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.responses import get_backend

    def create(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        properties = cloudformation_json["Properties"]
        definition = properties.get("DefinitionString")
        location = properties.get("DefinitionS3Location")
        if definition is None and location is not None:
            answer = client("s3", region_name).get_object(
                Bucket=location["Bucket"],
                Key=location["Key"],
                **({"VersionId": location["Version"]} if "Version" in location else {}),
            )
            definition = answer["Body"].read().decode("utf-8")
        if not isinstance(definition, str):
            definition = json.dumps(definition)
        definition = substitute(definition, properties.get("DefinitionSubstitutions", {}))
        logging_configuration = properties.get("LoggingConfiguration")
        if logging_configuration:
            logging_configuration = {
                "level": logging_configuration.get("Level", "OFF"),
                "includeExecutionData": _boolean(logging_configuration.get("IncludeExecutionData", False)),
                "destinations": [
                    {"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
                    for d in logging_configuration.get("Destinations", [])
                ],
            }
        tracing = properties.get("TracingConfiguration")
        # The backend the API serves (the interpreter's, when executions run), not moto's default one.
        return get_backend(account_id, region_name).create_state_machine(
            properties.get("StateMachineName", resource_name),
            definition,
            properties.get("RoleArn", ""),
            tags=[{"key": t["Key"], "value": t["Value"]} for t in properties.get("Tags", [])],
            loggingConfiguration=logging_configuration,
            tracingConfiguration={"enabled": _boolean(tracing.get("Enabled", False))} if tracing else None,
            sm_type=properties.get("StateMachineType"),
        )

    StateMachine.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign,assignment]


def cidr(block: str, count: int, host_bits: int) -> list[str]:
    """``Fn::Cidr``: the first ``count`` subnets of ``block`` with ``host_bits`` bits for hosts."""
    network = ipaddress.ip_network(block, strict=False)
    prefix = network.max_prefixlen - int(host_bits)
    subnets = network.subnets(new_prefix=prefix)
    return [str(next(subnets)) for _ in range(int(count))]


def _parse_cidr() -> None:
    from moto.cloudformation import parsing

    original = parsing.clean_json

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and "Fn::Cidr" in resource_json:
            block, count, host_bits = (original(part, resources_map) for part in resource_json["Fn::Cidr"])
            return cidr(block, count, host_bits)
        return original(resource_json, resources_map)

    parsing.clean_json = clean_json
