"""infra/pipeline.yaml and the ASL against facts of AWS that the local emulator (moto) does not enforce.

Each fact is checked against the AWS documentation page named beside it; a table copied from a
page says so and must be updated from that page, not from our own template.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_tasks.local.template import resources_of

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "infra" / "pipeline.yaml"
DEFINITION = REPO / "statemachine" / "pipeline.asl.json"


@pytest.fixture(scope="module")
def template() -> dict:
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(TEMPLATE))


@pytest.fixture(scope="module")
def definition() -> dict:
    return json.loads(DEFINITION.read_text())


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _target(value: Any) -> str | None:
    """The logical id a ``!Ref X`` or ``!GetAtt X.Arn`` names (None for anything else)."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        attribute = value["Fn::GetAtt"]
        return str(attribute[0] if isinstance(attribute, list) else attribute.split(".")[0])
    return None


def _allows(statement: dict, action: str) -> bool:
    """Whether an Allow statement's actions cover ``action`` (IAM action names are case-insensitive)."""
    return statement.get("Effect") == "Allow" and any(
        fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in _as_list(statement.get("Action", []))
    )


def _role_statements(role: dict) -> Iterator[dict]:
    for policy in role["Properties"].get("Policies", []):
        yield from policy["PolicyDocument"]["Statement"]


# ---------------------------------------------------------------- 1. reserved concurrency


def test_no_function_reserves_concurrency(template):
    """AWS refuses a reservation that leaves less than 100 of the account's concurrency unreserved
    ("You can reserve up to the Unreserved account concurrency value minus 100",
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html), and new accounts start
    with a reduced concurrency quota (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
    there, any reservation fails the stack. The orchestrator needs none: its runs serialise on an S3 lock
    (pipeline_tasks/orchestrator.py, ``orchestrator_lock``)."""
    for name, function in resources_of(template, "AWS::Lambda::Function").items():
        assert "ReservedConcurrentExecutions" not in function["Properties"], name


# ---------------------------------------------------------------- 2. runtime support

#: Python runtimes and their deprecation dates, copied from
#: https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html (and lambda-runtimes.html).
#: After the deprecation date Lambda stops patching the runtime; creating functions is blocked a month later.
LAMBDA_PYTHON_DEPRECATION = {
    "python3.14": datetime.date(2029, 6, 30),
    "python3.13": datetime.date(2029, 6, 30),
    "python3.12": datetime.date(2028, 10, 31),
    "python3.11": datetime.date(2027, 6, 30),
    "python3.10": datetime.date(2026, 10, 31),
}


def test_every_function_runtime_is_supported_for_at_least_a_year(template):
    """A runtime within a year of deprecation (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html)
    soon stops getting security patches, then blocks creating and updating the function."""
    horizon = datetime.date.today() + datetime.timedelta(days=365)
    for name, function in resources_of(template, "AWS::Lambda::Function").items():
        runtime = function["Properties"]["Runtime"]
        assert runtime in LAMBDA_PYTHON_DEPRECATION, (name, runtime, "not in the table of supported runtimes")
        assert LAMBDA_PYTHON_DEPRECATION[runtime] >= horizon, (name, runtime, LAMBDA_PYTHON_DEPRECATION[runtime])


# ---------------------------------------------------------------- 3. encrypted topics


def _key_of(template: dict, topic: dict) -> tuple[str | None, dict | None]:
    """The template KMS key (logical id, resource) a topic is encrypted with; (None, None) when unencrypted."""
    key = topic["Properties"].get("KmsMasterKeyId")
    if key is None:
        return None, None
    name = _target(key)
    resource = template["Resources"].get(name) if name else None
    assert resource is not None and resource["Type"] == "AWS::KMS::Key", (
        f"{key!r} is not a KMS key of this template: an AWS managed key's policy (alias/aws/sns) cannot be "
        "changed to let AWS services use it"
    )
    return name, resource


def _service_may_use(key: dict, service: str, actions: tuple[str, ...]) -> bool:
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        principal = statement.get("Principal", {})
        services = _as_list(principal.get("Service", [])) if isinstance(principal, dict) else []
        if service in services and all(_allows(statement, action) for action in actions):
            return True
    return False


