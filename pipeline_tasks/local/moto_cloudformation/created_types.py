"""The resource types moto's CloudFormation skips, created here through their service APIs.

``AWS::SQS::QueuePolicy``, ``AWS::S3::BucketPolicy``, ``AWS::SNS::TopicPolicy``,
``AWS::SNS::Subscription``, ``AWS::Scheduler::Schedule``, ``AWS::CloudWatch::Alarm`` and
``AWS::Logs::MetricFilter``: one function per type turns the template's properties into
the API call, and ``define_created_types`` registers each as a moto CloudFormation model.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from typing import Any

from pipeline_tasks.local.moto_cloudformation.deployer import client

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

#: ``create(properties, region, logical_id)`` returns the physical id (what ``Ref`` returns).
Creator = Callable[[dict[str, Any], str, str], str]


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
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        properties = cloudformation_json.get("Properties", {})
        physical_id = cls.create(properties, region_name, kwargs.get("LogicalId", resource_name))
        return cls(physical_id)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        return None

    @classmethod
    def create(cls, properties: dict[str, Any], region: str, logical_id: str) -> str:
        raise NotImplementedError


def _policy(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def _create_queue_policy(properties: dict[str, Any], region: str, logical_id: str) -> str:
    sqs = client("sqs", region)
    for queue_url in properties["Queues"]:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": _policy(properties["PolicyDocument"])})
    return logical_id


def _create_bucket_policy(properties: dict[str, Any], region: str, logical_id: str) -> str:
    client("s3", region).put_bucket_policy(Bucket=properties["Bucket"], Policy=_policy(properties["PolicyDocument"]))
    return logical_id


def _create_topic_policy(properties: dict[str, Any], region: str, logical_id: str) -> str:
    sns = client("sns", region)
    for topic in properties["Topics"]:
        sns.set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=_policy(properties["PolicyDocument"])
        )
    return logical_id


def _create_subscription(properties: dict[str, Any], region: str, logical_id: str) -> str:
    answer = client("sns", region).subscribe(
        TopicArn=properties["TopicArn"], Protocol=properties["Protocol"], Endpoint=properties["Endpoint"]
    )
    return str(answer["SubscriptionArn"])


def _create_schedule(properties: dict[str, Any], region: str, logical_id: str) -> str:
    client("scheduler", region).create_schedule(**properties)
    return str(properties["Name"])


def _create_alarm(properties: dict[str, Any], region: str, logical_id: str) -> str:
    arguments = dict(properties)
    for number in ("Period", "EvaluationPeriods"):
        if number in arguments:
            arguments[number] = int(arguments[number])
    if "Threshold" in arguments:
        arguments["Threshold"] = float(arguments["Threshold"])
    client("cloudwatch", region).put_metric_alarm(**arguments)
    return str(properties["AlarmName"])


def _create_metric_filter(properties: dict[str, Any], region: str, logical_id: str) -> str:
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


#: Each created type: its model's class name and how it is created.
_CREATORS: dict[str, tuple[str, Creator]] = {
    "AWS::SQS::QueuePolicy": ("QueuePolicy", _create_queue_policy),
    "AWS::S3::BucketPolicy": ("BucketPolicy", _create_bucket_policy),
    "AWS::SNS::TopicPolicy": ("TopicPolicy", _create_topic_policy),
    "AWS::SNS::Subscription": ("Subscription", _create_subscription),
    "AWS::Scheduler::Schedule": ("Schedule", _create_schedule),
    "AWS::CloudWatch::Alarm": ("Alarm", _create_alarm),
    "AWS::Logs::MetricFilter": ("MetricFilter", _create_metric_filter),
}


def define_created_types() -> None:
    """Register each created type as a moto CloudFormation model (a direct subclass of CloudFormationModel)."""
    from moto.core.common_models import CloudFormationModel

    for resource_type, (name, create) in _CREATORS.items():

        def body(namespace: dict[str, Any], resource_type: str = resource_type, create: Creator = create) -> None:
            namespace["cloudformation_type"] = staticmethod(lambda: resource_type)
            namespace["create"] = classmethod(
                lambda cls, properties, region, logical_id: create(properties, region, logical_id)
            )
            namespace["__module__"] = __name__

        types.new_class(name, (Created, CloudFormationModel), exec_body=body)
