"""One Settings object: the only place the pipeline's code reads its configuration from the environment.

(The emulator process, ``local/emulator.py``, is started with its own launch variables:
moto's ``MOTO_PORT`` and where local tasks run and log. Processes the pipeline starts get
their environment from ``Settings.to_env``.)

Environments differ only in values. Defaults are the product's resource names (those
its AWS resources were first given); a local stack overrides ``aws_endpoint_url`` and the bucket.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline_tasks.contract import RowRule

ENV_PREFIX = "PIPELINE_"


@dataclass(frozen=True)
class Settings:
    """Configuration of every step, built once at the edge and passed down.

    Every field can be set from the environment as ``PIPELINE_<FIELD>`` (upper
    case), except the AWS ones, which use the AWS SDK's own variables.
    """

    bucket: str = "lab6-realtime-ecommerce-pipelines"
    region: str = "us-east-1"
    #: Endpoint of an emulated AWS (the local moto server); None on AWS.
    aws_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    #: With temporary credentials (an assumed role: a Lambda function's, an ECS task's).
    aws_session_token: str | None = None

    input_prefix: str = "input/"
    archive_prefix: str = "archive/"
    rejected_prefix: str = "rejected/"
    results_prefix: str = "results/"
    reports_prefix: str = "reports/"
    runs_prefix: str = "runs/"
    manifests_prefix: str = "manifests/"
    state_prefix: str = "state/"
    #: Root of the Delta lake: ``s3://bucket/staging`` unless set (a local path works too).
    lake_root: str | None = None

    order_kpis_table: str = "OrderKPIs"
    category_kpis_table: str = "CategoryKPIs"
    #: Global secondary index of CategoryKPIs by day (the "one day, all categories" pattern).
    category_by_date_index: str = "order_date-category-index"

    #: Spark master URL (``local[*]``, ``spark://host:7077``…); ignored when spark_remote is set.
    spark_master: str = "local[*]"
    #: Spark Connect URL (``sc://host:15002``) to run the transform on a remote cluster.
    spark_remote: str | None = None
    spark_shuffle_partitions: int = 4
    spark_driver_memory: str = "4g"
    #: Folder of the JVM jars fetched by ``make setup`` (Delta, hadoop-aws, AWS SDK).
    spark_jars_dir: str = ".jars"
    #: How Spark reads staged tables: ``delta-rs`` (log replayed by delta-rs) or ``delta-spark``.
    spark_delta_reader: str = "delta-rs"
    #: File the Spark driver JVM writes its output to (a per-process file in the temporary folder when unset);
    #: a notebook task sets one in its work folder and copies it to the task's log afterwards.
    spark_jvm_log: str | None = None
    #: Extra Spark configuration, ``key=value`` pairs separated by commas in the environment.
    spark_conf: Mapping[str, str] = field(default_factory=dict)

    #: The event queue S3 notifies of new ``input/`` objects, and its dead-letter queue.
    queue_name: str = "file-processing-queue"
    dead_letter_queue_name: str = "file-processing-queue-dlq"
    #: URL of the event queue; looked up by name when unset.
    queue_url: str | None = None
    #: Receives after which SQS moves a message the orchestrator cannot use to the DLQ.
    max_receive_count: int = 3
    #: Seconds a received message stays hidden from the next orchestrator run.
    visibility_timeout: int = 900
    #: Most files in one batch; fewer when their move plan would pass its share of Step Functions'
    #: 256 KiB state quota (``state_payload.MOVE_PLAN_BUDGET``).
    max_batch_files: int = 500
    state_machine_name: str = "ECommerce-Pipeline-Orchestrator"
    #: Seconds between the heartbeats ``trigger`` and ``local run`` print while a state runs; 0: none.
    heartbeat_seconds: float = 10.0
    #: ARN of the state machine; looked up by name when unset.
    state_machine_arn: str | None = None
    success_topic_name: str = "PipelineSuccessNotifications"
    failure_topic_name: str = "PipelineFailureNotifications"
    cluster_name: str = "lab6-ecommerce-cluster"
    orchestrator_function_name: str = "Pipeline-Orchestrator"
    read_result_function_name: str = "Read-Validation-Result"

    #: Share of a file's rows that may break a row rule (``contract.ROW_RULES``) before the whole
    #: file is rejected instead of its rows quarantined, by rule name (``name=share`` pairs
    #: separated by commas in the environment); a rule not named keeps its default share.
    row_rule_max_share: Mapping[str, float] = field(default_factory=dict)

    #: Folder of the notebooks (``pipeline/`` and ``explore/`` inside); relative to the working directory.
    notebooks_dir: str = "notebooks"
    #: The work folder ``make lab`` serves (copies of the notebooks); ``lab/`` beside notebooks_dir when unset.
    lab_dir: str | None = None
    #: Jupyter kernel that runs the pipeline notebooks.
    kernel_name: str = "python3"
    #: Seconds a notebook cell may run (the transform of a large first load takes the longest).
    cell_timeout: int = 3600
    #: Seconds to wait for the notebook's kernel to start.
    kernel_start_timeout: int = 120

    @property
    def lake(self) -> str:
        """Root URI of the Delta lake, without a trailing slash."""
        return (self.lake_root or f"s3://{self.bucket}/staging").rstrip("/")

    def table_uri(self, dataset_name: str) -> str:
        return f"{self.lake}/{dataset_name}"

    @property
    def is_local_aws(self) -> bool:
        return self.aws_endpoint_url is not None

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **overrides)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build Settings from ``PIPELINE_*`` and the standard AWS variables.

        Args:
            environ: The variables to read (``os.environ`` by default).
            **overrides: Field values that win over the environment; None values are ignored
                (a notebook passes its parameters straight through).
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            if f.name == "spark_conf":
                values[f.name] = _parse_pairs(raw)
            elif f.name == "row_rule_max_share":
                values[f.name] = {name: float(share) for name, share in _parse_pairs(raw).items()}
            elif f.type in ("int",):
                values[f.name] = int(raw)
            elif f.type in ("float",):
                values[f.name] = float(raw)
            else:
                values[f.name] = raw
        aws = {
            "aws_endpoint_url": "AWS_ENDPOINT_URL",
            "aws_access_key_id": "AWS_ACCESS_KEY_ID",
            "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
            "aws_session_token": "AWS_SESSION_TOKEN",
        }
        for name, variable in aws.items():
            if name not in values and env.get(variable):
                values[name] = env[variable]
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if "region" not in values and region:
            values["region"] = region
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment that rebuilds these Settings in another process."""
        env: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or f.name.startswith("aws_"):
                continue
            if f.name in ("spark_conf", "row_rule_max_share"):
                if value:
                    env[ENV_PREFIX + f.name.upper()] = ",".join(f"{k}={v}" for k, v in value.items())
                continue
            env[ENV_PREFIX + f.name.upper()] = str(value)
        if self.aws_endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.aws_endpoint_url
        if self.aws_access_key_id:
            env["AWS_ACCESS_KEY_ID"] = self.aws_access_key_id
        if self.aws_secret_access_key:
            env["AWS_SECRET_ACCESS_KEY"] = self.aws_secret_access_key
        if self.aws_session_token:
            env["AWS_SESSION_TOKEN"] = self.aws_session_token
        env["AWS_REGION"] = self.region
        return env

    def with_absolute_paths(self) -> Settings:
        """These Settings with local folders made absolute, for a process with another working directory
        (a notebook kernel runs in the notebook's folder)."""
        lake = self.lake_root
        if lake and "://" not in lake:
            lake = str(Path(lake).resolve())
        return replace(
            self,
            spark_jars_dir=str(Path(self.spark_jars_dir).resolve()),
            notebooks_dir=str(Path(self.notebooks_dir).resolve()),
            lake_root=lake,
        )

    def max_share(self, rule: RowRule) -> float:
        """The share of a file's rows that may break ``rule`` before the file is rejected."""
        return float(self.row_rule_max_share.get(rule.name, rule.max_share))

    def jars(self) -> list[Path]:
        """The jars of ``spark_jars_dir``, sorted; empty when the folder is missing."""
        folder = Path(self.spark_jars_dir)
        return sorted(folder.glob("*.jar")) if folder.is_dir() else []


def _parse_pairs(raw: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in raw.split(",") if item.strip())
    return {key.strip(): value.strip() for key, value in pairs}
