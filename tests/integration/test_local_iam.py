"""The local stack under ``PIPELINE_LOCAL_IAM=enforce``: no more forgiving than AWS about IAM.

One emulator process (moto with ``moto_workarounds``) serves the whole module. Each test
creates a role with a policy, takes its credentials with ``sts:AssumeRole`` through the
administrator's key (``testing``, the IAM user ``local-admin``), and checks what the role
may and may not do. Every test names the workaround it would fail without.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError

from pipeline_tasks.local.stack import LOCAL_KEY_ID, LOCAL_SECRET, MotoServer

pytestmark = [pytest.mark.aws]

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "us-east-1"
#: A function package moto accepts (the functions run from the working tree).
EMPTY_ZIP = b"PK\x05\x06" + b"\x00" * 18


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    # The emulator's own credentials are the administrator's: no task may inherit them.
    own = {"PIPELINE_LOCAL_IAM": "enforce", "AWS_ACCESS_KEY_ID": LOCAL_KEY_ID, "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET}
    with mock.patch.dict(os.environ, own):
        emulator = MotoServer(emulator=True, workdir=REPO, log_dir=tmp_path_factory.mktemp("task-logs"))
    with emulator:
        yield emulator


class Account:
    """Clients of the emulator: the administrator's, and a role's after AssumeRole."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def admin(self, service: str) -> Any:
        return self._client(service, LOCAL_KEY_ID, LOCAL_SECRET, None)

    def _client(self, service: str, key: str, secret: str, token: str | None) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
        )

    def role(self, statements: list[dict[str, Any]], *, services: tuple[str, ...] = ()) -> str:
        """A new role with ``statements`` as its inline policy, trusted by this account and ``services``."""
        name = f"role-{uuid.uuid4().hex[:8]}"
        principal: dict[str, Any] = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
        if services:
            principal["Service"] = list(services)
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
        }
        iam = self.admin("iam")
        arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        if statements:
            policy = {"Version": "2012-10-17", "Statement": statements}
            iam.put_role_policy(RoleName=name, PolicyName="policy", PolicyDocument=json.dumps(policy))
        return arn

    def as_role(self, role_arn: str, session: str = "test") -> Callable[[str], Any]:
        """A client factory signing with the role's temporary credentials."""
        credentials = self.admin("sts").assume_role(RoleArn=role_arn, RoleSessionName=session)["Credentials"]

        def client(service: str) -> Any:
            return self._client(
                service, credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
            )

        return client


@pytest.fixture(scope="module")
def account(server: MotoServer) -> Account:
    return Account(server.endpoint)


