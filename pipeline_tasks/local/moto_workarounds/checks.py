"""``check()``: the moto internals every workaround relies on, verified before any is applied.

Each finding names the workaround (and so the module) to review after a moto upgrade.
"""

from __future__ import annotations

from typing import Any

MOTO_VERSION = "5.2.5"


def check() -> None:
    """Fail loudly when the moto internals the workarounds rely on are not as expected."""
    import moto
    from moto.awslambda.models import LambdaBackend, LambdaFunction
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.ecs.models import Container, Task
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_ecs as ecs_service,
    )

    problems = []
    if moto.__version__ != MOTO_VERSION:
        problems.append(f"moto is {moto.__version__}, the workarounds were written for {MOTO_VERSION}")
    service = ecs_service.StateTaskServiceEcs
    for name in ("_normalise_parameters", "_normalise_response", "_to_boto_request", "_from_boto_response"):
        if not hasattr(service, name):
            problems.append(f"StateTaskServiceEcs.{name} is gone")
    if "_normalise_parameters" in vars(service):
        problems.append("StateTaskServiceEcs now normalises its parameters itself: drop workaround 1")
    for backend in (LambdaBackend, LambdaSimpleBackend):
        if "invoke" not in vars(backend):
            problems.append(f"{backend.__name__}.invoke is gone")
    for cls, attribute in ((Task, "last_status"), (Task, "advance")):
        if not hasattr(cls, attribute):
            problems.append(f"{cls.__name__}.{attribute} is gone")
    if "self.exitCode = 0" not in _source(Container.__init__):
        problems.append("moto's ECS Container no longer reports a fixed exitCode 0")
    function_init = _source(LambdaFunction.__init__)
    for attribute in ("self.role =", "self.handler =", "self.region =", "self.environment_vars ="):
        if attribute not in function_init:
            problems.append(f"moto's LambdaFunction no longer sets {attribute.rstrip(' =')}: review workaround 3")
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface

    if hasattr(NetworkInterface, "private_dns_name"):
        problems.append("moto's NetworkInterface now has private_dns_name: drop workaround 4")
    from botocore.handlers import _quote_source_header
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
        StateTaskServiceAwsSdk,
    )

    if _quote_source_header("b/a%20b?versionId=v") != "b/a%2520b?versionId=v":
        problems.append("boto3 no longer quotes a string CopySource: drop workaround 5")
    if "_normalise_parameters" in vars(StateTaskServiceAwsSdk):
        problems.append("StateTaskServiceAwsSdk now normalises its parameters itself: review workaround 5")
    if "boto_client_for" not in _source(StateTaskServiceAwsSdk._eval_service_task):
        problems.append("moto's aws-sdk task no longer calls the service through a boto3 client: review workaround 5")
    from moto.s3 import notifications

    record = _source(notifications._get_s3_event)
    if "versionId" in record or "sequencer" in record:
        problems.append("moto's S3 event records now carry versionId or a sequencer: review workaround 6")
    if "_get_s3_event(" not in _source(notifications.send_event):
        problems.append("moto's send_event no longer builds its records with _get_s3_event: review workaround 6")
    problems += _iam_problems()
    if problems:
        raise RuntimeError("moto changed under the local stack's workarounds: " + "; ".join(problems))


def _iam_problems() -> list[str]:
    """What ``check()`` verifies for workarounds 7-12."""
    from moto import settings as moto_settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, IAMRequestBase
    from moto.iam.models import AccessKey
    from moto.s3.models import FakeBucket
    from moto.s3.responses import S3Response
    from moto.stepfunctions.parser.asl.utils import boto_client
    from moto.sts.models import STSBackend

    problems = []
    if not hasattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT"):
        problems.append("moto.settings.INITIAL_NO_AUTH_ACTION_COUNT is gone: review workaround 7")
    key_init = _source(AccessKey.__init__)
    if "self.access_key_id =" not in key_init or "self.secret_access_key =" not in key_init:
        problems.append("moto's IAM AccessKey no longer holds access_key_id/secret_access_key: review workaround 7")
    gate = _source(ActionAuthenticatorMixin._authenticate_and_authorize_action)
    for part in ("INITIAL_NO_AUTH_ACTION_COUNT", "PUBLIC_OPERATIONS", "check_signature()", "check_action_permitted("):
        if part not in gate:
            problems.append(f"moto's authorization gate no longer uses {part}: review workaround 10")
    if "self._body or self._data" not in _source(IAMRequestBase._create_aws_request):
        problems.append("moto no longer signs a bodiless request over its parameters: drop workaround 8")
    permitted = _source(IAMRequestBase.check_action_permitted)
    for part in ("collect_policies()", "_is_assuming_role_operation", "_check_role_trust_relationship"):
        if part not in permitted:
            problems.append(f"moto's check_action_permitted no longer uses {part}: review workaround 10")
    if "NotResource" in _source(IAMPolicyStatement):
        problems.append("moto now reads NotResource: review workaround 9")
    if 'policy["policy_document"]' not in _source(IAMPolicy.__init__):
        problems.append("moto's IAMPolicy reads its document otherwise: review workaround 9")
    if "is_action_permitted" not in vars(IAMPolicyStatement):
        problems.append("IAMPolicyStatement.is_action_permitted is gone: review workaround 9")
    delete_keys = _source(S3Response._bucket_response_delete_keys)
    if "bucket.get_permission(" not in delete_keys or '"s3:DeleteObject"' not in delete_keys:
        problems.append(
            "moto's DeleteObjects no longer checks each key with bucket.get_permission: review workaround 10"
        )
    if "get_permission" not in vars(FakeBucket):
        problems.append("FakeBucket.get_permission is gone: review workaround 10")
    if "return 404, response_headers" not in _source(S3Response.head_object):
        problems.append("moto's HeadObject no longer answers a missing key with 404: review workaround 11")
    if "_key_response" not in vars(S3Response):
        problems.append("S3Response._key_response is gone: review workaround 11")
    client_source = _source(boto_client.boto_client_for)
    if 'aws_access_key_id="ak"' not in client_source or "state_credentials" not in client_source:
        problems.append(
            "moto's Step Functions no longer calls services with the fixed keys ak/sk: review workaround 12"
        )
    import inspect

    wanted = ["self", "region_name", "role_session_name", "role_arn", "policy", "duration", "external_id"]
    if list(inspect.signature(STSBackend.assume_role).parameters) != wanted:
        problems.append("moto's STSBackend.assume_role has another signature: review workaround 12")
    return problems


def _source(function: Any) -> str:
    import inspect

    return inspect.getsource(function)
