"""infra/pipeline.yaml: cfn-lint clean, every resource the product needs, names and settings of the local stack."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_tasks.local import template as local_template
from pipeline_tasks.local.template import resources_of
from pipeline_tasks.settings import Settings

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "infra" / "pipeline.yaml"
DEFINITION = REPO / "statemachine" / "pipeline.asl.json"
#: Statements that need ``Resource: "*"`` because their API has no resource-level permissions.
UNSCOPABLE = {"EcrToken", "VendedLogs", "Tracing"}


@pytest.fixture(scope="module")
def template() -> dict:
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(TEMPLATE))


def _name(value: object) -> str:
    """A ``!Sub "name-${EnvironmentName}"`` without the environment suffix."""
    text = value["Fn::Sub"] if isinstance(value, dict) else str(value)
    return text.replace("-${EnvironmentName}", "").replace("/${EnvironmentName}", "")


def test_cfn_lint_is_clean():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), *map(str, sorted((REPO / "infra").glob("*.yaml")))],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_the_template_holds_every_resource_of_the_product(template):
    kinds = [r["Type"] for r in template["Resources"].values()]
    for kind, count in {
        "AWS::S3::Bucket": 1,
        "AWS::S3::BucketPolicy": 1,
        "AWS::SQS::Queue": 2,
        "AWS::SQS::QueuePolicy": 1,
        "AWS::DynamoDB::Table": 2,
        "AWS::SNS::Topic": 2,
        "AWS::KMS::Key": 1,
        "AWS::SNS::Subscription": 2,
        "AWS::ECS::Cluster": 1,
        "AWS::ECS::TaskDefinition": 3,
        "AWS::Lambda::Function": 2,
        "AWS::StepFunctions::StateMachine": 1,
        "AWS::Scheduler::Schedule": 1,
        "AWS::CloudWatch::Alarm": 4,
        "AWS::Logs::MetricFilter": 3,
    }.items():
        assert kinds.count(kind) == count, kind
    assert set(template["Parameters"]) >= {
        "EnvironmentName",
        "ValidatorImageTag",
        "StagingImageTag",
        "TransformerImageTag",
        "AlertEmail",
    }


def test_the_bucket_is_private_encrypted_tls_only_and_expires_its_outputs(template):
    [bucket] = resources_of(template, "AWS::S3::Bucket").values()
    properties = bucket["Properties"]
    assert all(properties["PublicAccessBlockConfiguration"].values())
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    prefixes = {rule.get("Prefix") for rule in properties["LifecycleConfiguration"]["Rules"]}
    assert {"archive/", "rejected/", "runs/"} <= prefixes
    [notification] = properties["NotificationConfiguration"]["QueueConfigurations"]
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": Settings().input_prefix}]
    [policy] = resources_of(template, "AWS::S3::BucketPolicy").values()
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"]["Bool"]["aws:SecureTransport"] == "false"


def _resource_text(resource: object) -> str:
    """``!Sub "${DataBucket.Arn}/input/*"`` as its text, ``!GetAtt DataBucket.Arn`` as ``DataBucket.Arn``."""
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        return str(resource["Fn::Sub"])
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        return ".".join(resource["Fn::GetAtt"])
    return str(resource)


def _allowed(role: dict, action: str, resource: str) -> bool:
    """Whether a role's policies allow ``action`` on exactly ``resource`` (as ``_resource_text`` writes it)."""
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if action in actions and resource in map(_resource_text, resources):
                return True
    return False


def test_the_bucket_keeps_versions_for_pinned_batches_and_expires_the_old_ones(template):
    [bucket] = resources_of(template, "AWS::S3::Bucket").values()
    properties = bucket["Properties"]
    assert properties["VersioningConfiguration"]["Status"] == "Enabled"
    [rule] = [r for r in properties["LifecycleConfiguration"]["Rules"] if "NoncurrentVersionExpiration" in r]
    assert rule["Status"] == "Enabled" and "Prefix" not in rule
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] <= 30
    assert rule["ExpiredObjectDeleteMarker"] is True


def test_every_actor_may_read_or_delete_the_versions_it_pins(template):
    roles = template["Resources"]
    bucket, objects = "DataBucket.Arn", "${DataBucket.Arn}/"
    # The tasks read the pinned version; the orchestrator asks whether it is still there,
    # and may list the bucket so that a missing key answers 404, not 403.
    assert _allowed(roles["TaskRole"], "s3:GetObjectVersion", objects + "*")
    assert _allowed(roles["OrchestratorRole"], "s3:GetObjectVersion", objects + "input/*")
    assert _allowed(roles["OrchestratorRole"], "s3:ListBucket", bucket)
    # Read-Validation-Result looks at the destinations and lists the older versions.
    for action in ("s3:ListBucket", "s3:ListBucketVersions"):
        assert _allowed(roles["ReadResultRole"], action, bucket)
    for prefix in ("archive/*", "rejected/*"):
        assert _allowed(roles["ReadResultRole"], "s3:GetObject", objects + prefix)
        assert _allowed(roles["StateMachineRole"], "s3:PutObject", objects + prefix)
    # The state machine copies a version and deletes exactly the versions moved.
    for action in ("s3:GetObjectVersion", "s3:DeleteObjectVersion"):
        assert _allowed(roles["StateMachineRole"], action, objects + "input/*")


