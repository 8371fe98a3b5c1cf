"""The local stack: a moto server process on 127.0.0.1 standing in for AWS."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from pipeline_tasks.errors import StackError
from pipeline_tasks.io import dynamodb
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.local.process import ServerProcess, free_port
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps.transform import category_kpis_spec, order_kpis_spec

log = logging.getLogger(__name__)

#: Credentials moto accepts; never real ones.
LOCAL_KEY_ID = "testing"
LOCAL_SECRET = "testing"


class MotoServer:
    """A moto server process on a free 127.0.0.1 port; stops with the context."""

    def __init__(
        self,
        port: int | None = None,
        startup_timeout: float = 30.0,
        *,
        emulator: bool = False,
        workdir: Path | None = None,
        log_dir: Path | None = None,
    ) -> None:
        """A plain moto server, or with ``emulator`` the local AWS of the whole pipeline
        (moto plus ``moto_workarounds``: ECS tasks and Lambda functions really run)."""
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        module = "pipeline_tasks.local.emulator" if emulator else "moto.server"
        command = [sys.executable, "-m", module, "-H", "127.0.0.1", "-p", str(self.port)]
        # moto's Step Functions interpreter calls the other services at localhost:$MOTO_PORT.
        env = dict(os.environ, MOTO_PORT=str(self.port))
        if workdir is not None:
            env["PIPELINE_LOCAL_WORKDIR"] = str(workdir)
        if log_dir is not None:
            env["PIPELINE_LOCAL_LOG_DIR"] = str(log_dir)
        self.server = ServerProcess("moto", command, env)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):
                return True
        except OSError:
            return False

    def start(self) -> MotoServer:
        self.server.start(self._answers, self.startup_timeout)
        log.info("moto server listening on %s", self.endpoint)
        self._configure(self.endpoint)
        return self

    @staticmethod
    def _configure(endpoint: str) -> None:
        """moto runs Step Functions executions only when told to (its config API)."""
        config = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
        request = urllib.request.Request(
            f"{endpoint}/moto-api/config",
            data=json.dumps(config).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        self.server.stop(timeout=10)

    def settings(self, base: Settings | None = None) -> Settings:
        """Settings that point every AWS client (and Spark's S3A) at this server."""
        return (base or Settings()).with_overrides(
            aws_endpoint_url=self.endpoint,
            aws_access_key_id=LOCAL_KEY_ID,
            aws_secret_access_key=LOCAL_SECRET,
        )

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def provision(settings: Settings) -> None:
    """Create the bucket (versioned, as on AWS: batches pin versions) and the KPI tables (what infra/ creates)."""
    s3 = s3io.client(settings, "s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if settings.bucket not in existing:
        s3.create_bucket(Bucket=settings.bucket)
    s3.put_bucket_versioning(Bucket=settings.bucket, VersioningConfiguration={"Status": "Enabled"})
    client = s3io.client(settings, "dynamodb")
    for spec in (order_kpis_spec(settings), category_kpis_spec(settings)):
        dynamodb.ensure_table(client, spec)


#: The state machine definition, as deployed by infra/ (CloudFormation DefinitionSubstitutions).
DEFINITION = Path("statemachine") / "pipeline.asl.json"
#: The ECS task definitions: family -> (container name, step it runs, cpu, memory).
TASKS = {
    "validator-task": ("validator", "validate", 512, 1024),
    "staging-task": ("staging", "stage", 1024, 4096),
    "transformer-task": ("transformer", "transform", 2048, 8192),
}
_LOCAL_ROLE = "ecom-pipeline-local"


def render_definition(template: str, values: dict[str, str]) -> str:
    """Substitute ``${Name}`` placeholders as CloudFormation's DefinitionSubstitutions does."""
    import re

    missing = sorted(set(re.findall(r"\$\{(\w+)\}", template)) - set(values))
    if missing:
        raise StackError(f"no value for {', '.join(missing)} in the state machine definition")
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], template)


