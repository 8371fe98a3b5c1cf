"""Every change the local stack makes to moto 5.2.5, in one place, each with the reason.

They are applied inside the moto server process (``pipeline_tasks.local.emulator``)
before it serves a request; nothing here runs on AWS. ``check()`` verifies the moto
internals they rely on and fails loudly when an upgrade moved them.

1. **ECS service integration casing.** Step Functions passes ``ecs:runTask``
   parameters in PascalCase (``Cluster``, ``Overrides.ContainerOverrides``) and
   returns the task in PascalCase (``Containers[0].ExitCode``). moto's interpreter
   leaves both unconverted for ECS, so ``runTask.sync`` fails before the task starts
   and its result has no ``Tasks``. We convert with the operation's botocore shapes,
   as Step Functions does.
2. **ECS tasks that really run.** moto creates a task and reports it STOPPED with
   exit code 0 without running anything. Tasks are frozen in RUNNING (moto's state
   manager: ``ecs::task``, progression ``manual``), and ``EcsAgent`` runs each new
   task's container command as a local process, then records the real exit code and
   stops the task — so the state machine sees what a Fargate task would report. The
   process gets what a Fargate container gets: the temporary credentials of the task
   role (the task definition's ``taskRoleArn``, or the override's; minted as in 12;
   none without a task role), ``AWS_REGION`` and ``AWS_DEFAULT_REGION`` of the task and
   ``AWS_ENDPOINT_URL`` at this server, then the task definition's and the override's
   environment (a variable the container sets wins, as an SDK prefers environment
   credentials to the container's role). This server's own ``AWS_ACCESS_KEY_ID``,
   ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN`` and ``AWS_PROFILE`` are not inherited.
3. **Lambda functions that really run.** Without Docker moto's ``Invoke`` returns a
   canned payload. A function whose environment names ``PIPELINE_HANDLER``
   (``module:function``), or whose ``Handler`` is in ``pipeline_tasks``
   (``pipeline_tasks.handlers.orchestrator.handler`` calls that module's
   ``handle(event, settings)``), is served by calling that function in this process
   with the Settings of the function's environment plus what Lambda's runtime adds:
   the temporary credentials of the function's role (minted as in 12; a function's
   configuration cannot set these reserved variables), the function's region, and
   this server as the endpoint. An exception becomes a function error
   (``X-Amz-Function-Error: Unhandled`` and the error payload), as on AWS.
4. **awsvpc tasks.** Running a task of an ``awsvpc`` task definition (what Fargate
   requires) fails in moto: its network interface has no ``private_dns_name``. The
   interface gets one, derived from its private IP as EC2 names them.
5. **S3 CopySource as AWS takes it.** The S3 API takes ``CopyObject``'s ``CopySource``
   URL-encoded (``bucket/input/orders%202025.csv?versionId=…``), and Step Functions'
   ``aws-sdk:s3:copyObject`` passes the parameter as given, so the state machine
   encodes it. moto's interpreter calls S3 through boto3, which quotes a string
   ``CopySource`` again (``%20`` becomes ``%2520``): any key with a space, ``+``, ``%``
   or a non-ASCII character would not be found. The interpreter's ``aws-sdk`` task
   decodes a string ``CopySource`` of ``s3:copyObject`` into boto3's dict form
   (``{Bucket, Key, VersionId}``), which boto3 encodes once — as AWS receives it.
   A source that is not validly encoded (a raw space, ``#`` or non-ASCII character)
   fails the task (an ``InvalidArgument`` error) instead of being quoted by
   boto3: the local stack forgives no more than AWS.
6. **S3 event records that name the version.** An S3 event record carries the
   version it created (``s3.object.versionId``, in a versioned bucket) and a
   ``sequencer`` that orders the events of one key; moto's records carry neither, so
   the orchestrator would pin every file by HeadObject instead of by its event. The
   records get both: the key's version id, and a hexadecimal sequencer that grows
   with every event this server sends.

IAM (7-12): the local stack is no more forgiving than AWS about permissions when
the emulator runs with ``PIPELINE_LOCAL_IAM=enforce``; 2, 3 and 12 give every actor
its role's credentials either way.

7. **Opt-in IAM enforcement.** moto authorizes nothing unless its
   ``INITIAL_NO_AUTH_ACTION_COUNT`` is set, and then accepts only credentials that an
   IAM user or an assumed role owns. With ``PIPELINE_LOCAL_IAM=enforce`` the IAM user
   ``local-admin`` (an inline ``Allow *:*`` policy) owns the access key the local
   stack's clients sign with (``testing``/``testing``, the deployer's), and every
   request from the first on is authenticated (its SigV4 signature) and authorized
   (the caller's identity policies, as 9 and 10 evaluate them). Without the variable
   nothing is checked (moto's default).
8. **Signatures of requests without a body.** moto signs a request with an empty body
   over its parsed parameters instead of an empty payload, so a GET of a REST API
   (Lambda's ``GetFunction``, ``ListFunctions``) fails with ``SignatureDoesNotMatch``.
   Such a request (unless a form moto has parsed) is checked over an empty payload, as SigV4 defines it
   (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html).
9. **Policies read as IAM reads them.** moto matches ``Action`` and ``Resource`` as
   case-sensitive regular expressions (``.`` matches any character, ``?`` is a
   quantifier), ignores ``NotResource`` (such a statement grants its actions on every
   resource), turns an ``Allow`` whose condition fails into an explicit deny, evaluates
   ``StringEquals`` only (a ``Deny`` with any other operator always applies) and fails
   on a trust policy's ``Service`` principal and on an inline policy that CloudFormation
   created (a document held as data, not JSON text). Statements are evaluated as the IAM policy
   reference defines them (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html):
   action names case-insensitive, ``*`` and ``?`` wildcards, ``Resource`` and
   ``NotResource``, ``Principal`` and ``NotPrincipal`` (an AWS principal matches its ARN,
   its account, or an assumed role's sessions), and conditions with the ``String*``,
   ``Arn*``, ``Bool`` and ``Null`` operators, ``…IfExists`` and ``ForAnyValue:`` /
   ``ForAllValues:`` (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
   The request context knows two keys: ``aws:SecureTransport`` is true (this server's
   plain HTTP on 127.0.0.1 stands in for AWS's TLS) and ``sts:ExternalId`` (AssumeRole).
   A condition on any other key or with another operator cannot be evaluated here: its
   ``Allow`` grants nothing and its ``Deny`` denies — never more forgiving than AWS.
10. **The actions and resources AWS authorizes.** moto authorizes some S3 requests by
    another action than AWS (HeadBucket as ``s3:HeadBucket``, HeadObject of a version
    as ``s3:GetObject``, DeleteObjects as ``s3:DeleteObject`` on the bucket, CopyObject
    without reading its source), Lambda's Invoke as ``lambda:Invoke``, and every service
    but S3, SQS, IAM and STS against the resource ``*``, which no statement scoped to an
    ARN matches. Each request is authorized for what AWS documents:

    - S3 (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html):
      ListObjects(V2) and HeadBucket ``s3:ListBucket``, ListObjectVersions
      ``s3:ListBucketVersions``, ListMultipartUploads ``s3:ListBucketMultipartUploads``
      on the bucket; GetObject and HeadObject ``s3:GetObject``, or
      ``s3:GetObjectVersion`` alone when a ``versionId`` is given
      (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html); PutObject,
      CreateMultipartUpload, UploadPart and CompleteMultipartUpload ``s3:PutObject``;
      ListParts ``s3:ListMultipartUploadParts``; AbortMultipartUpload
      ``s3:AbortMultipartUpload``; DeleteObject ``s3:DeleteObject`` or
      ``s3:DeleteObjectVersion``; DeleteObjects the same for each key, a key denied
      being an ``AccessDenied`` entry of the answer; CopyObject and UploadPartCopy
      ``s3:PutObject`` on the destination and ``s3:GetObject`` (``s3:GetObjectVersion``
      with a ``versionId``) on the source
      (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html); object
      tagging and ACLs by their version actions when a version is named; the bucket
      configuration subresources (versioning, notification, lifecycle, policy,
      encryption, public access block, ownership controls, CORS, tagging, location,
      ACL) by their own actions (``s3:PutBucketNotification``,
      ``s3:PutLifecycleConfiguration``, ``s3:PutEncryptionConfiguration`` …).
    - DynamoDB: the table's ARN (``TableName``, a name or an ARN), the index's
      (``table/T/index/I``) for a Query or Scan with ``IndexName``, each table of
      ``RequestItems`` for BatchGetItem/BatchWriteItem, and each item's table and
      action (``dynamodb:PutItem`` …) for TransactWriteItems/TransactGetItems
      (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/api-permissions-reference.html).
    - SNS: the topic (``TopicArn``, a topic ``TargetArn``, CreateTopic's ``Name``, a
      subscription's topic); PublishBatch as ``sns:Publish``.
    - SQS: moto's queue ARN, and the queue of ``QueueName`` for GetQueueUrl and CreateQueue;
      a batch as its single action (DeleteMessageBatch as ``sqs:DeleteMessage`` …;
      https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-batch-api.html).
    - Lambda: the function's ARN from the path, qualified when a version or alias is
      given (https://docs.aws.amazon.com/lambda/latest/dg/lambda-api-permissions-ref.html);
      Invoke and InvokeWithResponseStream as ``lambda:InvokeFunction``.
    - Step Functions: ``stateMachineArn`` (StartExecution, ListExecutions, Describe/Update/
      DeleteStateMachine …), ``executionArn`` (DescribeExecution, StopExecution,
      GetExecutionHistory …), CreateStateMachine's ``name``.
    - ECS: RunTask and StartTask the task definition's ARN (a family or
      ``family:revision`` resolved), DescribeTasks and StopTask each task's ARN,
      DescribeClusters each cluster's.
    - ``iam:PassRole`` on the roles a request hands to a service: the task definition's
      and the override's task and execution roles for RunTask
      (https://docs.aws.amazon.com/step-functions/latest/dg/ecs-iam.html), the roles of
      RegisterTaskDefinition, CreateFunction/UpdateFunctionConfiguration and
      CreateStateMachine/UpdateStateMachine.
    - IAM and STS as moto resolves them (a role's ARN; AssumeRole also checks the role's
      trust policy), and a user's ARN for requests naming ``UserName``.

    Other requests (EC2, CloudFormation, CloudWatch, Logs, KMS, ListTables,
    ListStateMachines, DescribeTaskDefinition …) are matched on their action alone: a
    statement allowing the action on any resource applies. A denial is AWS's: the
    service's error code (``AccessDeniedException`` for the JSON APIs, ``AccessDenied``
    for S3, SQS, IAM and STS, ``AuthorizationError`` for SNS, ``UnauthorizedOperation``
    for EC2) and the message ``User: ARN is not authorized to perform: ACTION on
    resource: ARN because no identity-based policy allows the ACTION action`` (or ``with
    an explicit deny in an identity-based policy``;
    https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html).
11. **A missing object is 403 without s3:ListBucket.** GetObject and HeadObject of a
    key or version that does not exist answer 404 only to a caller allowed
    ``s3:ListBucket`` on the bucket; to others 403 ``AccessDenied``
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html). moto
    answers 404 to everyone; under enforcement the answer depends on the permission.
12. **Services act with their roles' credentials.** moto's Step Functions interpreter
    calls every service with the fixed keys ``ak``/``sk``, which no policy knows. Its
    clients sign with temporary credentials of the role the task runs under (the state
    machine's ``roleArn``, or a task's ``Credentials.RoleArn``), in every state, Map
    iteration and ``.sync`` poll. Credentials (for the state machine, the Lambda
    functions of 3 and the ECS tasks of 2) are minted in this process with moto's STS
    backend, as the service's AssumeRole would, and cached per role and session.
    Under enforcement the role must exist and trust the service's principal
    (``states``, ``lambda`` or ``ecs-tasks.amazonaws.com``), as those services require:
    CreateStateMachine answers ``AccessDeniedException`` and CreateFunction
    ``InvalidParameterValueException`` otherwise (AWS's answers), and a task whose task
    role does not trust ECS stops without running, with ECS's reason.

What the local stack still does not evaluate (AWS does): resource-based policies
(bucket policies beyond moto's own explicit-deny check of object requests, queue,
topic and key policies, a function's permissions), permission boundaries, session
policies, service control policies, policy variables (``${aws:username}``), condition
keys other than the two above, KMS permissions behind encryption (an SNS topic's or an
object's key), ``iam:PassRole`` other than listed in 10, ``sts:AssumeRole`` by the
execution role for a task's ``Credentials``, credentials' expiry, the task execution
role (no image is pulled, no log is shipped), what services do behind the scenes with
the roles (X-Ray traces and log delivery of a state machine, the EventBridge rule of
``.sync``, a function's or task's log writes: moto makes none of these calls), and
requests by principals other than IAM users and assumed roles. Under enforcement a
presigned URL fails with a server error (moto's check wants an ``Authorization`` header).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

log = logging.getLogger(__name__)

MOTO_VERSION = "5.2.5"
HANDLER_VARIABLE = "PIPELINE_HANDLER"
#: Ticks an ECS task would need to leave RUNNING by itself: never.
_FROZEN = 10**9

#: The IAM user that owns the local stack's credentials under enforcement (7).
ADMIN_USER = "local-admin"
#: The credentials the local stack's clients sign with (``pipeline_tasks.local.stack``); never real ones.
ADMIN_KEY_ID = "testing"
ADMIN_SECRET = "testing"
_ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
#: Role session of the state machine's calls (12); Lambda's is the function name, ECS's the task id.
STATES_SESSION = "states-execution"
#: What the emulator's plain HTTP on 127.0.0.1 stands in for: AWS's TLS endpoints (9).
_CONTEXT = {"aws:SecureTransport": "true"}
#: Keys a request may lack, so their absence is known (9); any other absent key is unknown here.
_MAY_BE_ABSENT = frozenset({"sts:externalid"})
#: The variables of this server process that a task must not inherit (2): its credentials are its role's.
_SERVER_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
#: Verdicts of an authorization (10).
ALLOWED, IMPLICIT_DENY, EXPLICIT_DENY = "allowed", "implicit deny", "explicit deny"
#: Error codes of a denial by service (signing name), and the services that answer in JSON (10).
_DENIAL_CODES = {
    "dynamodb": "AccessDeniedException",
    "states": "AccessDeniedException",
    "ecs": "AccessDeniedException",
    "lambda": "AccessDeniedException",
    "logs": "AccessDeniedException",
    "kms": "AccessDeniedException",
    "events": "AccessDeniedException",
    "ecr": "AccessDeniedException",
    "scheduler": "AccessDeniedException",
    "sqs": "AccessDenied",
    "sns": "AuthorizationError",
    "ec2": "UnauthorizedOperation",
}
_JSON_SERVICES = frozenset({"dynamodb", "states", "ecs", "lambda", "logs", "kms", "events", "ecr", "scheduler", "sqs"})


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


def apply(*, workdir: Path, log_dir: Path, endpoint: str, enforce_iam: bool = False) -> EcsAgent:
    """Apply the workarounds; return the (started) ECS agent.

    Args:
        workdir: Where task commands run.
        log_dir: Where their output goes.
        endpoint: This server's URL, given to the functions and tasks (``http://127.0.0.1:PORT``).
        enforce_iam: Authenticate and authorize every request (7).
    """
    check()
    roles = RoleSessions(check_trust=enforce_iam)
    _decode_copy_sources()
    _name_versions_in_s3_events()
    _name_network_interfaces()
    _normalise_ecs_integration()
    _serve_lambda_handlers(roles, endpoint)
    _freeze_ecs_tasks()
    _sign_bodiless_requests()
    _read_policies_as_iam()
    _authorize_as_aws(roles)
    _answer_missing_keys_as_aws()
    _call_services_as_the_state_machine(roles)
    if enforce_iam:
        _enforce_iam()
    agent = EcsAgent(workdir=workdir, log_dir=log_dir, endpoint=endpoint, roles=roles)
    agent.start()
    return agent


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


def handler_function(target: str | None, handler: str | None) -> Callable[..., Any] | None:
    """The function that serves a Lambda function (3); None when it is not ours.

    Args:
        target: ``PIPELINE_HANDLER`` of its environment (``module:function``), if any.
        handler: Its ``Handler`` property: ``pipeline_tasks.handlers.orchestrator.handler`` is
            served by that module's ``handle(event, settings)``.
    """
    if target:
        module_name, function_name = target.split(":")
        return getattr(importlib.import_module(module_name), function_name)  # type: ignore[no-any-return]
    if handler and handler.startswith("pipeline_tasks.") and "." in handler:
        module = importlib.import_module(handler.rsplit(".", 1)[0])
        return getattr(module, "handle", None)
    return None


def _serve_lambda_handlers(roles: RoleSessions, endpoint: str) -> None:
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.awslambda.models import LambdaBackend
    from moto.awslambda_simple.models import LambdaSimpleBackend

    from pipeline_tasks.settings import Settings

    def serve(original: Any) -> Any:
        def invoke(
            self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
        ) -> str | bytes | None:
            function = self.get_function(function_name, qualifier)
            variables = dict(function.environment_vars or {})
            handle = handler_function(variables.get(HANDLER_VARIABLE), function.handler)
            if handle is None:
                return original(self, function_name, qualifier, body, headers, response_headers)  # type: ignore[no-any-return]
            try:
                credentials = roles.credentials(
                    function.role, function.function_name, "lambda.amazonaws.com", function.region
                )
            except RoleNotAssumableError as error:
                raise InvalidParameterValueException(str(error)) from None
            # What Lambda's runtime sets (reserved: the function's configuration cannot).
            settings = Settings.from_env(
                variables,
                aws_endpoint_url=endpoint,
                aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key,
                aws_session_token=credentials.session_token,
                region=function.region,
            )
            event = json.loads(body) if body else {}
            try:
                result = handle(event, settings)
            except Exception as error:  # reported to the caller as a function error, as Lambda does
                log.exception("lambda %s failed", function_name)
                response_headers["x-amz-function-error"] = "Unhandled"
                result = {"errorType": type(error).__name__, "errorMessage": str(error)}
            return json.dumps(result, default=str).encode()

        return invoke

    # Without Docker, moto serves Lambda from LambdaSimpleBackend (an echo); patch both.
    for backend in (LambdaBackend, LambdaSimpleBackend):
        backend.invoke = serve(backend.invoke)  # type: ignore[method-assign]


def _freeze_ecs_tasks() -> None:
    from moto.moto_api import state_manager

    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": _FROZEN})


def task_environment(
    inherited: Mapping[str, str],
    *,
    region: str,
    endpoint: str,
    credentials: RoleCredentials | None,
    container: Iterable[Mapping[str, str]],
    override: Iterable[Mapping[str, str]],
) -> dict[str, str]:
    """The environment of a task's container process (2), as Fargate composes it.

    This process's variables without its credentials; the task role's credentials (none
    without a role), the task's region and this server as the endpoint; then the task
    definition's and the override's ``{name, value}`` pairs, which win.
    """
    env = {name: value for name, value in inherited.items() if name not in _SERVER_CREDENTIALS}
    env.update({"AWS_REGION": region, "AWS_DEFAULT_REGION": region, "AWS_ENDPOINT_URL": endpoint})
    if credentials is not None:
        env.update(
            {
                "AWS_ACCESS_KEY_ID": credentials.access_key_id,
                "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
                "AWS_SESSION_TOKEN": credentials.session_token,
            }
        )
    env.update({e["name"]: e["value"] for e in container})
    env.update({e["name"]: e["value"] for e in override})
    return env


class EcsAgent(threading.Thread):
    """Runs the container command of every new ECS task as a local process, then stops the task."""

    def __init__(
        self, *, workdir: Path, log_dir: Path, endpoint: str, roles: RoleSessions, interval: float = 0.2
    ) -> None:
        super().__init__(name="local-ecs-agent", daemon=True)
        self.workdir = workdir
        self.log_dir = log_dir
        self.endpoint = endpoint
        self.roles = roles
        self.interval = interval
        self.seen: set[str] = set()

    def run(self) -> None:
        from moto.ecs.models import ecs_backends

        while True:
            try:
                for _account, regions in list(ecs_backends.items()):
                    for _region, backend in list(regions.items()):
                        for cluster_tasks in list(backend.tasks.values()):
                            for task in list(cluster_tasks.values()):
                                if task.task_arn not in self.seen and task.last_status == "RUNNING":
                                    self.seen.add(task.task_arn)
                                    threading.Thread(target=self._run_task, args=(backend, task), daemon=True).start()
            except Exception:  # the agent must outlive one bad poll
                log.exception("local ECS agent poll failed")
            time.sleep(self.interval)

    def _run_task(self, backend: Any, task: Any) -> None:
        definition = backend.describe_task_definition(task.task_definition_arn)
        container = definition.container_definitions[0]
        override: dict[str, Any] = next(
            (o for o in task.overrides.get("containerOverrides", []) if o.get("name") == container["name"]), {}
        )
        command = override.get("command") or container.get("command") or []
        role = task.overrides.get("taskRoleArn") or getattr(definition, "task_role_arn", None)
        try:
            credentials = (
                self.roles.credentials(role, task.id, "ecs-tasks.amazonaws.com", task.region_name) if role else None
            )
        except RoleNotAssumableError:
            # What ECS reports when the task role's trust policy does not name ecs-tasks.amazonaws.com.
            self._stop(
                task,
                None,
                f"ECS was unable to assume the role '{role}' that was provided for this task. Please verify that "
                "the role being passed has the proper trust relationship and permissions and that your IAM user "
                "has permissions to pass this role.",
            )
            return
        env = task_environment(
            os.environ,
            region=task.region_name,
            endpoint=self.endpoint,
            credentials=credentials,
            container=container.get("environment", []),
            override=override.get("environment", []),
        )
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{container['name']}-{task.id}.log"
        with log_path.open("wb") as output:
            output.write(f"$ {' '.join(command)}\n".encode())
            output.flush()
            try:
                code = subprocess.run(
                    command, env=env, cwd=self.workdir, stdout=output, stderr=subprocess.STDOUT
                ).returncode
            except OSError as error:
                output.write(f"cannot start the container command: {error}\n".encode())
                code = 127
        self._stop(task, code, f"Essential container in task exited (exit code {code}; log {log_path})")
        log.info("task %s (%s) exited with %d", task.id, container["name"], code)

    @staticmethod
    def _stop(task: Any, code: int | None, reason: str) -> None:
        for moto_container in task.containers:
            moto_container.exitCode = code
            moto_container.last_status = "STOPPED"
        task.stopped_reason = reason
        task.desired_status = "STOPPED"
        task.last_status = "STOPPED"


# ---------------------------------------------------------------- IAM: 7 and 8


def _enforce_iam() -> None:
    from moto import settings as moto_settings
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    backend = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_user(region_name="us-east-1", user_name=ADMIN_USER)
    backend.put_user_policy(ADMIN_USER, "allow-all", json.dumps(_ALLOW_ALL))
    key = backend.create_access_key(ADMIN_USER)
    # moto generates the key's id and secret; the local stack's clients sign with the fixed ones.
    del backend.access_keys[key.physical_resource_id]
    key.access_key_id, key.secret_access_key = ADMIN_KEY_ID, ADMIN_SECRET
    backend.access_keys[key.physical_resource_id] = key
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # type: ignore[assignment]
    log.info("IAM enforced: %s signs as the IAM user %s", ADMIN_KEY_ID, ADMIN_USER)


def _sign_bodiless_requests() -> None:
    from moto.iam.access_control import IAMRequestBase

    original = IAMRequestBase._create_aws_request

    def create_aws_request(self: Any) -> Any:
        request = original(self)
        # moto's parameters stand for a form body it has parsed away; any other empty body is empty.
        form = str(self._headers.get("Content-Type", "")).startswith("application/x-www-form-urlencoded")
        if not self._body and not form:
            request.data = b""  # SigV4 hashes the payload sent: none
        return request

    IAMRequestBase._create_aws_request = create_aws_request  # type: ignore[method-assign]


# ---------------------------------------------------------------- IAM: 9, policies read as IAM reads them


def glob_matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcards: ``*`` any run of characters, ``?`` any one character, the rest literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def _listed(element: Any) -> list[Any]:
    return element if isinstance(element, list) else [element]


def statement_effect(
    statement: Mapping[str, Any],
    action: str,
    resource: str,
    principal: str | None = None,
    context: Mapping[str, str] | None = None,
) -> str | None:
    """What one policy statement says of a request: ``"Allow"``, ``"Deny"``, or None when it does not apply.

    Args:
        statement: The statement (``Effect``, ``Action``/``NotAction``, ``Resource``/``NotResource``,
            ``Principal``/``NotPrincipal``, ``Condition``).
        action: ``service:Operation``; matched case-insensitively.
        resource: The resource's ARN; ``*`` when it is not known (the statement's resource then
            does not matter: the request is matched on its action alone).
        principal: The caller (an ARN, or a service principal such as ``states.amazonaws.com``)
            when a trust or resource policy is read; None for an identity policy.
        context: The request's condition keys.
    """
    if "Action" in statement:
        if not any(glob_matches(p, action, ignore_case=True) for p in _listed(statement["Action"])):
            return None
    elif not (
        "NotAction" in statement
        and not any(glob_matches(p, action, ignore_case=True) for p in _listed(statement["NotAction"]))
    ):
        return None
    if not _principal_applies(statement, principal):
        return None
    if resource != "*":
        if "Resource" in statement and not any(glob_matches(p, resource) for p in _listed(statement["Resource"])):
            return None
        if "NotResource" in statement and any(glob_matches(p, resource) for p in _listed(statement["NotResource"])):
            return None
    holds = condition_holds(statement.get("Condition") or {}, context or {})
    if statement.get("Effect") == "Allow":
        return "Allow" if holds is True else None
    if statement.get("Effect") == "Deny":
        return "Deny" if holds is not False else None  # a condition we cannot evaluate denies
    return None


def _principal_applies(statement: Mapping[str, Any], principal: str | None) -> bool:
    if "Principal" not in statement and "NotPrincipal" not in statement:
        return True  # an identity policy's statement
    if principal is None:
        # A resource policy read without its caller (moto's own bucket-policy checks): as moto reads it.
        element = statement.get("Principal", statement.get("NotPrincipal"))
        return not (isinstance(element, str) and element != "*")
    if "Principal" in statement:
        return principal_matches(statement["Principal"], principal)
    return not principal_matches(statement["NotPrincipal"], principal)


def principal_matches(element: Any, principal: str) -> bool:
    """Whether a ``Principal`` element names the caller.

    An AWS principal names a caller by its ARN, its account (``123456789012`` or
    ``arn:aws:iam::123456789012:root``) or, for an assumed role's session, the role's ARN;
    a ``Service`` principal names a service (``lambda.amazonaws.com``).
    """
    if element == "*":
        return True
    if not isinstance(element, Mapping):
        return False
    if not principal.startswith("arn:"):
        return principal in _listed(element.get("Service", []))
    caller = principal.split(":")
    account = caller[4] if len(caller) > 5 else ""
    session = re.fullmatch(r"arn:[^:]+:sts::(\d{12}):assumed-role/([^/]+)/.+", principal)
    for name in _listed(element.get("AWS", [])):
        if name in ("*", principal, account) or re.fullmatch(rf"arn:[^:]+:iam::{account}:root", name):
            return True
        role = re.fullmatch(r"arn:[^:]+:iam::(\d{12}):role/(?:.*/)?([^/]+)", name)
        if session and role and role.groups() == session.groups():
            return True
    return False


_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    # name: (does the policy's value match the request's, is the operator negated)
    "StringEquals": (lambda expected, value: expected == value, False),
    "StringNotEquals": (lambda expected, value: expected == value, True),
    "StringEqualsIgnoreCase": (lambda expected, value: expected.lower() == value.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda expected, value: expected.lower() == value.lower(), True),
    "StringLike": (lambda expected, value: glob_matches(expected, value), False),
    "StringNotLike": (lambda expected, value: glob_matches(expected, value), True),
    "ArnEquals": (lambda expected, value: glob_matches(expected, value), False),
    "ArnLike": (lambda expected, value: glob_matches(expected, value), False),
    "ArnNotEquals": (lambda expected, value: glob_matches(expected, value), True),
    "ArnNotLike": (lambda expected, value: glob_matches(expected, value), True),
    "Bool": (lambda expected, value: expected.lower() == value.lower(), False),
}


def condition_holds(conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool | None:
    """Whether a statement's ``Condition`` holds: True, False, or None when it cannot be evaluated here.

    Every operator and every key must hold; a key's values are alternatives. A key absent
    from ``context`` is known to be absent only when a request may lack it (``sts:ExternalId``).
    """
    known = {key.lower(): value for key, value in context.items()}
    result: bool | None = True
    for operator, tests in conditions.items():
        for key, expected in tests.items():
            outcome = _condition(operator, key.lower(), [str(e) for e in _listed(expected)], known)
            if outcome is False:
                return False
            if outcome is None:
                result = None
    return result


def _condition(operator: str, key: str, expected: list[str], context: Mapping[str, str]) -> bool | None:
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    if qualifier not in ("", "ForAnyValue", "ForAllValues"):
        return None
    if key not in context and key not in _MAY_BE_ABSENT:
        return None  # a key this local stack does not know
    if name == "Null":  # "true": the key must be absent
        return any((e.lower() == "true") == (key not in context) for e in expected)
    if name not in _OPERATORS:
        return None
    test, negated = _OPERATORS[name]
    if key not in context:
        # IAM: an absent key matches no value; a negated operator, IfExists and ForAllValues then hold.
        return negated or if_exists or qualifier == "ForAllValues"
    matched = any(test(e, context[key]) for e in expected)
    return not matched if negated else matched


def policy_document(document: Any) -> dict[str, Any]:
    """A policy as data, whether moto holds it as a dict, JSON or URL-encoded JSON."""
    if isinstance(document, Mapping):
        return dict(document)
    text = str(document)
    try:
        return dict(json.loads(text))
    except json.JSONDecodeError:
        return dict(json.loads(unquote(text)))


def _read_policies_as_iam() -> None:
    from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult

    original_init = IAMPolicy.__init__

    def init(self: Any, policy: Any) -> None:
        # moto reads JSON text, a managed policy or a dict holding "policy_document"; a
        # CloudFormation role's inline policy is the document itself (a dict).
        if isinstance(policy, (str, Mapping)) and not (isinstance(policy, Mapping) and "policy_document" in policy):
            policy = json.dumps(policy_document(policy))
        original_init(self, policy)

    IAMPolicy.__init__ = init  # type: ignore[method-assign]

    results = {"Allow": PermissionResult.PERMITTED, "Deny": PermissionResult.DENIED, None: PermissionResult.NEUTRAL}

    def is_action_permitted(
        self: Any,
        action: str,
        resource: str = "*",
        principal: str | None = None,
        incoming_condition_values: dict[str, str] | None = None,
    ) -> Any:
        context = _CONTEXT | dict(incoming_condition_values or {})
        return results[statement_effect(self._statement, action, resource, principal, context)]

    IAMPolicyStatement.is_action_permitted = is_action_permitted  # type: ignore[method-assign]


# ---------------------------------------------------------------- IAM: 10, the actions and resources AWS authorizes


def authorization_verdict(iam_request: Any, action: str, resource: str) -> str:
    """``ALLOWED``, ``IMPLICIT_DENY`` or ``EXPLICIT_DENY`` for the caller of a moto IAM request.

    As moto's ``check_action_permitted`` decides (its caller's policies, and an AssumeRole's
    trust policy), for an action and resource of our choosing.
    """
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if action == "sts:GetCallerIdentity":  # needs no permission
        return ALLOWED
    iam_request._action = action  # what moto's trust check reads
    permitted = False
    for policy in iam_request._access_key.collect_policies():
        result = IAMPolicy(policy).is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return EXPLICIT_DENY
        permitted = permitted or result == PermissionResult.PERMITTED
    if permitted and iam_request._is_assuming_role_operation(resource):
        permitted = iam_request._check_role_trust_relationship(resource)
    return ALLOWED if permitted else IMPLICIT_DENY


def denial_message(caller: str, action: str, resource: str, verdict: str) -> str:
    """AWS's AccessDenied message (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html)."""
    on = f" on resource: {resource}" if resource != "*" else ""
    why = (
        "with an explicit deny in an identity-based policy"
        if verdict == EXPLICIT_DENY
        else f"because no identity-based policy allows the {action} action"
    )
    return f"User: {caller} is not authorized to perform: {action}{on} {why}"