def test_alarms_can_publish_to_their_topics(template):
    """CloudWatch publishes an alarm to an encrypted topic only if the key policy lets
    cloudwatch.amazonaws.com use kms:Decrypt and kms:GenerateDataKey*; the AWS managed key alias/aws/sns does
    not, and its policy cannot be changed
    (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services,
    https://repost.aws/knowledge-center/cloudwatch-configure-alarm-sns). moto delivers either way."""
    topics = resources_of(template, "AWS::SNS::Topic")
    alarmed = set()
    for alarm in resources_of(template, "AWS::CloudWatch::Alarm").values():
        for field in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            alarmed |= {_target(action) for action in alarm["Properties"].get(field, [])}
    assert alarmed and alarmed <= set(topics), alarmed
    for name in sorted(alarmed):
        key_name, key = _key_of(template, topics[name])
        if key is not None:
            assert _service_may_use(key, "cloudwatch.amazonaws.com", ("kms:Decrypt", "kms:GenerateDataKey")), (
                name,
                key_name,
            )


def test_the_notification_key_rotates_and_the_account_administers_it(template):
    """A key policy that does not give the account kms:* locks the key out of IAM
    (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-root-enable-iam);
    rotation is what checkov and AWS Security Hub ask of a customer managed key."""
    keys = resources_of(template, "AWS::KMS::Key")
    assert keys
    for name, key in keys.items():
        assert key["Properties"].get("EnableKeyRotation") is True, name
        admin = [
            s
            for s in key["Properties"]["KeyPolicy"]["Statement"]
            if isinstance(s.get("Principal"), dict)
            and "${AWS::AccountId}:root" in json.dumps(s["Principal"].get("AWS", ""))
            and _allows(s, "kms:PutKeyPolicy")
        ]
        assert admin, name


def test_every_publisher_may_use_the_key_of_the_topic_it_publishes_to(template):
    """A publisher to an encrypted topic needs kms:GenerateDataKey and kms:Decrypt on its key
    (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#send-to-encrypted-topic): the state
    machine's sns:publish fails with KMS.AccessDeniedException without them. moto does not check it."""
    topics = resources_of(template, "AWS::SNS::Topic")
    checked = 0
    for role_name, role in resources_of(template, "AWS::IAM::Role").items():
        statements = list(_role_statements(role))
        for statement in statements:
            if not _allows(statement, "sns:Publish"):
                continue
            for topic_name in filter(None, map(_target, _as_list(statement["Resource"]))):
                key_name, _ = _key_of(template, topics[topic_name])
                if key_name is None:
                    continue
                for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                    assert any(
                        _allows(s, action) and key_name in map(_target, _as_list(s["Resource"])) for s in statements
                    ), (role_name, topic_name, action)
                checked += 1
    assert checked


# ---------------------------------------------------------------- 4. X-Ray tracing

#: What a state machine's role needs to send traces (https://docs.aws.amazon.com/step-functions/latest/dg/xray-iam.html).
XRAY_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets")


def test_a_traced_state_machine_may_write_traces(template):
    """With TracingConfiguration enabled, Step Functions sends X-Ray segments as the state machine's role; AWS
    does not add the permissions to an existing role (https://docs.aws.amazon.com/step-functions/latest/dg/xray-iam.html)."""
    for name, machine in resources_of(template, "AWS::StepFunctions::StateMachine").items():
        if not machine["Properties"].get("TracingConfiguration", {}).get("Enabled"):
            continue
        role = template["Resources"][_target(machine["Properties"]["RoleArn"])]
        for action in XRAY_ACTIONS:
            assert any(_allows(s, action) and "*" in _as_list(s["Resource"]) for s in _role_statements(role)), (
                name,
                action,
            )


# ---------------------------------------------------------------- 5. error names in Retry and Catch

