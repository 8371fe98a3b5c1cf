"""Workarounds 2 and 3: ECS tasks and Lambda functions that really run.

``EcsAgent`` runs each new task's container command as a local process under its task
role's credentials and records the exit code (2); its output goes to a log file and, as
the awslogs driver does on Fargate, to the task's CloudWatch Logs stream
(``LogMirror``), where ``executions.follow`` reads its progress. Lambda functions of
``pipeline_tasks`` are served in this process under their role's credentials (3).
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
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pipeline_tasks.local.moto_workarounds.roles import RoleCredentials, RoleNotAssumableError, RoleSessions

log = logging.getLogger(__name__)


HANDLER_VARIABLE = "PIPELINE_HANDLER"
#: Ticks an ECS task would need to leave RUNNING by itself: never.
_FROZEN = 10**9
#: CloudWatch Logs takes events of up to 256 KB; the copy of a longer line is cut.
MAX_EVENT_CHARS = 65536
#: The variables of this server process that a task must not inherit (2): its credentials are its role's.
_SERVER_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


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
        mirror = LogMirror.of(log_path, container, task, getattr(backend, "account_id", None))
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
        if mirror is not None:
            mirror.finish()
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


class LogMirror(threading.Thread):
    """Copies a task's log file, line by line as it grows, to its awslogs stream in this server's CloudWatch Logs.

    The stream is named as the awslogs driver names it, ``{prefix}/{container}/{task id}``.
    A mirror never fails its task: when the log group is missing or a copy fails, the
    lines stay in the file only.
    """

    def __init__(self, path: Path, logs: Any, group: str, stream: str, interval: float = 1.0) -> None:
        super().__init__(name=f"local-awslogs-{stream}", daemon=True)
        self.path, self.logs, self.group, self.stream, self.interval = path, logs, group, stream, interval
        self.offset = 0
        self.done = threading.Event()

    @classmethod
    def of(cls, path: Path, container: Mapping[str, Any], task: Any, account_id: str | None) -> LogMirror | None:
        """A started mirror for a container with an ``awslogs`` configuration; None without one."""
        config = container.get("logConfiguration") or {}
        options = config.get("options") or {}
        if config.get("logDriver") != "awslogs" or not options.get("awslogs-group") or not account_id:
            return None
        prefix = options.get("awslogs-stream-prefix")
        stream = f"{prefix}/{container['name']}/{task.id}" if prefix else str(task.id)
        try:
            from moto.logs.models import logs_backends

            logs = logs_backends[account_id][options.get("awslogs-region") or task.region_name]
            logs.ensure_log_stream(options["awslogs-group"], stream)
        except Exception as error:  # no log group: the file is the only log
            log.info("task %s logs to its file only: %s", task.id, error)
            return None
        mirror = cls(path, logs, options["awslogs-group"], stream)
        mirror.start()
        return mirror

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.copy(final=False)
        self.copy(final=True)

    def finish(self) -> None:
        """Copy the rest of the file (the task has exited) and stop."""
        self.done.set()
        self.join(timeout=10)

    def copy(self, *, final: bool) -> None:
        """Put the file's new complete lines (with ``final``, its last partial one too) as log events."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
            end = len(data) if final else data.rfind(b"\n") + 1
            if end <= 0:
                return
            self.offset += end
            now = int(time.time() * 1000)
            lines = data[:end].decode("utf-8", errors="replace").splitlines()
            events = [{"timestamp": now, "message": line[:MAX_EVENT_CHARS]} for line in lines if line.strip()]
            if events:
                self.logs.put_log_events(self.group, self.stream, events)
        except Exception:  # the task's run must not depend on its log copy
            log.exception("could not copy %s to the log stream %s", self.path, self.stream)
