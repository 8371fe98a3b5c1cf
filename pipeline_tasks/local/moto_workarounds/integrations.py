"""Workarounds 1, 4, 5 and 6: the services' integrations as AWS runs them.

Step Functions' ECS integration casing (1), awsvpc network interfaces' DNS names (4),
``CopySource`` of ``aws-sdk:s3:copyObject`` decoded once (5), and S3 event records that
name the object's version and a sequencer (6).
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any
from urllib.parse import unquote


def copy_source_as_dict(source: str) -> dict[str, str] | None:
    """An encoded ``bucket/key[?versionId=v]`` as boto3's dict form; None when it is not validly encoded.

    Valid means what AWS requires: only unreserved characters, ``/`` and ``%XX``
    escapes before ``?versionId=`` (a raw space, ``#`` or non-ASCII character is not).
    """
    path, _, query = source.partition("?")
    if query and not query.startswith("versionId="):
        return None
    if not re.fullmatch(r"(?:[A-Za-z0-9\-._~/]|%[0-9A-Fa-f]{2})+", path) or "/" not in path.lstrip("/"):
        return None
    try:
        decoded = unquote(path.lstrip("/"), errors="strict")
    except UnicodeDecodeError:
        return None
    bucket, _, key = decoded.partition("/")
    document = {"Bucket": bucket, "Key": key}
    if query:
        document["VersionId"] = unquote(query[len("versionId=") :])
    return document


def _decode_copy_sources() -> None:
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
        StateTaskServiceAwsSdk,
    )

    def normalise_parameters(
        self: Any, parameters: dict[str, Any], boto_service_name: Any = None, service_action_name: Any = None
    ) -> None:
        service = self._get_boto_service_name(boto_service_name)
        action = self._get_boto_service_action(service_action_name)
        source = parameters.get("CopySource")
        if service == "s3" and action == "copy_object" and isinstance(source, str):
            decoded = copy_source_as_dict(source)
            if decoded is None:
                raise ClientError(
                    {
                        "Error": {"Code": "InvalidArgument", "Message": f"CopySource is not URL-encoded: {source!r}"},
                        "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "local-stack"},
                    },
                    "CopyObject",
                )
            parameters["CopySource"] = decoded

    StateTaskServiceAwsSdk._normalise_parameters = normalise_parameters  # type: ignore[method-assign]


def _name_versions_in_s3_events() -> None:
    from moto.s3 import notifications

    original = notifications._get_s3_event
    lock = threading.Lock()
    last = [0]

    def sequencer() -> str:
        with lock:  # strictly growing, whatever the clock does
            last[0] = max(last[0] + 1, time.time_ns())
            return f"{last[0]:016X}"

    def get_s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event: dict[str, Any] = original(event_name, bucket, key, notification_id)
        for record in event["Records"]:
            s3_object = record["s3"]["object"]
            if bucket.is_versioned and key.version_id not in (None, "null"):
                s3_object["versionId"] = key.version_id
            s3_object["sequencer"] = sequencer()
        return event

    notifications._get_s3_event = get_s3_event


def _name_network_interfaces() -> None:
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface

    def private_dns_name(self: Any) -> str:
        return f"ip-{str(self.private_ip_address).replace('.', '-')}.ec2.internal"

    NetworkInterface.private_dns_name = property(private_dns_name)  # type: ignore[attr-defined,assignment]


def _normalise_ecs_integration() -> None:
    import botocore.session
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs import (
        StateTaskServiceEcs,
    )

    models: dict[str, Any] = {}

    def operation(action: str) -> Any:
        if "ecs" not in models:
            models["ecs"] = botocore.session.get_session().get_service_model("ecs")
        name = "".join(part[:1].upper() + part[1:] for part in action.split("_"))
        return models["ecs"].operation_model(name)

    def normalise_parameters(
        self: Any, parameters: dict[str, Any], boto_service_name: Any = None, service_action_name: Any = None
    ) -> None:
        action = self._get_boto_service_action(service_action_name)
        self._to_boto_request(parameters, operation(action).input_shape)

    def normalise_response(
        self: Any, response: Any, boto_service_name: Any = None, service_action_name: Any = None
    ) -> None:
        action = self._get_boto_service_action(service_action_name)
        self._from_boto_response(response, operation(action).output_shape)

    StateTaskServiceEcs._normalise_parameters = normalise_parameters  # type: ignore[method-assign]
    StateTaskServiceEcs._normalise_response = normalise_response  # type: ignore[method-assign]