@pytest.fixture
def bucket(account: Account) -> str:
    """A versioned bucket of its own."""
    name = f"iam-{uuid.uuid4().hex[:10]}"
    s3 = account.admin("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _denied(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call()
    error: dict[str, Any] = raised.value.response["Error"]
    error["Status"] = raised.value.response["ResponseMetadata"]["HTTPStatusCode"]
    return error


def _allow(action: str | list[str], resource: str | list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def test_every_request_is_authenticated_and_the_local_key_is_the_administrator(account):
    """Workaround 7: moto checks nothing by default; an unknown key is refused, ``testing`` is local-admin's."""
    assert account.admin("iam").get_user(UserName="local-admin")["User"]["UserName"] == "local-admin"
    unknown = account._client("s3", "AKIAUNKNOWNKEY000000", "secret", None)
    assert _denied(unknown.list_buckets)["Code"] == "InvalidAccessKeyId"
    # A GET without a body is signed over an empty payload (workaround 8: moto refused it).
    account.admin("lambda").list_functions()


def test_a_role_may_put_items_in_the_table_its_policy_names_and_no_other(account):
    """Workaround 10: moto evaluates DynamoDB against the resource ``*``, so a table-scoped Allow never matched."""
    dynamodb = account.admin("dynamodb")
    tables = [f"t-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for table in tables:
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    allowed = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{tables[0]}"
    role = account.role([_allow("dynamodb:PutItem", allowed)])
    client = account.as_role(role, session="writer")("dynamodb")

    client.put_item(TableName=tables[0], Item={"k": {"S": "a"}})
    error = _denied(lambda: client.put_item(TableName=tables[1], Item={"k": {"S": "a"}}))

    role_name = role.rsplit("/", 1)[1]
    assert error["Code"] == "AccessDeniedException" and error["Status"] == 403
    assert error["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/writer is not authorized to perform: "
        f"dynamodb:PutItem on resource: arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{tables[1]} "
        "because no identity-based policy allows the dynamodb:PutItem action"
    )
    missing = _denied(lambda: client.get_item(TableName=tables[0], Key={"k": {"S": "a"}}))
    assert "dynamodb:GetItem" in missing["Message"] and role_name in missing["Message"]


def test_listing_needs_s3_list_bucket_and_versions_s3_list_bucket_versions(account, bucket):
    """Workaround 10: moto authorized HeadBucket as ``s3:HeadBucket``; AWS as ``s3:ListBucket``.

    (moto already authorized ListObjectsV2 by ``s3:ListBucket``; the test pins it.)
    """
    s3 = account.as_role(account.role([_allow("s3:ListBucket", f"arn:aws:s3:::{bucket}")]))("s3")

    s3.list_objects_v2(Bucket=bucket)
    s3.head_bucket(Bucket=bucket)
    error = _denied(lambda: s3.list_object_versions(Bucket=bucket))
    assert error["Code"] == "AccessDenied" and "s3:ListBucketVersions" in error["Message"]


def test_head_object_of_a_missing_key_is_403_without_list_bucket_and_404_with_it(account, bucket):
    """Workaround 11: moto answered 404 whatever the caller may list."""
    read = _allow("s3:GetObject", f"arn:aws:s3:::{bucket}/*")
    blind = account.as_role(account.role([read]))("s3")
    seeing = account.as_role(account.role([read, _allow("s3:ListBucket", f"arn:aws:s3:::{bucket}")]))("s3")

    assert _denied(lambda: blind.head_object(Bucket=bucket, Key="input/missing.csv"))["Status"] == 403
    assert _denied(lambda: blind.get_object(Bucket=bucket, Key="input/missing.csv"))["Code"] == "AccessDenied"
    assert _denied(lambda: seeing.head_object(Bucket=bucket, Key="input/missing.csv"))["Status"] == 404
    assert _denied(lambda: seeing.get_object(Bucket=bucket, Key="input/missing.csv"))["Code"] == "NoSuchKey"


def test_reading_a_named_version_needs_s3_get_object_version(account, bucket):
    """Workaround 10: moto authorized HeadObject of a version by ``s3:GetObject``."""
    version = account.admin("s3").put_object(Bucket=bucket, Key="input/a.csv", Body=b"x")["VersionId"]
    objects = f"arn:aws:s3:::{bucket}/input/*"
    current_only = account.as_role(account.role([_allow("s3:GetObject", objects)]))("s3")
    versions_only = account.as_role(account.role([_allow("s3:GetObjectVersion", objects)]))("s3")

    assert current_only.get_object(Bucket=bucket, Key="input/a.csv")["Body"].read() == b"x"
    error = _denied(lambda: current_only.get_object(Bucket=bucket, Key="input/a.csv", VersionId=version))
    assert "s3:GetObjectVersion" in error["Message"]
    # A HEAD answer has no body to name the action in.
    assert (
        _denied(lambda: current_only.head_object(Bucket=bucket, Key="input/a.csv", VersionId=version))["Status"] == 403
    )
    assert versions_only.head_object(Bucket=bucket, Key="input/a.csv", VersionId=version)["VersionId"] == version
    assert "s3:GetObject " in _denied(lambda: versions_only.get_object(Bucket=bucket, Key="input/a.csv"))["Message"]


def test_copy_object_needs_read_on_its_source(account, bucket):
    """Workaround 10: moto authorized CopyObject by ``s3:PutObject`` on the destination alone."""
    version = account.admin("s3").put_object(Bucket=bucket, Key="input/a.csv", Body=b"x")["VersionId"]
    place = _allow("s3:PutObject", f"arn:aws:s3:::{bucket}/archive/*")
    source = {"Bucket": bucket, "Key": "input/a.csv", "VersionId": version}
    writer = account.as_role(account.role([place]))("s3")
    mover = account.as_role(account.role([place, _allow("s3:GetObjectVersion", f"arn:aws:s3:::{bucket}/input/*")]))(
        "s3"
    )

    error = _denied(lambda: writer.copy_object(Bucket=bucket, Key="archive/a.csv", CopySource=source))
    assert f"s3:GetObjectVersion on resource: arn:aws:s3:::{bucket}/input/a.csv" in error["Message"]
    mover.copy_object(Bucket=bucket, Key="archive/a.csv", CopySource=source)
    assert account.admin("s3").get_object(Bucket=bucket, Key="archive/a.csv")["Body"].read() == b"x"


def test_delete_objects_authorizes_each_key(account, bucket):
    """Workaround 10: moto authorized DeleteObjects by ``s3:DeleteObject`` on the bucket, denying every key."""
    admin = account.admin("s3")
    kept = admin.put_object(Bucket=bucket, Key="input/b.csv", Body=b"y")["VersionId"]
    admin.put_object(Bucket=bucket, Key="staging/a.parquet", Body=b"x")
    s3 = account.as_role(account.role([_allow("s3:DeleteObject", f"arn:aws:s3:::{bucket}/staging/*")]))("s3")

    answer = s3.delete_objects(
        Bucket=bucket,
        Delete={
            "Objects": [
                {"Key": "staging/a.parquet"},
                {"Key": "input/b.csv"},
                {"Key": "staging/a.parquet", "VersionId": kept},
            ]
        },
    )

    assert [d["Key"] for d in answer["Deleted"]] == ["staging/a.parquet"]
    assert [(e["Key"], e["Code"]) for e in answer["Errors"]] == [
        ("input/b.csv", "AccessDenied"),
        ("staging/a.parquet", "AccessDenied"),  # a version: s3:DeleteObjectVersion
    ]
    assert admin.head_object(Bucket=bucket, Key="input/b.csv")["VersionId"] == kept


def test_policies_are_read_as_iam_reads_them(account, bucket):
    """Workaround 9: moto ignored NotResource (granting everything), matched actions case-sensitively,
    read ``?`` as a regular expression and applied a Deny whatever its condition."""
    admin = account.admin("s3")
    for key in ("input/a.csv", "input/b.csv", "results/r1.json"):
        admin.put_object(Bucket=bucket, Key=key, Body=b"x")
    role = account.role(
        [
            {"Effect": "Allow", "Action": "S3:getobject", "Resource": f"arn:aws:s3:::{bucket}/input/?.csv"},
            {"Effect": "Allow", "Action": "s3:PutObject", "NotResource": f"arn:aws:s3:::{bucket}/input/*"},
            {
                "Effect": "Deny",
                "Action": "s3:*",
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},  # the emulator stands for TLS
            },
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/input/b.csv"},
        ]
    )
    s3 = account.as_role(role)("s3")

    assert s3.get_object(Bucket=bucket, Key="input/a.csv")["Body"].read() == b"x"
    explicit = _denied(lambda: s3.get_object(Bucket=bucket, Key="input/b.csv"))["Message"]
    assert explicit.endswith("with an explicit deny in an identity-based policy")
    assert "s3:GetObject" in _denied(lambda: s3.get_object(Bucket=bucket, Key="results/r1.json"))["Message"]
    s3.put_object(Bucket=bucket, Key="results/r2.json", Body=b"{}")
    assert "s3:PutObject" in _denied(lambda: s3.put_object(Bucket=bucket, Key="input/c.csv", Body=b"x"))["Message"]


def _state_machine(account: Account, role_arn: str, topic: str) -> str:
    """Publishes once per item, in a Map state (its iterations run on their own threads)."""
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Notify",
                    "States": {
                        "Notify": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::sns:publish",
                            "Parameters": {"TopicArn": topic, "Message": "done"},
                            "End": True,
                        }
                    },
                },
                "End": True,
            }
        },
    }
    created = account.admin("stepfunctions").create_state_machine(
        name=f"sm-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=role_arn
    )
    return str(created["stateMachineArn"])


