"""Every change the local stack makes to moto 5.2.5, in one place, each with the reason.

They are applied inside the moto server process (``pipeline_tasks.local.emulator``)
before it serves a request; nothing here runs on AWS. ``check()`` (``checks``) verifies the
moto internals they rely on and fails loudly when an upgrade moved them. Each workaround
names, in brackets, the module of this package that holds it; ``apply()`` applies them all.

1. **ECS service integration casing.** [``integrations``] Step Functions passes ``ecs:runTask``
   parameters in PascalCase (``Cluster``, ``Overrides.ContainerOverrides``) and
   returns the task in PascalCase (``Containers[0].ExitCode``). moto's interpreter
   leaves both unconverted for ECS, so ``runTask.sync`` fails before the task starts
   and its result has no ``Tasks``. We convert with the operation's botocore shapes,
   as Step Functions does.
2. **ECS tasks that really run.** [``runtime``] moto creates a task and reports it STOPPED with
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
3. **Lambda functions that really run.** [``runtime``] Without Docker moto's ``Invoke`` returns a
   canned payload. A function whose environment names ``PIPELINE_HANDLER``
   (``module:function``), or whose ``Handler`` is in ``pipeline_tasks``
   (``pipeline_tasks.handlers.orchestrator.handler`` calls that module's
   ``handle(event, settings)``), is served by calling that function in this process
   with the Settings of the function's environment plus what Lambda's runtime adds:
   the temporary credentials of the function's role (minted as in 12; a function's
   configuration cannot set these reserved variables), the function's region, and
   this server as the endpoint. An exception becomes a function error
   (``X-Amz-Function-Error: Unhandled`` and the error payload), as on AWS.
4. **awsvpc tasks.** [``integrations``] Running a task of an ``awsvpc`` task definition (what Fargate
   requires) fails in moto: its network interface has no ``private_dns_name``. The
   interface gets one, derived from its private IP as EC2 names them.
5. **S3 CopySource as AWS takes it.** [``integrations``] The S3 API takes ``CopyObject``'s ``CopySource``
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
6. **S3 event records that name the version.** [``integrations``] An S3 event record carries the
   version it created (``s3.object.versionId``, in a versioned bucket) and a
   ``sequencer`` that orders the events of one key; moto's records carry neither, so
   the orchestrator would pin every file by HeadObject instead of by its event. The
   records get both: the key's version id, and a hexadecimal sequencer that grows
   with every event this server sends.

IAM (7-12): the local stack is no more forgiving than AWS about permissions when
the emulator runs with ``PIPELINE_LOCAL_IAM=enforce``; 2, 3 and 12 give every actor
its role's credentials either way.

7. **Opt-in IAM enforcement.** [``iam_enforcement``] moto authorizes nothing unless its
   ``INITIAL_NO_AUTH_ACTION_COUNT`` is set, and then accepts only credentials that an
   IAM user or an assumed role owns. With ``PIPELINE_LOCAL_IAM=enforce`` the IAM user
   ``local-admin`` (an inline ``Allow *:*`` policy) owns the access key the local
   stack's clients sign with (``testing``/``testing``, the deployer's), and every
   request from the first on is authenticated (its SigV4 signature) and authorized
   (the caller's identity policies, as 9 and 10 evaluate them). Without the variable
   nothing is checked (moto's default).
8. **Signatures of requests without a body.** [``iam_enforcement``] moto signs a request with an empty body
   over its parsed parameters instead of an empty payload, so a GET of a REST API
   (Lambda's ``GetFunction``, ``ListFunctions``) fails with ``SignatureDoesNotMatch``.
   Such a request (unless a form moto has parsed) is checked over an empty payload, as SigV4 defines it
   (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html).
9. **Policies read as IAM reads them.** [``iam_policies``] moto matches ``Action`` and ``Resource`` as
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
10. **The actions and resources AWS authorizes.** [``iam_actions`` and ``iam_s3_actions``; the gate in
    ``iam_enforcement``, verdicts and denials in ``iam_requests``] moto authorizes some S3 requests by
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
11. **A missing object is 403 without s3:ListBucket.** [``iam_enforcement``] GetObject and HeadObject of a
    key or version that does not exist answer 404 only to a caller allowed
    ``s3:ListBucket`` on the bucket; to others 403 ``AccessDenied``
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html). moto
    answers 404 to everyone; under enforcement the answer depends on the permission.
12. **Services act with their roles' credentials.** [``roles``] moto's Step Functions interpreter
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

from pathlib import Path

from pipeline_tasks.local.moto_workarounds.checks import MOTO_VERSION, check
from pipeline_tasks.local.moto_workarounds.iam_actions import lambda_function_arn, required_permissions
from pipeline_tasks.local.moto_workarounds.iam_enforcement import (
    ADMIN_KEY_ID,
    ADMIN_SECRET,
    ADMIN_USER,
    _answer_missing_keys_as_aws,
    _authorize_as_aws,
    _enforce_iam,
    _sign_bodiless_requests,
)
from pipeline_tasks.local.moto_workarounds.iam_policies import (
    _read_policies_as_iam,
    condition_holds,
    glob_matches,
    policy_document,
    principal_matches,
    statement_effect,
)
from pipeline_tasks.local.moto_workarounds.iam_requests import (
    ALLOWED,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    RequestFacts,
    authorization_verdict,
    denial_message,
)
from pipeline_tasks.local.moto_workarounds.iam_s3_actions import s3_permissions
from pipeline_tasks.local.moto_workarounds.integrations import (
    _decode_copy_sources,
    _name_network_interfaces,
    _name_versions_in_s3_events,
    _normalise_ecs_integration,
    copy_source_as_dict,
)
from pipeline_tasks.local.moto_workarounds.roles import (
    STATES_SESSION,
    RoleCredentials,
    RoleNotAssumableError,
    RoleSessions,
    _call_services_as_the_state_machine,
    trusts,
)
from pipeline_tasks.local.moto_workarounds.runtime import (
    HANDLER_VARIABLE,
    EcsAgent,
    _freeze_ecs_tasks,
    _serve_lambda_handlers,
    handler_function,
    task_environment,
)

__all__ = [
    "ADMIN_KEY_ID",
    "ADMIN_SECRET",
    "ADMIN_USER",
    "ALLOWED",
    "EXPLICIT_DENY",
    "HANDLER_VARIABLE",
    "IMPLICIT_DENY",
    "MOTO_VERSION",
    "STATES_SESSION",
    "EcsAgent",
    "RequestFacts",
    "RoleCredentials",
    "RoleNotAssumableError",
    "RoleSessions",
    "apply",
    "authorization_verdict",
    "check",
    "condition_holds",
    "copy_source_as_dict",
    "denial_message",
    "glob_matches",
    "handler_function",
    "lambda_function_arn",
    "policy_document",
    "principal_matches",
    "required_permissions",
    "s3_permissions",
    "statement_effect",
    "task_environment",
    "trusts",
]


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
