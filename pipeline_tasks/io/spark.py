"""The one SparkSession factory, built from Settings.

``local[*]`` by default; any master URL, or a Spark Connect server
(``sc://host:15002``) when ``spark_remote`` is set, so the same transform runs
on a cluster. Delta Lake and S3A (hadoop-aws) come from the jars that
``make setup`` fetched from Maven Central into ``spark_jars_dir``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipeline_tasks.errors import ConfigurationError
from pipeline_tasks.settings import Settings

log = logging.getLogger(__name__)

#: Options every session gets, wherever it runs.
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.adaptive.enabled": "true",
    # Orders (order_id, order_date) of a few million rows fit a broadcast: the fact join then
    # needs no shuffle of the items. Larger tables fall back to a shuffle join by themselves.
    "spark.sql.autoBroadcastJoinThreshold": "256m",
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # Delta replays its log with this many tasks; the default 50 costs seconds per table here.
    "spark.databricks.delta.snapshotPartitions": "2",
    # Partition values are typed by the table schema, never guessed from paths.
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
}


#: Data files a local session checks on the driver itself rather than in a Spark job.
LOCAL_LISTING_THRESHOLD = 100_000


def spark_uri(uri: str) -> str:
    """Hadoop names S3 ``s3a://``; delta-rs and boto3 say ``s3://``."""
    return "s3a://" + uri[len("s3://") :] if uri.startswith("s3://") else uri


