"""A local Spark Connect server, started from the pyspark wheel with the project's jars.

The wheel carries the Connect server classes but no ``start-connect-server.sh``;
this runs the same ``spark-submit --class …SparkConnectServer`` the script runs.
Clients then use ``PIPELINE_SPARK_REMOTE=sc://127.0.0.1:PORT``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import pyspark

from pipeline_tasks.errors import StackError
from pipeline_tasks.io.spark import session_conf
from pipeline_tasks.local.stack import free_port
from pipeline_tasks.settings import Settings

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


class SparkConnectServer:
    """``spark-submit`` of the Connect server on a free 127.0.0.1 port; stops with the context."""

    def __init__(self, settings: Settings, *, master: str = "local[2]", startup_timeout: float = 120.0) -> None:
        self.settings = settings
        self.master = master
        self.port = free_port()
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        spark_home = Path(pyspark.__file__).parent
        conf = session_conf(self.settings.with_overrides(spark_master=self.master))
        jars = conf.pop("spark.jars", "")
        conf |= {
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(self.port),
        }
        command = [str(spark_home / "bin" / "spark-submit"), "--class", SERVER_CLASS, "--master", self.master]
        if jars:
            command += ["--jars", jars]
        for key, value in conf.items():
            command += ["--conf", f"{key}={value}"]
        return command

    def start(self) -> SparkConnectServer:
        env = dict(os.environ, SPARK_HOME=str(Path(pyspark.__file__).parent), SPARK_LOCAL_IP="127.0.0.1")
        self.log = tempfile.NamedTemporaryFile(prefix="spark-connect-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(self.command(), env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StackError(f"Spark Connect server exited: {Path(self.log.name).read_text()[-3000:]}")
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.5)
        self.stop()
        raise StackError(f"Spark Connect server did not listen on {self.url} within {self.startup_timeout:.0f} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.log is not None:
            self.log.close()
            Path(self.log.name).unlink(missing_ok=True)
            self.log = None

    def __enter__(self) -> SparkConnectServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