def _denial(service: str, message: str) -> Exception:
    """The error a service answers a denied request with (its protocol's form, status 403)."""
    from moto.core.exceptions import AccessDeniedError, JsonRESTError
    from moto.s3.exceptions import S3AccessDeniedError

    if service == "s3":
        error: Any = S3AccessDeniedError()
        error.message = message
        error.args = (message,)
        return error  # type: ignore[no-any-return]
    code = _DENIAL_CODES.get(service, "AccessDenied")
    if service in _JSON_SERVICES:
        error = JsonRESTError(code, message)
        error.code = 403
        return error  # type: ignore[no-any-return]
    from xml.sax.saxutils import escape

    error = AccessDeniedError(user_arn="", action="")  # an HTTP 403 that moto's services answer with
    error.error_type, error.message = code, message
    # The query protocol's error document, with the RequestId a client reads (moto fills it in).
    error.description = (
        f"<?xml version='1.0' encoding='utf-8'?>\n<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
        f"<Message>{escape(message)}</Message></Error><RequestId>-</RequestId></ErrorResponse>"
    )
    return error  # type: ignore[no-any-return]


@dataclass(frozen=True)
class RequestFacts:
    """What the resolvers need to name a request's resources."""

    service: str
    operation: str
    region: str
    account: str
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    params: Mapping[str, Any]

    @property
    def partition(self) -> str:
        return (
            "aws-cn" if self.region.startswith("cn-") else "aws-us-gov" if self.region.startswith("us-gov-") else "aws"
        )

    def param(self, name: str) -> Any:
        if name in self.params:
            return self.params[name]
        values = self.query.get(name)
        return values[0] if values else None

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"