def test_names_and_settings_match_the_local_stack(template):
    settings = Settings()
    resources = template["Resources"]
    queues = {_name(r["Properties"]["QueueName"]): r for r in resources_of(template, "AWS::SQS::Queue").values()}
    assert set(queues) == {settings.queue_name, settings.dead_letter_queue_name}
    queue = queues[settings.queue_name]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == settings.max_receive_count
    assert queue["VisibilityTimeout"] == settings.visibility_timeout
    topics = {_name(r["Properties"]["TopicName"]) for r in resources_of(template, "AWS::SNS::Topic").values()}
    assert topics == {settings.success_topic_name, settings.failure_topic_name}
    tables = {_name(r["Properties"]["TableName"]): r for r in resources_of(template, "AWS::DynamoDB::Table").values()}
    assert set(tables) == {settings.order_kpis_table, settings.category_kpis_table}
    for table in tables.values():
        assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
        assert table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    [index] = tables[settings.category_kpis_table]["Properties"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == settings.category_by_date_index
    assert _name(resources["Cluster"]["Properties"]["ClusterName"]) == settings.cluster_name
    functions = {
        _name(r["Properties"]["FunctionName"]) for r in resources_of(template, "AWS::Lambda::Function").values()
    }
    assert functions == {settings.orchestrator_function_name, settings.read_result_function_name}
    machine = resources["StateMachine"]["Properties"]
    assert _name(machine["StateMachineName"]) == settings.state_machine_name
    tasks = {}
    for definition in resources_of(template, "AWS::ECS::TaskDefinition").values():
        properties = definition["Properties"]
        [container] = properties["ContainerDefinitions"]
        tasks[_name(properties["Family"])] = (
            container["Name"],
            container["Command"][2],
            container["Cpu"],
            container["Memory"],
        )
        assert properties["RequiresCompatibilities"] == ["FARGATE"] and properties["NetworkMode"] == "awsvpc"
    assert {family: task[:2] for family, task in tasks.items()} == {
        "validator-task": ("validator", "validate"),
        "staging-task": ("staging", "stage"),
        "transformer-task": ("transformer", "transform"),
    }
    assert tasks["transformer-task"][2] >= 1024 and tasks["transformer-task"][3] >= 4096


def test_the_state_machine_deployed_is_the_one_the_local_stack_runs(template):
    machine = template["Resources"]["StateMachine"]["Properties"]
    assert (TEMPLATE.parent / machine["DefinitionS3Location"]).resolve() == DEFINITION.resolve()
    assert local_template.TEMPLATE.resolve() == TEMPLATE.resolve()  # the local stack is this template
    placeholders = set(re.findall(r"\$\{(\w+)\}", DEFINITION.read_text()))
    assert set(machine["DefinitionSubstitutions"]) == placeholders
    json.loads(DEFINITION.read_text())


def test_every_iam_statement_is_scoped(template):
    for name, role in resources_of(template, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert all("*" not in action for action in actions), (name, actions)
                resources = (
                    statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                )
                if "*" in resources:
                    assert statement.get("Sid") in UNSCOPABLE, (name, statement)


@pytest.mark.parametrize("step", ["validate", "stage", "transform"])
def test_the_command_of_each_task_definition_exists_and_starts(template, step):
    commands = [
        r["Properties"]["ContainerDefinitions"][0]["Command"]
        for r in resources_of(template, "AWS::ECS::TaskDefinition").values()
    ]
    [command] = [c for c in commands if c[2] == step]
    result = subprocess.run(
        [str(Path(sys.executable).parent / command[0]), *command[1:]], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert "execution_id" in result.stdout


CHECKOV = REPO / ".tools" / "checkov" / "bin" / "checkov"


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov not installed (make setup installs it in .tools/checkov)")
def test_checkov_finds_no_failed_check():
    result = subprocess.run(
        [str(CHECKOV), "-d", str(REPO / "infra"), "-d", str(REPO / "containers"), "--compact", "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "Failed checks: 0" in result.stdout


def test_every_skipped_check_is_justified_in_place(template):
    skipped = 0
    for name, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) > 30, (name, skip)
            skipped += 1
    assert skipped > 0


def test_the_category_row_rule_fits_every_key_the_category_is_in_dynamodb(template):
    """AWS refuses a write whose key attribute is over its limit (partition key 2,048 bytes, sort key
    1,024, in the table and in every index); moto does not check it. The row rule must fit them all."""
    from pipeline_tasks.contract import CATEGORY_MAX_BYTES

    [table] = [t for t in resources_of(template, "AWS::DynamoDB::Table").values() if "category" in json.dumps(t)]
    properties = table["Properties"]
    schemas = [properties["KeySchema"]] + [index["KeySchema"] for index in properties.get("GlobalSecondaryIndexes", [])]
    limits = {"HASH": 2048, "RANGE": 1024}
    roles = [key["KeyType"] for schema in schemas for key in schema if key["AttributeName"] == "category"]
    assert sorted(roles) == ["HASH", "RANGE"]  # the table's partition key, the day index's sort key
    assert min(limits[role] for role in roles) == CATEGORY_MAX_BYTES
