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
   task's container command as a local process with the task definition's and the
   override's environment, then records the real exit code and stops the task — so
   the state machine sees what a Fargate task would report.
3. **Lambda functions that really run.** Without Docker moto's ``Invoke`` returns a
   canned payload. A function whose environment names ``PIPELINE_HANDLER``
   (``module:function``) is served by calling that function in this process with the
   Settings of the function's environment; an exception becomes a function error
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
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MOTO_VERSION = "5.2.5"
HANDLER_VARIABLE = "PIPELINE_HANDLER"
#: Ticks an ECS task would need to leave RUNNING by itself: never.
_FROZEN = 10**9


def check() -> None:
    """Fail loudly when the moto internals the workarounds rely on are not as expected."""
    import moto
    from moto.awslambda.models import LambdaBackend
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
    if problems:
        raise RuntimeError("moto changed under the local stack's workarounds: " + "; ".join(problems))


def _source(function: Any) -> str:
    import inspect

    return inspect.getsource(function)


def apply(*, workdir: Path, log_dir: Path) -> EcsAgent:
    """Apply the workarounds; return the (started) ECS agent."""
    check()
    _decode_copy_sources()
    _name_versions_in_s3_events()
    _name_network_interfaces()
    _normalise_ecs_integration()
    _serve_lambda_handlers()
    _freeze_ecs_tasks()
    agent = EcsAgent(workdir=workdir, log_dir=log_dir)
    agent.start()
    return agent


def copy_source_as_dict(source: str) -> dict[str, str] | None:
    """An encoded ``bucket/key[?versionId=v]`` as boto3's dict form; None when it is not validly encoded.

    Valid means what AWS requires: only unreserved characters, ``/`` and ``%XX``
    escapes before ``?versionId=`` (a raw space, ``#`` or non-ASCII character is not).
    """
    import re
    from urllib.parse import unquote

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


def _serve_lambda_handlers() -> None:
    from moto.awslambda.models import LambdaBackend
    from moto.awslambda_simple.models import LambdaSimpleBackend

    from pipeline_tasks.settings import Settings

    def serve(original: Any) -> Any:
        def invoke(
            self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
        ) -> str | bytes | None:
            function = self.get_function(function_name, qualifier)
            target = (function.environment_vars or {}).get(HANDLER_VARIABLE)
            if not target:
                return original(self, function_name, qualifier, body, headers, response_headers)  # type: ignore[no-any-return]
            module_name, function_name_ = target.split(":")
            handle = getattr(importlib.import_module(module_name), function_name_)
            event = json.loads(body) if body else {}
            try:
                result = handle(event, Settings.from_env(function.environment_vars))
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


class EcsAgent(threading.Thread):
    """Runs the container command of every new ECS task as a local process, then stops the task."""

    def __init__(self, *, workdir: Path, log_dir: Path, interval: float = 0.2) -> None:
        super().__init__(name="local-ecs-agent", daemon=True)
        self.workdir = workdir
        self.log_dir = log_dir
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
        env = dict(os.environ)
        env.update({e["name"]: e["value"] for e in container.get("environment", [])})
        env.update({e["name"]: e["value"] for e in override.get("environment", [])})
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
        for moto_container in task.containers:
            moto_container.exitCode = code
            moto_container.last_status = "STOPPED"
        task.stopped_reason = f"Essential container in task exited (exit code {code}; log {log_path})"
        task.desired_status = "STOPPED"
        task.last_status = "STOPPED"
        log.info("task %s (%s) exited with %d", task.id, container["name"], code)
