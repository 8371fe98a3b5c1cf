"""The local stack: a moto server process on 127.0.0.1 standing in for AWS."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import closing
from pathlib import Path
from types import TracebackType
from typing import IO

from pipeline_tasks.errors import StackError
from pipeline_tasks.io import dynamodb
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps.transform import category_kpis_spec, order_kpis_spec

log = logging.getLogger(__name__)

#: Credentials moto accepts; never real ones.
LOCAL_KEY_ID = "testing"
LOCAL_SECRET = "testing"


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """A moto server process on a free 127.0.0.1 port; stops with the context."""

    def __init__(self, port: int | None = None, startup_timeout: float = 30.0) -> None:
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        env = dict(os.environ, MOTO_PORT=str(self.port))
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        # The server logs every request: a file, never a pipe nobody drains (a full pipe blocks the server).
        self.log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = Path(self.log.name).read_text(errors="replace")
                raise StackError(f"moto server exited at start (code {self.process.returncode}): {error[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):
                    log.info("moto server listening on %s", self.endpoint)
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise StackError(f"moto server did not answer on {self.endpoint} within {self.startup_timeout:.0f} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.log is not None:
            self.log.close()
            Path(self.log.name).unlink(missing_ok=True)
            self.log = None

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
    """Create the bucket and the KPI tables (what infra/ creates on AWS)."""
    s3 = s3io.client(settings, "s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if settings.bucket not in existing:
        s3.create_bucket(Bucket=settings.bucket)
    client = s3io.client(settings, "dynamodb")
    for spec in (order_kpis_spec(settings), category_kpis_spec(settings)):
        dynamodb.ensure_table(client, spec)