def _request_facts(response: Any, iam_request: Any) -> RequestFacts:
    parsed = urlparse(response.uri)
    params: dict[str, Any] = {}
    automated = getattr(response, "params", None)
    if isinstance(automated, Mapping):
        params.update(automated)
    if not params and iam_request._service in _JSON_SERVICES and response.raw_body:
        try:
            body = json.loads(response.raw_body)
            params = body if isinstance(body, dict) else {}
        except (ValueError, UnicodeDecodeError):
            params = {}
    query = parse_qs(parsed.query, keep_blank_values=True)
    for name, values in (getattr(response, "querystring", None) or {}).items():
        query.setdefault(name, values if isinstance(values, list) else [values])
    return RequestFacts(
        service=iam_request._service,
        operation=iam_request._action.split(":", 1)[1],
        region=iam_request._region,
        account=response.current_account,
        method=response.method,
        path=unquote(parsed.path),
        query=query,
        headers=response.headers,
        params=params,
    )


def s3_permissions(facts: RequestFacts, resource: str) -> list[tuple[str, str]]:
    """The S3 actions a request needs, on which resources (``resource``: moto's bucket or object ARN)."""
    query = facts.query
    versioned = "versionId" in query
    target = resource.split(":::", 1)[1]
    if target == "*":
        return [("s3:ListAllMyBuckets", "*")]
    key = target.partition("/")[2]
    if not key:
        if facts.method == "POST" and "delete" in query:
            return []  # DeleteObjects: each key is authorized on its own (the bucket's get_permission)
        bucket_actions = _S3_BUCKET_ACTIONS.get(facts.method, {})
        action = next((a for q, a in bucket_actions.items() if q in query), bucket_actions.get("", facts.operation))
        return [(f"s3:{action}", resource)]
    object_actions = _S3_OBJECT_ACTIONS.get(facts.method, {})
    plain, version = next(
        (a for q, a in object_actions.items() if q in query), object_actions.get("", (facts.operation, None))
    )
    needed = [(f"s3:{version if versioned and version else plain}", resource)]
    source = facts.headers.get("x-amz-copy-source")
    if facts.method == "PUT" and source and not ({"tagging", "acl"} & set(query)):
        path, _, source_query = unquote(source).lstrip("/").partition("?")
        source_version = "versionId=" in source_query
        needed.append(
            (
                "s3:GetObjectVersion" if source_version else "s3:GetObject",
                f"arn:{facts.partition}:s3:::{path}",
            )
        )
    return needed