#: The error names Step Functions defines
#: (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html#error-handling-error-representation).
#: ``States.TaskFailed`` in a Retry or Catch matches every error name but ``States.Timeout``.
STATES_ERRORS = {
    "States.ALL",
    "States.BranchFailed",
    "States.DataLimitExceeded",
    "States.ExceedToleratedFailureThreshold",
    "States.HeartbeatTimeout",
    "States.Http.Socket",
    "States.IntrinsicFailure",
    "States.ItemReaderFailed",
    "States.NoChoiceMatched",
    "States.ParameterPathFailure",
    "States.Permissions",
    "States.QueryEvaluationError",
    "States.ResultPathMatchFailure",
    "States.ResultWriterFailed",
    "States.Runtime",
    "States.TaskFailed",
    "States.Timeout",
}

#: The error names each integration the ASL uses can raise, by task Resource.
#: - ecs:runTask.sync: a RunTask answered with a non-empty ``Failures`` fails the task with
#:   ``AmazonECS.Unknown`` (https://docs.aws.amazon.com/step-functions/latest/dg/connect-ecs.html). An error of
#:   the ECS API is ``ECS.`` + its name (the SDK integrations' rule,
#:   https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html): the exceptions RunTask
#:   lists (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html#API_RunTask_Errors), and
#:   throttling, which the Java SDK raises as ``AmazonECSException`` with the error code ``ThrottlingException``
#:   (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html). ECS raises no
#:   ``LimitExceededException`` for RunTask.
#: - lambda:invoke: https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html
#: - aws-sdk:s3:* and sns:publish: the ASL retries them with States.ALL only; name an error here, with its page,
#:   before retrying it by name.
INTEGRATION_ERRORS: dict[str, set[str]] = {
    "arn:aws:states:::ecs:runTask.sync": {"AmazonECS.Unknown", "ECS.AmazonECSException", "ECS.ThrottlingException"}
    | {
        f"ECS.{name}"
        for name in (
            "AccessDeniedException",
            "BlockedException",
            "ClientException",
            "ClusterNotFoundException",
            "ConflictException",
            "InvalidParameterException",
            "PlatformTaskDefinitionIncompatibilityException",
            "PlatformUnknownException",
            "ServerException",
            "UnsupportedFeatureException",
        )
    },
    "arn:aws:states:::lambda:invoke": {
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "Lambda.Unknown",
    },
    "arn:aws:states:::aws-sdk:s3:copyObject": set(),
    "arn:aws:states:::aws-sdk:s3:deleteObject": set(),
    "arn:aws:states:::sns:publish": set(),
}


def _states(states: dict[str, dict]) -> Iterator[tuple[str, dict]]:
    """Every state, those inside Map iterators and Parallel branches included."""
    for name, state in states.items():
        yield name, state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _states(processor["States"])
        for branch in state.get("Branches", []):
            yield from _states(branch["States"])


def _raised(state: dict) -> set[str]:
    """The integration error names a state can see: its own task's, or those of the tasks inside it."""
    if state["Type"] == "Task":
        assert state["Resource"] in INTEGRATION_ERRORS, f"{state['Resource']}: add its error names, with their page"
        return INTEGRATION_ERRORS[state["Resource"]]
    inner = [s for _, s in _states({"": state}) if s is not state and s["Type"] in ("Task", "Map", "Parallel")]
    return set().union(*map(_raised, inner)) if inner else set()


def test_every_retried_or_caught_error_is_one_the_integration_raises(definition):
    """ErrorEquals matches names exactly: a name no integration raises is a Retry that never fires."""
    for name, state in _states(definition["States"]):
        valid = STATES_ERRORS | _raised(state) if state["Type"] in ("Task", "Map", "Parallel") else STATES_ERRORS
        for handler in state.get("Retry", []) + state.get("Catch", []):
            for error in handler["ErrorEquals"]:
                assert error in valid, (name, error)


def test_a_run_task_that_starts_no_task_is_retried(definition):
    """RunTask answers 200 with ``Failures`` (no capacity, a placement failure) and ``.sync`` fails the state
    with AmazonECS.Unknown (https://docs.aws.amazon.com/step-functions/latest/dg/connect-ecs.html): a
    transient failure, retried with backoff before the States.TaskFailed retrier (the first matching one wins,
    https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html)."""
    tasks = [
        (n, s) for n, s in _states(definition["States"]) if s.get("Resource", "").startswith("arn:aws:states:::ecs")
    ]
    assert tasks
    for name, state in tasks:
        retriers = state["Retry"]
        named = [i for i, r in enumerate(retriers) if "AmazonECS.Unknown" in r["ErrorEquals"]]
        assert named and retriers[named[0]].get("MaxAttempts", 3) >= 2, name
        wildcards = [i for i, r in enumerate(retriers) if {"States.TaskFailed", "States.ALL"} & set(r["ErrorEquals"])]
        assert all(named[0] < i for i in wildcards), name


