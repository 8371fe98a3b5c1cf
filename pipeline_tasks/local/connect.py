"""A local Spark Connect server, started from the pyspark wheel with the project's jars.

The wheel carries the Connect server classes but no ``start-connect-server.sh``;
this runs the same ``spark-submit --class …SparkConnectServer`` the script runs.
Clients then use ``PIPELINE_SPARK_REMOTE=sc://127.0.0.1:PORT``.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import pyspark

from pipeline_tasks.io.spark import session_conf
from pipeline_tasks.local.process import ServerProcess, free_port, port_open
from pipeline_tasks.settings import Settings

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


class SparkConnectServer:
    """``spark-submit`` of the Connect server on a free 127.0.0.1 port; stops with the context."""

    def __init__(self, settings: Settings, *, master: str = "local[2]", startup_timeout: float = 120.0) -> None:
        self.settings = settings
        self.master = master
        self.port = free_port()
        self.startup_timeout = startup_timeout
        env = dict(os.environ, SPARK_HOME=str(Path(pyspark.__file__).parent), SPARK_LOCAL_IP="127.0.0.1")
        self.server = ServerProcess("spark-connect", self.command(), env)

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
        self.server.start(lambda: port_open(self.port), self.startup_timeout)
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> SparkConnectServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