def s3a_conf(settings: Settings) -> dict[str, str]:
    """Hadoop S3A options for the lake's bucket (custom endpoint, path style, keys)."""
    conf = {
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.endpoint.region": settings.region,
    }
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        conf |= {
            "spark.hadoop.fs.s3a.access.key": settings.aws_access_key_id,
            "spark.hadoop.fs.s3a.secret.key": settings.aws_secret_access_key,
            "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        }
        if settings.aws_session_token:  # an assumed role's temporary credentials
            conf |= {
                "spark.hadoop.fs.s3a.session.token": settings.aws_session_token,
                "spark.hadoop.fs.s3a.aws.credentials.provider": (
                    "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
                ),
            }
    else:
        conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = (
            "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider"
        )
    if settings.aws_endpoint_url:
        endpoint = urlparse(settings.aws_endpoint_url)
        conf |= {
            "spark.hadoop.fs.s3a.endpoint": settings.aws_endpoint_url,
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": str(endpoint.scheme == "https").lower(),
        }
    return conf


#: JVM options of a short-lived local driver: compile hot code with C1 only. C2's slower,
#: CPU-hungry compilations pay off over minutes of work, not over the ~15 s of an
#: incremental transform, and on 2 cores they compete with the tasks themselves.
SHORT_LIVED_JVM_OPTIONS = "-XX:TieredStopAtLevel=1"


def session_conf(settings: Settings, *, short_lived: bool = False) -> dict[str, str]:
    """Every Spark option of a local or cluster session built from Settings.

    Args:
        settings: Master, jars, S3A endpoint, user options (``spark_conf`` wins over ours).
        short_lived: The session will run a few seconds of work (an incremental
            transform): a local driver JVM then skips the C2 compiler.
    """
    jars = settings.jars()
    conf = dict(SESSION_CONF)
    conf["spark.sql.shuffle.partitions"] = str(settings.spark_shuffle_partitions)
    conf["spark.driver.memory"] = settings.spark_driver_memory
    if jars:
        conf["spark.jars"] = ",".join(str(j.resolve()) for j in jars)
    conf |= s3a_conf(settings)
    if settings.spark_master.startswith("local"):
        # Keep the driver on loopback (it would bind the machine's public address otherwise).
        conf |= {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
        # Above 32 paths Spark checks the data files in a job of one task per file; in local
        # mode those tasks run on the driver's own cores, so the job only adds its overhead
        # (0.3-0.6 s per read of a 50-file table on 2 cores; six such jobs per full recompute).
        conf["spark.sql.sources.parallelPartitionDiscovery.threshold"] = str(LOCAL_LISTING_THRESHOLD)
        java_options = [SHORT_LIVED_JVM_OPTIONS] if short_lived else []
        archive = class_archive(settings)
        if archive is not None and archive.exists():
            # Classes mapped from the archive (see local/class_archive.py); a stale one is ignored.
            java_options[:0] = [f"-XX:SharedArchiveFile={archive}", "-Xlog:cds=off"]
        if java_options:
            conf["spark.driver.extraJavaOptions"] = " ".join(java_options)
    conf |= dict(settings.spark_conf)
    return conf


#: The class-data-sharing archive ``make setup`` builds beside the jars.
CLASS_ARCHIVE = "spark-classes.jsa"


def class_archive(settings: Settings) -> Path | None:
    """Where the JVM class archive of this installation lives (None without a jars folder)."""
    if not settings.spark_jars_dir:
        return None
    return Path(settings.spark_jars_dir).resolve() / CLASS_ARCHIVE


def session(settings: Settings, *, short_lived: bool = False) -> SparkSession:
    """Start (or reuse) the SparkSession the settings describe (``short_lived``: see ``session_conf``)."""
    started = time.perf_counter()
    if settings.spark_remote:
        spark = SparkSession.builder.remote(settings.spark_remote).getOrCreate()
        # The server owns its static options (jars, S3A); these are per session.
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        spark.conf.set("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
    else:
        if not settings.jars():
            raise ConfigurationError(
                f"no Spark jars in {settings.spark_jars_dir!r}: run `make setup` "
                "(or set PIPELINE_SPARK_JARS_DIR to the folder holding the Delta and hadoop-aws jars)"
            )
        # A Spark Connect session earlier in this process leaves this set, which would
        # turn the next classic builder into a Connect client without a URL.
        os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        if settings.spark_master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        conf = session_conf(settings, short_lived=short_lived)
        launch_jvm(settings, conf)
        builder: Any = SparkSession.builder.master(settings.spark_master).appName("ecom-pipeline")
        for key, value in conf.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
    log.info("spark session ready in %.1f s", time.perf_counter() - started)
    return spark


#: The driver's log4j2 configuration: warnings and errors only, no start-up banner.
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")


def jvm_log(settings: Settings) -> Path:
    """Where this process's Spark driver JVM writes its output (``Settings.spark_jvm_log``).

    Default: ``ecom-pipeline-logs/spark-jvm-{pid}.log`` in the system's temporary folder.
    """
    chosen = settings.spark_jvm_log
    return (
        Path(chosen) if chosen else Path(tempfile.gettempdir()) / "ecom-pipeline-logs" / f"spark-jvm-{os.getpid()}.log"
    )


def launch_jvm(settings: Settings, conf: dict[str, str]) -> Path | None:
    """Start the driver JVM (the py4j gateway) with its stdout and stderr in ``jvm_log(settings)``.

    pyspark would start it with this process's stdout and stderr: its log4j banner,
    ``NativeCodeLoader`` and ivy lines would land in the notebook (ipykernel shows what
    the kernel's file descriptors receive) or the terminal. The JVM logs with
    ``LOG4J_CONFIG`` (warnings and errors) to the file instead; ``SparkSession.builder``
    then reuses this gateway. Returns the log file; None when a gateway was already up.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None:
        return None
    options = " ".join(
        filter(None, [conf.get("spark.driver.extraJavaOptions"), f"-Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()}"])
    )
    jvm_conf = SparkConf(loadDefaults=False).setAll([*conf.items(), ("spark.driver.extraJavaOptions", options)])
    path = jvm_log(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as output:  # the JVM keeps its own copy of the descriptor
        gateway = launch_gateway(jvm_conf, popen_kwargs={"stdout": output, "stderr": subprocess.STDOUT})
    SparkContext._ensure_initialized(gateway=gateway)
    log.info("spark driver JVM output: %s", path)
    return path


#: Reader features that change which rows a data file holds; the file-list reader refuses them.
_ROW_CHANGING_FEATURES = {"deletionVectors", "columnMapping"}


def read_delta(
    spark: SparkSession,
    table: Any,
    schema: Any,
    *,
    reader: str = "delta-rs",
    files: list[str] | None = None,
) -> DataFrame:
    """A Delta table (at the version ``table`` is loaded at) as a Spark DataFrame.

    ``delta-rs`` (default): delta-rs replays the Delta log in Rust and Spark reads
    exactly the live data files it lists. On this machine that skips 10–20 s of
    delta-spark log replay on a cold JVM per table version. ``delta-spark``:
    Spark's own Delta reader (``versionAsOf``), the reference path.

    Args:
        spark: The session.
        table: A ``deltalake.DeltaTable`` loaded at the wanted version.
        schema: Arrow schema of the table's data files (partition columns dropped).
        reader: ``delta-rs`` or ``delta-spark``.
        files: Read only these live data files (URIs from ``table.file_uris()``): a
            slice of the table. The ``delta-spark`` reader reads the whole snapshot
            (a superset: callers filter the rows they need).
    """
    from pipeline_tasks.io.arrow_spark import spark_schema

    partitions = list(table.metadata().partition_columns)
    struct = spark_schema(schema)
    if reader == "delta-spark":
        frame = spark.read.format("delta").option("versionAsOf", table.version()).load(spark_uri(table.table_uri))
        return frame.select(*struct.fieldNames())
    features = set(table.protocol().reader_features or [])
    if features & _ROW_CHANGING_FEATURES:
        raise ConfigurationError(
            f"{table.table_uri} uses {sorted(features & _ROW_CHANGING_FEATURES)}: "
            "set PIPELINE_SPARK_DELTA_READER=delta-spark to read it with Spark's Delta reader"
        )
    files = [spark_uri(uri) for uri in (table.file_uris() if files is None else files)]
    if not files:
        return spark.createDataFrame([], struct)
    # Partition values live in the paths (``year=2024/month=3``), read as strings, then typed.
    data_schema = spark_schema(f for f in schema if f.name not in partitions)
    frame = spark.read.schema(data_schema).option("basePath", spark_uri(table.table_uri)).parquet(*files)
    return frame.select(*[F.col(f.name).cast(f.dataType) for f in struct.fields])