# ---------------------------------------------------------------- 6. the task-failure metric


def _term_matches(pattern: str, line: str) -> bool:
    """CloudWatch Logs' term filter on one log event: ``"a b" c`` needs every term in the event, ``?a ?"b c"``
    any of them; terms are case-sensitive, quoted ones literal
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html). JSON, space-delimited
    and regex patterns are not implemented here."""
    terms = re.findall(r'\??"[^"]*"|\S+', pattern)
    assert terms and "".join(terms).count('"') % 2 == 0, pattern
    optional = [t.startswith("?") for t in terms]
    assert all(optional) or not any(optional), f"mixed ? and plain terms: {pattern}"
    assert not any(t.lstrip("?").startswith(("-", "{", "[", "%")) for t in terms), f"not a term pattern: {pattern}"
    texts = [t.lstrip("?").strip('"') for t in terms]
    return any(t in line for t in texts) if all(optional) else all(t in line for t in texts)


#: A step run inside the ``ecom-pipeline notebook`` command (the task containers' command), with
#: ``notebooks.run_step`` replaced: {outcome} is what it does instead of running papermill.
_DRIVER = textwrap.dedent(
    """
    import sys
    from pipeline_tasks import cli, errors, notebooks

    def run_step(settings, step, parameters, **options):
        {outcome}

    notebooks.run_step = run_step
    sys.exit(cli.main(sys.argv[1:]))
    """
)
_SUCCESS = (
    "return notebooks.NotebookRun(execution_id='e1', step=step, notebook='10_validate', status='SUCCEEDED', "
    "started_at='2026-01-01T00:00:00+00:00', parameters={}, seconds={'execute': 12.5}, "
    "keys={'html': 'runs/e1/10_validate.html'})"
)
_ARGS = ["notebook", "validate", "--no-progress", "-p", "execution_id", "e1"]


def _cli_lines(tmp_path: Path, outcome: str | None, args: list[str], **env: str) -> tuple[int, list[str]]:
    """Exit code and the lines (stdout and stderr) of one ``ecom-pipeline`` run: what awslogs sends."""
    command = [str(Path(sys.executable).parent / "ecom-pipeline"), *args]
    if outcome is not None:
        command = [sys.executable, "-c", _DRIVER.format(outcome=outcome), *args]
    # The task's image holds the notebooks (the CLI checks a step's parameters against its notebook first).
    notebooks = {"PIPELINE_NOTEBOOKS_DIR": str(REPO / "notebooks")}
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")} | notebooks | env
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=120)
    return result.returncode, (result.stdout + result.stderr).splitlines()


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory) -> dict[str, tuple[int, list[str]]]:
    """The lines of a successful step and of each way a step fails before, in or after its notebook."""
    folder = tmp_path_factory.mktemp("cli")
    return {
        "success": _cli_lines(folder, _SUCCESS, _ARGS),
        "cell failed": _cli_lines(folder, "raise errors.StepFailed('ValueError in cell [4]: boom')", _ARGS),
        "kernel died": _cli_lines(folder, "raise errors.KernelDied('the kernel died')", _ARGS),
        "stopped (SIGTERM)": _cli_lines(folder, "raise KeyboardInterrupt('signal 15')", _ARGS),
        "no notebook": _cli_lines(folder, None, _ARGS, PIPELINE_NOTEBOOKS_DIR=str(folder / "missing")),
        "bad setting": _cli_lines(folder, None, _ARGS, PIPELINE_CELL_TIMEOUT="one hour"),
        "bad arguments": _cli_lines(folder, None, ["notebook", "validate", "-p", "execution_id"]),
    }


