"""The local stack, created from infra/pipeline.yaml itself on the emulator's CloudFormation.

There is one description of the infrastructure: the template that ``make deploy`` sends to
AWS. Locally it goes to the emulator (moto's CloudFormation, completed by
``pipeline_tasks.local.moto_cloudformation`` where moto skips a type or drops a property),
so names, settings, the state machine definition and its substitutions, environment
variables and IAM policies are the template's. What this adapter does, and nothing else:

1. **Package**, as ``aws cloudformation package`` does: a Lambda ``Code`` that is a local
   folder is zipped and uploaded to the artifacts bucket of the bootstrap stack
   (infra/bootstrap.yaml, deployed first, as ``make bootstrap`` does), and the state machine's local
   ``DefinitionS3Location`` file is uploaded; both become S3 locations.
2. **Overlay what differs on this machine** (``local_environment``): variables the template
   does not set, e.g. where the Spark jars are or a test's smaller chunk size, are added to
   every task container's and Lambda function's environment. A variable the template sets
   keeps the template's value. The endpoint and the role's credentials are what the
   emulator gives each task and function (as Fargate and Lambda do), not variables here.
3. **Read the stack** back into ``Settings`` (bucket, queue, tables, state machine,
   functions, topics, cluster) from its outputs and resources.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from pipeline_tasks.errors import StackError
from pipeline_tasks.io import aws
from pipeline_tasks.settings import Settings

REPO = Path(__file__).resolve().parents[2]
#: The pipeline's infrastructure, as deployed to AWS.
TEMPLATE = REPO / "infra" / "pipeline.yaml"
#: What exists before the first deployment: the image repositories and the artifacts bucket.
BOOTSTRAP = REPO / "infra" / "bootstrap.yaml"
#: Parameters of a local deployment (the image tags name no image: tasks run from the working tree).
PARAMETERS = {"ValidatorImageTag": "local", "StagingImageTag": "local", "TransformerImageTag": "local"}
ALERT_EMAIL = "alerts@example.com"


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as plain JSON data (CloudFormation's short tags in their long form)."""
    from cfnlint.decode import cfn_yaml

    data: dict[str, Any] = json.loads(json.dumps(cfn_yaml.load(str(path))))
    return data


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


def package(template: dict[str, Any], base: Path, s3: Any, bucket: str, prefix: str) -> dict[str, Any]:
    """Local paths uploaded and replaced by their S3 locations, as ``aws cloudformation package`` does."""
    packaged = json.loads(json.dumps(template))
    for name, resource in resources_of(packaged, "AWS::Lambda::Function").items():
        code = resource["Properties"].get("Code")
        if isinstance(code, str):
            key = f"{prefix}/{name}.zip"
            s3.put_object(Bucket=bucket, Key=key, Body=_zip(base / code))
            resource["Properties"]["Code"] = {"S3Bucket": bucket, "S3Key": key}
    for name, resource in resources_of(packaged, "AWS::StepFunctions::StateMachine").items():
        location = resource["Properties"].get("DefinitionS3Location")
        if isinstance(location, str):
            key = f"{prefix}/{name}.asl.json"
            s3.put_object(Bucket=bucket, Key=key, Body=(base / location).read_bytes())
            resource["Properties"]["DefinitionS3Location"] = {"Bucket": bucket, "Key": key}
    return packaged


def _zip(folder: Path) -> bytes:
    """What the local functions run: the working tree's ``pipeline_tasks``, zipped.

    (On AWS ``folder`` is the package ``make lambda-package`` builds, SDK included; locally the
    emulator runs the handlers from the working tree, so the upload only has to be a package.)
    """
    source = REPO / "pipeline_tasks"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*.py")):
            archive.write(path, path.relative_to(source.parent).as_posix())
    return buffer.getvalue()


def local_environment(settings: Settings) -> dict[str, str]:
    """The ``PIPELINE_*`` variables of ``settings`` that differ from the defaults (this machine's choices)."""
    defaults = Settings().to_env()
    return {
        name: value
        for name, value in settings.to_env().items()
        if name.startswith("PIPELINE_") and defaults.get(name) != value
    }


