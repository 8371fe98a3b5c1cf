"""The local stack: a moto server process on 127.0.0.1 standing in for AWS."""

from __future__ import annotations

import logging
import os
import sys
import urllib.request
from types import TracebackType

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

    def __init__(self, port: int | None = None, startup_timeout: float = 30.0) -> None:
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        # moto's Step Functions interpreter calls the other services at localhost:$MOTO_PORT.
        self.server = ServerProcess("moto", command, dict(os.environ, MOTO_PORT=str(self.port)))

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
        return self

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
    """Create the bucket and the KPI tables (what infra/ creates on AWS)."""
    s3 = s3io.client(settings, "s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if settings.bucket not in existing:
        s3.create_bucket(Bucket=settings.bucket)
    client = s3io.client(settings, "dynamodb")
    for spec in (order_kpis_spec(settings), category_kpis_spec(settings)):
        dynamodb.ensure_table(client, spec)