def test_the_task_failure_metric_counts_every_failed_step_and_no_successful_one(template, cli_runs):
    """A metric filter matches one log event, and awslogs makes each line a container prints one event
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using_awslogs.html, awslogs-multiline-pattern):
    the pattern must match a line the CLI prints on every failure, and none it prints on success."""
    filters = resources_of(template, "AWS::Logs::MetricFilter")
    task_groups = {
        _target(d["Properties"]["ContainerDefinitions"][0]["LogConfiguration"]["Options"]["awslogs-group"])
        for d in resources_of(template, "AWS::ECS::TaskDefinition").values()
    }
    watched = {_target(f["Properties"]["LogGroupName"]): f for f in filters.values()}
    assert task_groups and task_groups <= set(watched), (task_groups, set(watched))
    alarm = template["Resources"]["TaskFailuresAlarm"]["Properties"]
    for group in task_groups:
        properties = watched[group]["Properties"]
        [metric] = properties["MetricTransformations"]
        assert (metric["MetricNamespace"], metric["MetricName"]) == (alarm["Namespace"], alarm["MetricName"]), group
        pattern = properties["FilterPattern"]
        for case, (exit_code, lines) in cli_runs.items():
            matched = [line for line in lines if _term_matches(pattern, line)]
            if case == "success":
                assert exit_code == 0 and lines and not matched, (group, lines)
            else:
                assert exit_code != 0 and matched, (group, case, exit_code, lines)


@pytest.mark.parametrize(
    ("pattern", "line", "matched"),
    [
        ('"executed notebook:" "error:"', "error: StepFailed: boom", False),
        ('"executed notebook:" "error:"', "error: StepFailed: boom; executed notebook: s3://b/k", True),
        ('?"error:" ?Traceback', "Traceback (most recent call last):", True),
        ('?"error:" ?Traceback', "ERROR: upper case", False),
    ],
)
def test_the_filter_implementation(pattern, line, matched):
    assert _term_matches(pattern, line) is matched


# ---------------------------------------------------------------- 7. parliament over every IAM policy

ACCOUNT, REGION, PARTITION = "123456789012", "eu-west-1", "aws"

#: How ``!Ref`` and ``!GetAtt X.Arn`` of each resource type read on AWS, from its name (the CloudFormation
#: reference's "Return values" of each type). ``{name}`` is the resource's name property, or its logical id.
_REF = {
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{name}",
    "AWS::SQS::Queue": "https://sqs.{region}.amazonaws.com/{account}/{name}",
    "AWS::KMS::Key": "1234abcd-12ab-34cd-56ef-1234567890ab",
    "AWS::ECS::TaskDefinition": "arn:aws:ecs:{region}:{account}:task-definition/{name}:1",
    "AWS::StepFunctions::StateMachine": "arn:aws:states:{region}:{account}:stateMachine:{name}",
}
_ARN = {
    "AWS::S3::Bucket": "arn:aws:s3:::{name}",
    "AWS::SQS::Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "AWS::KMS::Key": "arn:aws:kms:{region}:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "AWS::Lambda::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::Logs::LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}:*",
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
    "AWS::ECR::Repository": "arn:aws:ecr:{region}:{account}:repository/{name}",
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "AWS::ECS::Cluster": "arn:aws:ecs:{region}:{account}:cluster/{name}",
}
_NAME_PROPERTIES = (
    "BucketName",
    "QueueName",
    "TopicName",
    "FunctionName",
    "LogGroupName",
    "TableName",
    "RepositoryName",
    "ClusterName",
    "StateMachineName",
    "Family",
)