#: Bucket requests: the query parameter that names the subresource, and the IAM action.
_S3_BUCKET_ACTIONS: dict[str, dict[str, str]] = {
    "HEAD": {"": "ListBucket"},
    "GET": {
        "versions": "ListBucketVersions",
        "uploads": "ListBucketMultipartUploads",
        "location": "GetBucketLocation",
        "versioning": "GetBucketVersioning",
        "notification": "GetBucketNotification",
        "lifecycle": "GetLifecycleConfiguration",
        "policy": "GetBucketPolicy",
        "policyStatus": "GetBucketPolicyStatus",
        "encryption": "GetEncryptionConfiguration",
        "publicAccessBlock": "GetBucketPublicAccessBlock",
        "ownershipControls": "GetBucketOwnershipControls",
        "object-lock": "GetBucketObjectLockConfiguration",
        "tagging": "GetBucketTagging",
        "cors": "GetBucketCORS",
        "acl": "GetBucketAcl",
        "logging": "GetBucketLogging",
        "website": "GetBucketWebsite",
        "accelerate": "GetAccelerateConfiguration",
        "replication": "GetReplicationConfiguration",
        "": "ListBucket",
    },
    "PUT": {
        "versioning": "PutBucketVersioning",
        "notification": "PutBucketNotification",
        "lifecycle": "PutLifecycleConfiguration",
        "policy": "PutBucketPolicy",
        "encryption": "PutEncryptionConfiguration",
        "publicAccessBlock": "PutBucketPublicAccessBlock",
        "ownershipControls": "PutBucketOwnershipControls",
        "object-lock": "PutBucketObjectLockConfiguration",
        "tagging": "PutBucketTagging",
        "cors": "PutBucketCORS",
        "acl": "PutBucketAcl",
        "logging": "PutBucketLogging",
        "website": "PutBucketWebsite",
        "accelerate": "PutAccelerateConfiguration",
        "replication": "PutReplicationConfiguration",
        "": "CreateBucket",
    },
    "DELETE": {
        "lifecycle": "PutLifecycleConfiguration",
        "policy": "DeleteBucketPolicy",
        "encryption": "PutEncryptionConfiguration",
        "publicAccessBlock": "PutBucketPublicAccessBlock",
        "ownershipControls": "PutBucketOwnershipControls",
        "tagging": "PutBucketTagging",
        "cors": "PutBucketCORS",
        "website": "DeleteBucketWebsite",
        "replication": "PutReplicationConfiguration",
        "": "DeleteBucket",
    },
}
#: Object requests: the query parameter that names the operation, and its IAM action without and with a version.
_S3_OBJECT_ACTIONS: dict[str, dict[str, tuple[str, str | None]]] = {
    "HEAD": {"": ("GetObject", "GetObjectVersion")},
    "GET": {
        "uploadId": ("ListMultipartUploadParts", None),
        "tagging": ("GetObjectTagging", "GetObjectVersionTagging"),
        "acl": ("GetObjectAcl", "GetObjectVersionAcl"),
        "attributes": ("GetObjectAttributes", "GetObjectVersionAttributes"),
        "retention": ("GetObjectRetention", None),
        "legal-hold": ("GetObjectLegalHold", None),
        "": ("GetObject", "GetObjectVersion"),
    },
    "PUT": {
        "tagging": ("PutObjectTagging", "PutObjectVersionTagging"),
        "acl": ("PutObjectAcl", "PutObjectVersionAcl"),
        "retention": ("PutObjectRetention", None),
        "legal-hold": ("PutObjectLegalHold", None),
        "": ("PutObject", None),  # with partNumber/uploadId: UploadPart(Copy), also s3:PutObject
    },
    "DELETE": {
        "uploadId": ("AbortMultipartUpload", None),
        "tagging": ("DeleteObjectTagging", "DeleteObjectVersionTagging"),
        "": ("DeleteObject", "DeleteObjectVersion"),
    },
    "POST": {
        "uploads": ("PutObject", None),
        "uploadId": ("PutObject", None),
        "restore": ("RestoreObject", None),
        "select": ("GetObject", None),
    },
}


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


