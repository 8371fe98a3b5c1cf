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
from pipeline_tasks.io import aws, dynamodb
from pipeline_tasks.io.kpi_tables import category_kpis_spec, order_kpis_spec
from pipeline_tasks.local import template
from pipeline_tasks.local.moto_cloudformation import ADMIN_KEY_ID, ADMIN_SECRET
from pipeline_tasks.local.process import ServerProcess, free_port
from pipeline_tasks.settings import Settings

log = logging.getLogger(__name__)

#: Set to ``enforce`` in the emulator's environment: IAM is checked on every request (moto_workarounds).
ENFORCE_IAM_VARIABLE = "PIPELINE_LOCAL_IAM"
#: The local stack's administrator credentials (the deployer's); never real ones.
LOCAL_KEY_ID = ADMIN_KEY_ID
LOCAL_SECRET = ADMIN_SECRET


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
        enforce_iam: bool = True,
    ) -> None:
        """A plain moto server, or with ``emulator`` the local AWS of the whole pipeline
        (moto plus ``moto_workarounds``: ECS tasks and Lambda functions really run, each under
        its role; with ``enforce_iam`` every request is checked against its caller's policies)."""
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
        if emulator and enforce_iam:
            env[ENFORCE_IAM_VARIABLE] = "enforce"
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
    """Create a bucket (versioned, as on AWS: batches pin versions) and the KPI tables, for the tests of single steps.

    The whole pipeline's stack comes from infra/pipeline.yaml (``template.deploy``).
    """
    s3 = aws.client(settings, "s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if settings.bucket not in existing:
        s3.create_bucket(Bucket=settings.bucket)
    s3.put_bucket_versioning(Bucket=settings.bucket, VersioningConfiguration={"Status": "Enabled"})
    client = aws.client(settings, "dynamodb")
    for spec in (order_kpis_spec(settings), category_kpis_spec(settings)):
        dynamodb.ensure_table(client, spec)


#: Where ``ecom-pipeline local up`` records the stack it started (relative to the working directory).
STATE_DIR = Path(".local-stack")


def up(base: Settings | None = None, *, state_dir: Path = STATE_DIR) -> dict[str, Any]:
    """Start a detached local stack (the emulator) and deploy infra/pipeline.yaml on it."""
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
        **{ENFORCE_IAM_VARIABLE: "enforce"},
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
    settings = template.deploy(server.settings(base))
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