class _Resolver:
    """Turns ``!Ref``, ``!GetAtt`` and ``!Sub`` into the values they take on AWS, for the prod environment."""

    def __init__(self, template: dict) -> None:
        self.template = template
        self.pseudo = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": PARTITION}
        self.parameters = {name: str(p.get("Default", name.lower())) for name, p in template["Parameters"].items()}

    def _name(self, logical_id: str) -> str:
        properties = self.template["Resources"][logical_id].get("Properties", {})
        found = next((properties[p] for p in _NAME_PROPERTIES if p in properties), logical_id)
        return str(self.value(found))

    def _format(self, pattern: str, logical_id: str) -> str:
        return pattern.format(region=REGION, account=ACCOUNT, name=self._name(logical_id))

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        kind = self.template["Resources"][name]["Type"]
        return self._format(_REF[kind], name) if kind in _REF else self._name(name)

    def attribute(self, logical_id: str, attribute: str) -> str:
        kind = self.template["Resources"][logical_id]["Type"]
        assert attribute == "Arn" and kind in _ARN, f"add {kind}.{attribute} to the resolver"
        return self._format(_ARN[kind], logical_id)

    def _sub(self, text: str, variables: dict) -> str:
        def one(match: re.Match) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.value(variables[name]))
            if "." in name:
                return self.attribute(*name.split(".", 1))
            return self.ref(name)

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            if "Ref" in value:
                return self.ref(value["Ref"])
            if "Fn::GetAtt" in value:
                attribute = value["Fn::GetAtt"]
                return self.attribute(*(attribute if isinstance(attribute, list) else attribute.split(".", 1)))
            if "Fn::Sub" in value:
                sub = value["Fn::Sub"]
                return self._sub(sub, {}) if isinstance(sub, str) else self._sub(sub[0], sub[1])
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value


def _policies(template: dict) -> Iterator[tuple[str, dict]]:
    """Every policy document of the template: role trust and inline policies, resource and key policies."""
    for name, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        for field in ("AssumeRolePolicyDocument", "PolicyDocument", "KeyPolicy"):
            if field in properties:
                yield f"{name}.{field}", properties[field]
        for policy in properties.get("Policies", []):
            yield f"{name}.{policy['PolicyName']}", policy["PolicyDocument"]


#: parliament findings we keep, by (policy, a pattern of its name; issue), each with why.
PARLIAMENT_ALLOWED: dict[tuple[str, str], str] = {
    ("*.AssumeRolePolicyDocument", "MALFORMED"): "parliament reads a trust policy as an identity policy, which "
    "needs a Resource; a trust policy has none",
    ("TaskExecutionRole.pull-and-log", "CREDENTIALS_EXPOSURE"): "ecr:GetAuthorizationToken: ECS pulls the task "
    "images from ECR with it",
    ("OrchestratorRole.orchestrate", "RESOURCE_MISMATCH"): "states:ListExecutions takes a state machine or a map "
    "run; parliament asks for both, the orchestrator lists the state machine's",
    ("StateMachineRole.run-pipeline", "PERMISSIONS_MANAGEMENT_ACTIONS"): "iam:PassRole of the two task roles to "
    "RunTask, logs:PutResourcePolicy for the vended execution logs: both required by Step Functions",
    ("NotificationKey.KeyPolicy", "PERMISSIONS_MANAGEMENT_ACTIONS"): "kms:* for the account root: AWS's default "
    "key policy, without which IAM policies cannot grant the key's use",
    ("NotificationKey.KeyPolicy", "RESOURCE_STAR"): 'in a key policy, Resource "*" means this key '
    "(https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html)",
}


def _allowed(name: str, issue: str) -> tuple[str, str] | None:
    return next((key for key in PARLIAMENT_ALLOWED if key[1] == issue and fnmatch.fnmatchcase(name, key[0])), None)


def test_parliament_finds_nothing_new_in_any_policy(template):
    """parliament (duo-labs, pinned in pyproject.toml) checks actions, resource formats, condition keys and
    principals against its copy of the IAM reference, offline; a finding is fixed or allowed above with its reason."""
    import parliament

    resolver = _Resolver(template)
    documents = dict(_policies(template))
    assert len(documents) >= 10
    findings: dict[tuple[str, str], str] = {}
    for name, document in documents.items():
        policy = parliament.analyze_policy_string(json.dumps(resolver.value(document)), include_community_auditors=True)
        findings |= {(name, f.issue): f"{f.detail} {f.location}" for f in policy.findings}
    new = {key: detail for key, detail in findings.items() if _allowed(*key) is None}
    assert not new, new
    stale = set(PARLIAMENT_ALLOWED) - {_allowed(*key) for key in findings}
    assert not stale, f"allowed findings parliament no longer reports: {sorted(stale)}"
