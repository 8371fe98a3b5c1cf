"""The properties moto's CloudFormation drops, completed, and the intrinsic ``Fn::Cidr``.

- ``AWS::S3::Bucket``: versioning, public access block, lifecycle and notifications;
- ``AWS::ECS::TaskDefinition``: the task and execution roles, network mode,
  compatibilities, CPU and runtime platform;
- ``AWS::StepFunctions::StateMachine``: ``DefinitionS3Location``,
  ``DefinitionSubstitutions``, its type, logging and tracing, in the backend the API serves;
- ``Fn::Cidr`` in moto's template parser.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from pipeline_tasks.local.moto_cloudformation.deployer import client


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
