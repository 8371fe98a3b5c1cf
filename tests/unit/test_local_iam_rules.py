"""The local stack's IAM rules (moto_workarounds 2, 3, 9, 10, 12) as pure functions: policies, actions, resources."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline_tasks.local import emulator
from pipeline_tasks.local.moto_workarounds import (
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    RequestFacts,
    RoleCredentials,
    condition_holds,
    denial_message,
    glob_matches,
    handler_function,
    lambda_function_arn,
    policy_document,
    principal_matches,
    s3_permissions,
    statement_effect,
    task_environment,
    trusts,
)
from pipeline_tasks.local.stack import LOCAL_KEY_ID, LOCAL_SECRET

BUCKET = "arn:aws:s3:::data"


@pytest.mark.parametrize(
    ("pattern", "value", "ignore_case", "expected"),
    [
        ("arn:aws:s3:::data/input/*", "arn:aws:s3:::data/input/a/b.csv", False, True),
        ("arn:aws:s3:::data/input/?.csv", "arn:aws:s3:::data/input/a.csv", False, True),
        ("arn:aws:s3:::data/input/?.csv", "arn:aws:s3:::data/input/ab.csv", False, False),
        ("arn:aws:s3:::data.x/*", "arn:aws:s3:::dataAx/k", False, False),  # "." is a dot, not any character
        ("arn:aws:s3:::Data/*", "arn:aws:s3:::data/k", False, False),
        ("S3:getobject", "s3:GetObject", True, True),
        ("s3:Get*", "s3:GetObjectVersion", True, True),
    ],
)
def test_glob_matches_as_iam_wildcards(pattern, value, ignore_case, expected):
    assert glob_matches(pattern, value, ignore_case=ignore_case) is expected


def _statement(**fields: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"} | fields


def test_statements_apply_by_action_and_resource():
    assert statement_effect(_statement(), "s3:GetObject", f"{BUCKET}/k") == "Allow"
    assert statement_effect(_statement(), "s3:PutObject", f"{BUCKET}/k") is None
    assert statement_effect(_statement(), "s3:GetObject", "arn:aws:s3:::other/k") is None
    # A resource the local stack cannot name is matched on the action alone.
    assert statement_effect(_statement(), "s3:GetObject", "*") == "Allow"


def test_not_action_and_not_resource_exclude_what_they_name():
    not_input = {"Effect": "Allow", "Action": "s3:PutObject", "NotResource": f"{BUCKET}/input/*"}
    assert statement_effect(not_input, "s3:PutObject", f"{BUCKET}/archive/a") == "Allow"
    assert statement_effect(not_input, "s3:PutObject", f"{BUCKET}/input/a") is None
    not_delete = {"Effect": "Deny", "NotAction": "s3:Get*", "Resource": "*"}
    assert statement_effect(not_delete, "s3:DeleteObject", f"{BUCKET}/a") == "Deny"
    assert statement_effect(not_delete, "s3:GetObject", f"{BUCKET}/a") is None


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "true"}, False),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "true"}, True),
        ({"StringEquals": {"sts:ExternalId": ["a", "b"]}}, {"sts:ExternalId": "b"}, True),
        ({"StringEquals": {"sts:ExternalId": "a"}}, {}, False),  # a known key, absent
        ({"StringNotEquals": {"sts:ExternalId": "a"}}, {}, True),  # negated: holds when absent
        ({"StringEqualsIfExists": {"sts:ExternalId": "a"}}, {}, True),
        ({"Null": {"sts:ExternalId": "true"}}, {}, True),
        ({"StringLike": {"aws:SourceArn": "arn:aws:s3:::*"}}, {}, None),  # a key the local stack does not know
        ({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}, {"aws:MultiFactorAuthAge": "1"}, None),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::data*"}}, {"aws:SourceArn": "arn:aws:s3:::data"}, True),
    ],
)
def test_conditions_hold_fail_or_cannot_be_evaluated(condition, context, expected):
    assert condition_holds(condition, context) is expected


def test_a_condition_that_cannot_be_evaluated_grants_nothing_and_denies():
    unknown = {"StringEquals": {"aws:PrincipalTag/team": "data"}}
    assert statement_effect(_statement(Condition=unknown), "s3:GetObject", f"{BUCKET}/k") is None
    assert statement_effect(_statement(Effect="Deny", Condition=unknown), "s3:GetObject", f"{BUCKET}/k") == "Deny"
    tls_only = {"Bool": {"aws:SecureTransport": "false"}}
    context = {"aws:SecureTransport": "true"}
    assert (
        statement_effect(_statement(Effect="Deny", Condition=tls_only), "s3:GetObject", f"{BUCKET}/k", None, context)
        is None
    )


def test_principals_name_callers_by_arn_account_role_or_service():
    session = "arn:aws:sts::123456789012:assumed-role/TaskRole/abc"
    assert principal_matches({"AWS": "arn:aws:iam::123456789012:root"}, session)
    assert principal_matches({"AWS": "123456789012"}, "arn:aws:iam::123456789012:user/local-admin")
    assert principal_matches({"AWS": "arn:aws:iam::123456789012:role/path/TaskRole"}, session)
    assert not principal_matches({"AWS": "arn:aws:iam::123456789012:role/Other"}, session)
    assert not principal_matches({"AWS": "arn:aws:iam::999999999999:root"}, session)
    assert principal_matches({"Service": ["lambda.amazonaws.com"]}, "lambda.amazonaws.com")
    assert not principal_matches({"Service": "lambda.amazonaws.com"}, session)
    assert principal_matches("*", session)


def test_a_role_trusts_the_services_its_trust_policy_names():
    role = "arn:aws:iam::123456789012:role/StateMachineRole"
    statement = '{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}'
    policy = policy_document(f'{{"Statement": [{statement}]}}')  # as moto may hold it: JSON text
    assert trusts(policy, role, "states.amazonaws.com", {})
    assert not trusts(policy, role, "lambda.amazonaws.com", {})
    conditional = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
            }
        ]
    }
    assert trusts(conditional, role, "scheduler.amazonaws.com", {"aws:SourceAccount": "123456789012"})
    assert not trusts(conditional, role, "scheduler.amazonaws.com", {"aws:SourceAccount": "999999999999"})


def _s3(method: str, resource: str, query: dict[str, list[str]] | None = None, **headers: str) -> list[tuple[str, str]]:
    facts = RequestFacts(
        service="s3",
        operation="moto's",
        region="us-east-1",
        account="123456789012",
        method=method,
        path="/",
        query=query or {},
        headers=headers,
        params={},
    )
    return s3_permissions(facts, resource)


@pytest.mark.parametrize(
    ("method", "resource", "query", "expected"),
    [
        ("GET", BUCKET, {"list-type": ["2"]}, [("s3:ListBucket", BUCKET)]),
        ("GET", BUCKET, {"versions": [""]}, [("s3:ListBucketVersions", BUCKET)]),
        ("HEAD", BUCKET, {}, [("s3:ListBucket", BUCKET)]),
        ("PUT", BUCKET, {"notification": [""]}, [("s3:PutBucketNotification", BUCKET)]),
        ("PUT", BUCKET, {"encryption": [""]}, [("s3:PutEncryptionConfiguration", BUCKET)]),
        ("PUT", BUCKET, {"publicAccessBlock": [""]}, [("s3:PutBucketPublicAccessBlock", BUCKET)]),
        ("DELETE", BUCKET, {"lifecycle": [""]}, [("s3:PutLifecycleConfiguration", BUCKET)]),
        ("POST", BUCKET, {"delete": [""]}, []),  # each key on its own
        ("GET", "arn:aws:s3:::*", {}, [("s3:ListAllMyBuckets", "*")]),
        ("HEAD", f"{BUCKET}/k", {}, [("s3:GetObject", f"{BUCKET}/k")]),
        ("HEAD", f"{BUCKET}/k", {"versionId": ["v"]}, [("s3:GetObjectVersion", f"{BUCKET}/k")]),
        ("GET", f"{BUCKET}/k", {"versionId": ["v"]}, [("s3:GetObjectVersion", f"{BUCKET}/k")]),
        ("GET", f"{BUCKET}/k", {"tagging": [""], "versionId": ["v"]}, [("s3:GetObjectVersionTagging", f"{BUCKET}/k")]),
        ("GET", f"{BUCKET}/k", {"uploadId": ["u"]}, [("s3:ListMultipartUploadParts", f"{BUCKET}/k")]),
        ("DELETE", f"{BUCKET}/k", {"versionId": ["v"]}, [("s3:DeleteObjectVersion", f"{BUCKET}/k")]),
        ("DELETE", f"{BUCKET}/k", {"tagging": [""]}, [("s3:DeleteObjectTagging", f"{BUCKET}/k")]),
        ("DELETE", f"{BUCKET}/k", {"uploadId": ["u"]}, [("s3:AbortMultipartUpload", f"{BUCKET}/k")]),
        ("POST", f"{BUCKET}/k", {"uploads": [""]}, [("s3:PutObject", f"{BUCKET}/k")]),
        ("POST", f"{BUCKET}/k", {"uploadId": ["u"]}, [("s3:PutObject", f"{BUCKET}/k")]),
        ("PUT", f"{BUCKET}/k", {"partNumber": ["1"], "uploadId": ["u"]}, [("s3:PutObject", f"{BUCKET}/k")]),
    ],
)
def test_s3_requests_need_the_actions_aws_documents(method, resource, query, expected):
    assert _s3(method, resource, query) == expected


def test_a_copy_needs_read_on_its_source_of_the_version_it_names():
    destination = f"{BUCKET}/archive/a b.csv"
    assert _s3("PUT", destination, {}, **{"x-amz-copy-source": "data/input/a%20b.csv?versionId=v1"}) == [
        ("s3:PutObject", destination),
        ("s3:GetObjectVersion", f"{BUCKET}/input/a b.csv"),
    ]
    assert _s3("PUT", destination, {"partNumber": ["1"], "uploadId": ["u"]}, **{"x-amz-copy-source": "/data/k"}) == [
        ("s3:PutObject", destination),
        ("s3:GetObject", f"{BUCKET}/k"),
    ]


def test_lambda_functions_are_named_by_their_arn_qualified_when_a_version_is():
    facts = RequestFacts("lambda", "Invoke", "us-east-1", "123456789012", "POST", "/", {}, {}, {})
    function = "arn:aws:lambda:us-east-1:123456789012:function:Read"
    assert lambda_function_arn("Read", None, facts) == function
    assert lambda_function_arn("Read:live", None, facts) == f"{function}:live"
    assert lambda_function_arn("Read", "3", facts) == f"{function}:3"
    assert lambda_function_arn(function, None, facts) == function
    assert lambda_function_arn("123456789012:function:Read:live", None, facts) == f"{function}:live"


def test_a_denial_reads_as_aws_writes_it():
    caller = "arn:aws:sts::123456789012:assumed-role/R/s"
    assert denial_message(caller, "sns:Publish", "arn:aws:sns:us-east-1:123456789012:t", IMPLICIT_DENY) == (
        f"User: {caller} is not authorized to perform: sns:Publish on resource: arn:aws:sns:us-east-1:123456789012:t "
        "because no identity-based policy allows the sns:Publish action"
    )
    assert denial_message(caller, "ec2:RunInstances", "*", EXPLICIT_DENY) == (
        f"User: {caller} is not authorized to perform: ec2:RunInstances "
        "with an explicit deny in an identity-based policy"
    )


def test_a_task_gets_its_role_endpoint_and_region_never_the_emulators_credentials():
    inherited = {
        "PATH": "/bin",
        "AWS_ACCESS_KEY_ID": LOCAL_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET,
        "AWS_PROFILE": "x",
    }
    role = RoleCredentials("ASIAEXAMPLE", "secret", "token")
    env = task_environment(
        inherited,
        region="eu-west-1",
        endpoint="http://127.0.0.1:5000",
        credentials=role,
        container=[{"name": "PIPELINE_BUCKET", "value": "data"}],
        override=[{"name": "PIPELINE_BUCKET", "value": "other"}],
    )
    assert env == {
        "PATH": "/bin",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "AWS_ACCESS_KEY_ID": "ASIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_SESSION_TOKEN": "token",
        "PIPELINE_BUCKET": "other",
    }
    without_role = task_environment(
        inherited, region="eu-west-1", endpoint="http://e", credentials=None, container=[], override=[]
    )
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"} & set(without_role)
    own_endpoint = [{"name": "AWS_ENDPOINT_URL", "value": "http://elsewhere"}]
    assert (
        task_environment({}, region="r", endpoint="http://e", credentials=None, container=own_endpoint, override=[])[
            "AWS_ENDPOINT_URL"
        ]
        == "http://elsewhere"
    )


def test_a_function_is_served_by_its_pipeline_handler_or_its_handlers_module():
    from pipeline_tasks.handlers import orchestrator, read_validation_result

    assert handler_function("pipeline_tasks.handlers.orchestrator:handle", None) is orchestrator.handle
    assert (
        handler_function(None, "pipeline_tasks.handlers.read_validation_result.handler")
        is read_validation_result.handle
    )
    assert handler_function(None, "index.handler") is None
    assert handler_function(None, None) is None


def test_the_emulator_enforces_iam_only_when_asked():
    assert emulator.enforces_iam("enforce") is True
    assert emulator.enforces_iam(None) is False and emulator.enforces_iam("") is False
    with pytest.raises(SystemExit):
        emulator.enforces_iam("yes")


def test_the_administrator_owns_the_key_the_local_stack_signs_with():
    from pipeline_tasks.local import moto_workarounds

    assert (moto_workarounds.ADMIN_KEY_ID, moto_workarounds.ADMIN_SECRET) == (LOCAL_KEY_ID, LOCAL_SECRET)