def _run(account: Account, state_machine: str) -> dict[str, Any]:
    sfn = account.admin("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=state_machine, name=uuid.uuid4().hex, input=json.dumps({"items": [1, 2]})
    )["executionArn"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.2)
    raise AssertionError(f"{execution} still running")


def test_a_state_machine_calls_services_with_its_role_credentials(account):
    """Workaround 12: moto's interpreter signed with the keys ak/sk, which no policy knows."""
    topic = account.admin("sns").create_topic(Name=f"topic-{uuid.uuid4().hex[:8]}")["TopicArn"]
    mute = account.role([], services=("states.amazonaws.com",))
    notifier = account.role([_allow("sns:Publish", topic)], services=("states.amazonaws.com",))

    failed = _run(account, _state_machine(account, mute, topic))
    succeeded = _run(account, _state_machine(account, notifier, topic))

    assert failed["status"] == "FAILED", failed
    assert failed.get("error") == "SNS.AuthorizationErrorException", failed
    assert f"assumed-role/{mute.rsplit('/', 1)[1]}/" in failed["cause"] and "sns:Publish" in failed["cause"]
    assert succeeded["status"] == "SUCCEEDED", succeeded


def test_a_role_must_trust_the_service_it_is_handed_to(account):
    """Workaround 12: moto let any role serve a state machine or a function, as AWS does not."""
    lambda_only = account.role([], services=("lambda.amazonaws.com",))
    states_only = account.role([], services=("states.amazonaws.com",))
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})

    error = _denied(
        lambda: account.admin("stepfunctions").create_state_machine(
            name=f"sm-{uuid.uuid4().hex[:8]}", definition=definition, roleArn=lambda_only
        )
    )
    assert error["Code"] == "AccessDeniedException" and "states.amazonaws.com" in error["Message"], error
    error = _denied(
        lambda: account.admin("lambda").create_function(
            FunctionName=f"fn-{uuid.uuid4().hex[:8]}",
            Runtime="python3.11",
            Role=states_only,
            Handler="pipeline_tasks.handlers.orchestrator.handler",
            Code={"ZipFile": EMPTY_ZIP},
        )
    )
    assert error["Code"] == "InvalidParameterValueException", error