def provision_pipeline(settings: Settings, definition: Path = DEFINITION) -> Settings:
    """Create everything infra/ creates, on the local stack; return Settings that name it.

    The bucket and tables; the queue with its DLQ and redrive policy and the bucket's
    ``input/`` notification to it; the success and failure topics; a VPC for the
    awsvpc tasks; the cluster and the three task definitions (their container runs
    ``ecom-pipeline notebook STEP`` with the stack's settings in its environment); both
    Lambda functions (served by ``pipeline_tasks.handlers``); the state machine.
    """
    provision(settings)
    settings = settings.with_absolute_paths()
    sqs, s3 = s3io.client(settings, "sqs"), s3io.client(settings, "s3")
    dlq_url = sqs.create_queue(QueueName=settings.dead_letter_queue_name)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(settings.max_receive_count)}
    queue_url = sqs.create_queue(
        QueueName=settings.queue_name,
        Attributes={"RedrivePolicy": json.dumps(redrive), "VisibilityTimeout": str(settings.visibility_timeout)},
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=settings.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": settings.input_prefix}]}},
                }
            ]
        },
    )
    sns = s3io.client(settings, "sns")
    success = sns.create_topic(Name=settings.success_topic_name)["TopicArn"]
    failure = sns.create_topic(Name=settings.failure_topic_name)["TopicArn"]

    iam = s3io.client(settings, "iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    try:
        role = iam.create_role(RoleName=_LOCAL_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName=_LOCAL_ROLE)["Role"]["Arn"]

    ec2 = s3io.client(settings, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="ecom-pipeline-tasks", Description="tasks", VpcId=vpc)["GroupId"]

    ecs = s3io.client(settings, "ecs")
    cluster = ecs.create_cluster(clusterName=settings.cluster_name)["cluster"]["clusterArn"]
    task_env = [{"name": k, "value": v} for k, v in sorted(settings.to_env().items())]
    task_arns = {}
    for family, (container, step, cpu, memory) in TASKS.items():
        registered = ecs.register_task_definition(
            family=family,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu=str(cpu),
            memory=str(memory),
            executionRoleArn=role,
            taskRoleArn=role,
            containerDefinitions=[
                {
                    "name": container,
                    "image": f"ecom-pipeline-{container}:local",
                    "essential": True,
                    "cpu": cpu,
                    "memory": memory,
                    "command": ["ecom-pipeline", "notebook", step, "--help"],
                    "environment": task_env,
                }
            ],
        )
        task_arns[family] = registered["taskDefinition"]["taskDefinitionArn"]

    lambda_client = s3io.client(settings, "lambda")
    functions = {}
    for name, module in (
        (settings.orchestrator_function_name, "pipeline_tasks.handlers.orchestrator"),
        (settings.read_result_function_name, "pipeline_tasks.handlers.read_validation_result"),
    ):
        variables = settings.to_env() | {"PIPELINE_HANDLER": f"{module}:handle"}
        try:
            created = lambda_client.create_function(
                FunctionName=name,
                Runtime="python3.11",
                Role=role,
                Handler=f"{module}.handler",
                Code={"ZipFile": _empty_zip()},
                Timeout=300,
                Environment={"Variables": variables},
            )
            functions[name] = created["FunctionArn"]
        except lambda_client.exceptions.ResourceConflictException:
            functions[name] = lambda_client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]

    values = {
        "ClusterArn": cluster,
        "ValidatorTaskDefinitionArn": task_arns["validator-task"],
        "StagingTaskDefinitionArn": task_arns["staging-task"],
        "TransformerTaskDefinitionArn": task_arns["transformer-task"],
        "SubnetA": subnet,
        "SubnetB": subnet,
        "SecurityGroupId": group,
        "AssignPublicIp": "DISABLED",
        "ReadValidationResultFunctionArn": functions[settings.read_result_function_name],
        "SuccessTopicArn": success,
        "FailureTopicArn": failure,
        "BucketName": settings.bucket,
    }
    sfn = s3io.client(settings, "stepfunctions")
    machine = sfn.create_state_machine(
        name=settings.state_machine_name,
        definition=render_definition(definition.read_text(), values),
        roleArn=role,
    )["stateMachineArn"]
    named = settings.with_overrides(queue_url=queue_url, state_machine_arn=machine)
    # The orchestrator's environment must name the state machine and queue it was given.
    lambda_client.update_function_configuration(
        FunctionName=settings.orchestrator_function_name,
        Environment={"Variables": named.to_env() | {"PIPELINE_HANDLER": "pipeline_tasks.handlers.orchestrator:handle"}},
    )
    return named