def overlay(template: dict[str, Any], variables: dict[str, str]) -> dict[str, Any]:
    """``variables`` added to every task container's and function's environment, the template's values winning."""
    result = json.loads(json.dumps(template))
    for resource in resources_of(result, "AWS::ECS::TaskDefinition").values():
        for container in resource["Properties"]["ContainerDefinitions"]:
            environment = container.setdefault("Environment", [])
            present = {entry["Name"] for entry in environment}
            environment += [{"Name": k, "Value": v} for k, v in sorted(variables.items()) if k not in present]
    for resource in resources_of(result, "AWS::Lambda::Function").values():
        environment = resource["Properties"].setdefault("Environment", {}).setdefault("Variables", {})
        for name, value in sorted(variables.items()):
            environment.setdefault(name, value)
    return result


def deploy(
    settings: Settings,
    environment_name: str = "local",
    *,
    template: Path = TEMPLATE,
    edit: Any = None,
) -> Settings:
    """Create the stacks ``ecom-pipeline-ENVIRONMENT-bootstrap`` and ``ecom-pipeline-ENVIRONMENT`` (from
    ``template``), as ``make bootstrap`` and ``make deploy`` do; return Settings that name the pipeline.

    Args:
        settings: Points at the emulator; its non-default ``PIPELINE_*`` values are overlaid.
        environment_name: The template's ``EnvironmentName`` (part of every resource name), so
            that several stacks can share one emulator.
        edit: Optional function that changes the loaded template before it is deployed (a
            test removes a permission with it).
    """
    settings = settings.with_absolute_paths()
    stack_name = f"ecom-pipeline-{environment_name}"
    cloudformation = aws.client(settings, "cloudformation")
    bootstrap = create_stack(
        cloudformation, f"{stack_name}-bootstrap", load(BOOTSTRAP), {"EnvironmentName": environment_name}
    )
    artifacts = bootstrap["ArtifactBucketName"]
    body = load(template)
    if edit is not None:
        body = edit(body) or body
    s3 = aws.client(settings, "s3")
    body = overlay(package(body, template.parent, s3, artifacts, stack_name), local_environment(settings))
    parameters = {"EnvironmentName": environment_name, "AlertEmail": ALERT_EMAIL, **PARAMETERS}
    outputs = create_stack(cloudformation, stack_name, body, parameters)
    return stack_settings(settings, outputs, physical_ids(cloudformation, stack_name))


def create_stack(cloudformation: Any, name: str, body: dict[str, Any], parameters: dict[str, str]) -> dict[str, str]:
    """Create the stack ``name`` (moto creates it before answering); its outputs."""
    try:
        cloudformation.create_stack(
            StackName=name,
            TemplateBody=json.dumps(body),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
    except cloudformation.exceptions.ClientError as error:
        raise StackError(f"the local stack {name} was not created: {error}") from error
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise StackError(f"the local stack {name} is {stack['StackStatus']}: {stack.get('StackStatusReason', '')}")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def physical_ids(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """The physical id of each resource of the stack, by logical id (a role's generated name…)."""
    resources = cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}


def stack_settings(settings: Settings, outputs: dict[str, str], physical: dict[str, str]) -> Settings:
    """Settings that name the resources of a pipeline stack, from its outputs and physical ids."""

    def last(value: str, separator: str) -> str:
        return value.rsplit(separator, 1)[-1]

    return settings.with_overrides(
        bucket=outputs["BucketName"],
        queue_url=outputs["QueueUrl"],
        queue_name=last(outputs["QueueUrl"], "/"),
        dead_letter_queue_name=last(outputs["DeadLetterQueueUrl"], "/"),
        state_machine_arn=outputs["StateMachineArn"],
        state_machine_name=last(outputs["StateMachineArn"], ":"),
        order_kpis_table=outputs["OrderKPIsTable"],
        category_kpis_table=outputs["CategoryKPIsTable"],
        success_topic_name=last(physical["SuccessTopic"], ":"),
        failure_topic_name=last(physical["FailureTopic"], ":"),
        cluster_name=last(physical["Cluster"], "/"),
        orchestrator_function_name=physical["OrchestratorFunction"],
        read_result_function_name=physical["ReadResultFunction"],
    )