def _check_handed_roles(facts: RequestFacts) -> None:
    """A state machine's or function's role must trust its service when it is created, as AWS checks then."""
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.core.exceptions import JsonRESTError

    if facts.service == "states" and facts.operation in ("CreateStateMachine", "UpdateStateMachine"):
        role, service = facts.param("roleArn"), "states.amazonaws.com"
    elif facts.service == "lambda" and facts.operation in ("CreateFunction", "UpdateFunctionConfiguration"):
        role, service = facts.param("Role"), "lambda.amazonaws.com"
    else:
        return
    if not role:
        return
    try:
        _check_trust(str(role), service, str(role).split(":")[4], facts.partition)
    except (RoleNotAssumableError, IndexError) as error:
        if facts.service == "lambda":
            raise InvalidParameterValueException(
                "The role defined for the function cannot be assumed by Lambda."
            ) from error
        denial = JsonRESTError("AccessDeniedException", str(error))
        denial.code = 403
        raise denial from error


def _authorize_as_aws(roles: RoleSessions) -> None:
    from moto import settings as moto_settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.s3.models import FakeBucket
    from moto.s3.responses import S3Response

    def authenticate_and_authorize(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        # moto's gate, unchanged: nothing is checked before INITIAL_NO_AUTH_ACTION_COUNT requests.
        if ActionAuthenticatorMixin.request_count < moto_settings.INITIAL_NO_AUTH_ACTION_COUNT:
            ActionAuthenticatorMixin.request_count += 1
            return
        if self.headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
            return
        query = urlparse(self.uri).query
        iam_request = iam_request_cls(
            account_id=self.current_account,
            method=self.method,
            path=self.raw_path + (f"?{query}" if query else ""),
            data=self.data,
            body=self.raw_body,
            headers=self.headers,
            action=self._get_action(),
        )
        iam_request.check_signature()
        self.local_iam_request = iam_request  # DeleteObjects' keys and a missing key's answer (11) read it
        facts = _request_facts(self, iam_request)
        for action, target in required_permissions(facts, resource):
            verdict = authorization_verdict(iam_request, action, target)
            if verdict != ALLOWED:
                message = denial_message(iam_request._access_key.arn, action, target, verdict)
                log.info("denied: %s", message)
                raise _denial(facts.service, message)
        if roles.check_trust:
            _check_handed_roles(facts)

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate_and_authorize  # type: ignore[method-assign]

    # DeleteObjects: moto asks the bucket's policy about each key, in the request's order;
    # the caller's identity policies are asked here too, for the key's own action.
    pending = threading.local()
    original_delete_keys = S3Response._bucket_response_delete_keys
    original_permission = FakeBucket.get_permission

    def delete_keys(self: Any, bucket_name: str, authenticated: bool = True) -> Any:
        iam_request = getattr(self, "local_iam_request", None)
        if iam_request is None or not authenticated:
            return original_delete_keys(self, bucket_name, authenticated)
        import xmltodict

        objects = xmltodict.parse(self.body, strip_whitespace=False)["Delete"].get("Object", [])
        objects = objects if isinstance(objects, list) else [objects]
        pending.keys = deque((o["Key"], o.get("VersionId")) for o in objects)
        pending.iam_request = iam_request
        try:
            return original_delete_keys(self, bucket_name, authenticated)
        finally:
            pending.keys = None

    def get_permission(self: Any, action: str, resource: str) -> Any:
        from moto.iam.access_control import PermissionResult

        keys = getattr(pending, "keys", None)
        if not keys or action != "s3:DeleteObject":
            return original_permission(self, action, resource)
        key, version = keys.popleft()
        if not resource.endswith(f":::{self.name}/{key}"):
            raise RuntimeError(f"DeleteObjects asked about {resource}, expected the key {key!r}: review workaround 10")
        needed = "s3:DeleteObjectVersion" if version else "s3:DeleteObject"
        if authorization_verdict(pending.iam_request, needed, resource) != ALLOWED:
            return PermissionResult.DENIED
        return original_permission(self, needed, resource)

    S3Response._bucket_response_delete_keys = delete_keys  # type: ignore[method-assign]
    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


# ------------------------------------------------------- IAM: 11, a missing object is 403 without s3:ListBucket

#: Object GETs that are not GetObject (the rule is GetObject's and HeadObject's).
_NOT_GET_OBJECT = frozenset({"uploadId", "tagging", "acl", "attributes", "retention", "legal-hold", "torrent"})


def _answer_missing_keys_as_aws() -> None:
    from moto.s3.exceptions import S3ClientError
    from moto.s3.responses import S3Response

    original = S3Response._key_response

    def hides_absence(self: Any, request: Any, full_url: str) -> bool:
        iam_request = getattr(self, "local_iam_request", None)
        query = parse_qs(urlparse(full_url).query, keep_blank_values=True)
        if iam_request is None or request.method not in ("GET", "HEAD") or _NOT_GET_OBJECT & set(query):
            return False
        partition = iam_request._access_key.partition
        bucket = f"arn:{partition}:s3:::{self.parse_bucket_name_from_url(request, full_url)}"
        return authorization_verdict(iam_request, "s3:ListBucket", bucket) != ALLOWED

    def key_response(self: Any, request: Any, full_url: str) -> Any:
        try:
            answer = original(self, request, full_url)
        except S3ClientError as error:
            if error.code in ("NoSuchKey", "NoSuchVersion") and hides_absence(self, request, full_url):
                raise _denial("s3", "Access Denied") from None
            raise
        if isinstance(answer, tuple) and answer[0] == 404 and hides_absence(self, request, full_url):
            return 403, {}, ""
        return answer

    S3Response._key_response = key_response  # type: ignore[method-assign]


# ---------------------------------------------------------------- IAM: 12, services act with their roles' credentials


class RoleNotAssumableError(RuntimeError):
    """A service may not assume the role it was given (its trust policy does not name the service)."""


@dataclass(frozen=True)
class RoleCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str


class RoleSessions:
    """Temporary credentials of roles, minted with moto's STS backend as a service's AssumeRole would.

    Cached per role and session name while moto still knows them (a reset of moto forgets them).
    """

    def __init__(self, *, check_trust: bool) -> None:
        self.check_trust = check_trust
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], RoleCredentials] = {}

    def credentials(self, role_arn: str, session: str, service: str, region: str) -> RoleCredentials:
        """Credentials of ``role_arn`` for ``service`` (``lambda.amazonaws.com`` …).

        Raises:
            RoleNotAssumableError: Under enforcement, the role does not exist or does not trust the service.
        """
        from moto.sts.models import sts_backends

        parts = role_arn.split(":")
        if len(parts) < 6:
            raise RoleNotAssumableError(f"{service} cannot assume {role_arn!r}: not a role ARN")
        partition, account = parts[1], parts[4]
        backend = sts_backends[account][partition]
        with self._lock:
            cached = self._cache.get((role_arn, session))
            if cached is not None and backend.get_assumed_role_from_access_key(cached.access_key_id) is not None:
                return cached
            if self.check_trust:
                _check_trust(role_arn, service, account, partition)
            assumed = backend.assume_role(
                region_name=region,
                role_session_name=session,
                role_arn=role_arn,
                policy=None,  # type: ignore[arg-type]
                duration=43200,
                external_id=None,  # type: ignore[arg-type]
            )
            credentials = RoleCredentials(assumed.access_key_id, assumed.secret_access_key, assumed.session_token)
            self._cache[(role_arn, session)] = credentials
            return credentials