def _empty_zip() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "served locally by pipeline_tasks.handlers")
    return buffer.getvalue()


#: Where ``ecom-pipeline local up`` records the stack it started (relative to the working directory).
STATE_DIR = Path(".local-stack")


def up(base: Settings | None = None, *, state_dir: Path = STATE_DIR) -> dict[str, Any]:
    """Start a detached local stack (the emulator) and provision the pipeline on it."""
    state_file = state_dir / "stack.json"
    if state_file.exists():
        current = json.loads(state_file.read_text())
        if _alive(current["pid"]):
            raise StackError(f"a local stack already runs at {current['endpoint']} (ecom-pipeline local down stops it)")
    state_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = dict(
        os.environ,
        MOTO_PORT=str(port),
        PIPELINE_LOCAL_WORKDIR=str(Path.cwd()),
        PIPELINE_LOCAL_LOG_DIR=str((state_dir / "task-logs").resolve()),
    )
    command = [sys.executable, "-m", "pipeline_tasks.local.emulator", "-H", "127.0.0.1", "-p", str(port)]
    with (state_dir / "emulator.log").open("ab") as log_file:
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    server = MotoServer(port=port)
    server.server.process = None  # not ours to stop: the stack outlives this command
    deadline = time.monotonic() + 30
    while not server._answers():
        if process.poll() is not None or time.monotonic() > deadline:
            raise StackError(f"the local stack did not start; see {state_dir / 'emulator.log'}")
        time.sleep(0.2)
    MotoServer._configure(server.endpoint)
    settings = provision_pipeline(server.settings(base))
    state = {"pid": process.pid, "endpoint": server.endpoint, "env": settings.to_env()}
    state_file.write_text(json.dumps(state, indent=2) + "\n")
    return state


def attached(state_dir: Path = STATE_DIR) -> dict[str, Any] | None:
    """The running stack ``local up`` started from this folder, if any."""
    state_file = state_dir / "stack.json"
    if not state_file.exists():
        return None
    state: dict[str, Any] = json.loads(state_file.read_text())
    return state if _alive(state["pid"]) else None


def attached_settings(environ: dict[str, str] | None = None, state_dir: Path = STATE_DIR) -> Settings:
    """Settings from the environment, pointed at the ``local up`` stack when one runs and no endpoint is set."""
    env = dict(os.environ if environ is None else environ)
    state = attached(state_dir)
    if state is None or env.get("AWS_ENDPOINT_URL"):
        return Settings.from_env(env)
    overrides = {k: v for k, v in env.items() if k.startswith("PIPELINE_")}
    return Settings.from_env({**state["env"], **overrides})


def down(state_dir: Path = STATE_DIR) -> bool:
    """Stop the ``local up`` stack; False when none was running."""
    state_file = state_dir / "stack.json"
    if not state_file.exists():
        return False
    state = json.loads(state_file.read_text())
    running = _alive(state["pid"])
    if running:
        os.killpg(state["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _alive(state["pid"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(state["pid"]):
            os.killpg(state["pid"], signal.SIGKILL)
    state_file.unlink()
    return running


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not reaped) counts as gone.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())