@pytest.mark.parametrize("served_by", ["PIPELINE_HANDLER", "Handler"])
def test_a_lambda_function_runs_with_its_role_credentials(account, bucket, served_by):
    """Workaround 3: the function ran with the credentials of its environment (here the administrator's).

    The function is Read-Validation-Result, named by ``PIPELINE_HANDLER`` or found from its ``Handler``.
    """
    admin_s3 = account.admin("s3")
    admin_s3.put_object(Bucket=bucket, Key="results/e1.json", Body=json.dumps({"valid_files": [], "invalid_files": []}))
    readers = account.role(
        [_allow("s3:GetObject", f"arn:aws:s3:::{bucket}/results/*")], services=("lambda.amazonaws.com",)
    )
    strangers = account.role([], services=("lambda.amazonaws.com",))
    lambda_client = account.admin("lambda")

    def invoke(role: str) -> tuple[dict[str, Any], bool]:
        name = f"fn-{uuid.uuid4().hex[:8]}"
        variables = {
            "PIPELINE_BUCKET": bucket,
            "AWS_ACCESS_KEY_ID": LOCAL_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET,
        }
        if served_by == "PIPELINE_HANDLER":
            variables["PIPELINE_HANDLER"] = "pipeline_tasks.handlers.read_validation_result:handle"
        lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler="pipeline_tasks.handlers.read_validation_result.handler",
            Code={"ZipFile": EMPTY_ZIP},
            Environment={"Variables": variables},
        )
        answer = lambda_client.invoke(FunctionName=name, Payload=json.dumps({"execution_id": "e1"}).encode())
        return json.loads(answer["Payload"].read()), "FunctionError" in answer

    plan, failed = invoke(readers)
    assert not failed and plan["valid_count"] == 0, plan
    error, failed = invoke(strangers)
    assert failed and error["errorType"] == "AccessDenied", error
    assert f"assumed-role/{strangers.rsplit('/', 1)[1]}/" in error["errorMessage"], error
    assert "s3:GetObject" in error["errorMessage"], error


def test_an_ecs_task_runs_with_its_task_role_and_not_the_emulators_credentials(account, tmp_path):
    """Workaround 2: the task process inherited the emulator's environment and no role."""
    task_role = account.role([], services=("ecs-tasks.amazonaws.com",))
    out = tmp_path / "identity.json"
    script = (
        "import boto3, json, os, sys; "
        "who = boto3.client('sts').get_caller_identity()['Arn']; "
        "env = {k: os.environ.get(k) for k in ('AWS_ENDPOINT_URL', 'AWS_REGION', 'AWS_ACCESS_KEY_ID')}; "
        "open(sys.argv[1], 'w').write(json.dumps({'arn': who, 'env': env}))"
    )
    ec2 = account.admin("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"g-{uuid.uuid4().hex[:6]}", Description="probe", VpcId=vpc)["GroupId"]
    ecs = account.admin("ecs")
    cluster = ecs.create_cluster(clusterName=f"c-{uuid.uuid4().hex[:6]}")["cluster"]["clusterArn"]
    definition = ecs.register_task_definition(
        family=f"probe-{uuid.uuid4().hex[:6]}",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        taskRoleArn=task_role,
        containerDefinitions=[
            {
                "name": "probe",
                "image": "probe:local",
                "essential": True,
                "cpu": 256,
                "memory": 512,  # moto sizes the task from its containers
                "command": [sys.executable, "-c", script, str(out)],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]

    task = ecs.run_task(
        cluster=cluster,
        taskDefinition=definition,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}},
    )["tasks"][0]
    deadline = time.monotonic() + 60
    while ecs.describe_tasks(cluster=cluster, tasks=[task["taskArn"]])["tasks"][0]["lastStatus"] != "STOPPED":
        assert time.monotonic() < deadline, "the task did not stop"
        time.sleep(0.2)

    seen = json.loads(out.read_text())
    task_id = task["taskArn"].rsplit("/", 1)[1]
    assert seen["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{task_role.rsplit('/', 1)[1]}/{task_id}"
    assert seen["env"]["AWS_ENDPOINT_URL"] == account.endpoint and seen["env"]["AWS_REGION"] == REGION
    assert seen["env"]["AWS_ACCESS_KEY_ID"] != LOCAL_KEY_ID