def trusts(policy: Mapping[str, Any], role_arn: str, service: str, context: Mapping[str, str]) -> bool:
    """Whether a role's trust policy lets ``service`` assume it (an Allow applies, no Deny does)."""
    effects = [
        statement_effect(statement, "sts:AssumeRole", role_arn, service, context)
        for statement in _listed(policy.get("Statement", []))
    ]
    return "Deny" not in effects and "Allow" in effects


def _check_trust(role_arn: str, service: str, account: str, partition: str) -> None:
    from moto.iam.models import iam_backends

    try:
        role = iam_backends[account][partition].get_role_by_arn(role_arn)
    except Exception:
        raise RoleNotAssumableError(f"{service} cannot assume {role_arn}: the role does not exist") from None
    # The service acts for this account (aws:SourceAccount); its resource's ARN is not known here.
    context = _CONTEXT | {"aws:SourceAccount": account}
    if not trusts(policy_document(role.assume_role_policy_document), role_arn, service, context):
        if service == "states.amazonaws.com":
            raise RoleNotAssumableError(
                "Neither the global service principal states.amazonaws.com, nor the regional one is authorized "
                f"to assume the provided role ({role_arn})."
            )
        raise RoleNotAssumableError(
            f"{role_arn} does not trust {service}: its trust policy does not let it assume the role"
        )


def _call_services_as_the_state_machine(roles: RoleSessions) -> None:
    import boto3
    from botocore.config import Config
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        role_arn = getattr(state_credentials, "role_arn", None)
        if not role_arn:
            return original(region=region, service=service, state_credentials=state_credentials)
        credentials = roles.credentials(role_arn, STATES_SESSION, "states.amazonaws.com", region)
        endpoint = {} if botocore_stubber.enabled else {"endpoint_url": f"http://localhost:{moto_server_port()}"}
        return boto3.client(
            service_name=service,
            region_name=region,
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            aws_session_token=credentials.session_token,
            config=Config(  # as moto's own client
                parameter_validation=False,
                retries={"max_attempts": 0, "total_max_attempts": 1},
                connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
            ),
            **endpoint,
        )

    # The services' modules import the function by name: rebind it in each one loaded, and at its source.
    boto_client.boto_client_for = boto_client_for
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.") and getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]
