"""What the reliability scenarios share: a scenario on the local stack, its faults, its checks.

A ``Scenario`` is the pipeline provisioned on the shared emulator under names of its own
(bucket, KPI tables, queue, topics, functions, state machine), so scenarios never see
each other's state. It uploads files (remembering their arrival order and versions),
triggers the orchestrator as the scheduler does, recovers as an operator does (the
``ecom-pipeline`` verbs in a subprocess), and checks convergence: both KPI tables equal
to ``tests/reference.py`` fed the uploads in arrival order, and every uploaded version
in exactly one of ``archive/`` or ``rejected/``.

Faults act on real processes: a task is the ``ecom-pipeline notebook STEP`` process the
local ECS agent started (found among the emulator's descendants by its command line and
execution id), its notebook kernel (``ipykernel_launcher``) and the kernel's JVM. A kill
first freezes the whole tree (SIGSTOP), checks the point reached, then SIGKILLs it: the
point asserted is the point killed at.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import psutil
from botocore.config import Config

from pipeline_tasks import executions, orchestrator
from pipeline_tasks.io import dynamodb
from pipeline_tasks.local import template
from pipeline_tasks.local.stack import MotoServer
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps import transform
from tests.builders import csv_bytes, item, order, product
from tests.reference import Reference

REPO = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "ecom-pipeline"
#: Every wait of the suite is bounded; an execution of the small batches here takes about a minute.
EXECUTION_TIMEOUT = 600
TASK_TIMEOUT = 300
POLL = 0.05
#: The test's own clients give up rather than hang (the frozen-moto scenario).
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"})


# --------------------------------------------------------------------------------------- data
CATEGORIES = ("Tops", "Jeans", "Shoes", "Hats")
STATUSES = ("Complete", "Shipped", "Returned", "Processing", "Cancelled")


def shop(
    seed: int,
    *,
    orders: int = 200,
    first_order: int = 1,
    first_day: date = date(2023, 1, 1),
    span_days: int = 200,
    tag: str = "",
) -> list[tuple[str, bytes]]:
    """A products, an orders and an order-items file: ``orders`` orders spread over ``span_days``
    days from ``first_day`` (so as many OrderKPIs items, and about twice as many CategoryKPIs
    items), two items each, eight products in four categories."""
    rng = random.Random(seed)
    products = [product(pid, category=CATEGORIES[pid % 4], cost="5.00", retail="20.00") for pid in range(1, 9)]
    order_rows, item_rows = [], []
    for n in range(orders):
        oid = first_order + n
        day = first_day + timedelta(days=(n * span_days) // max(orders, 1))
        created = f"{day.isoformat()} {rng.randrange(24):02d}:{rng.randrange(60):02d}:00"
        order_rows.append(order(oid, created, user=rng.randrange(1, 50), status=rng.choice(STATUSES), items=2))
        for k in range(2):
            price = f"{rng.randrange(100, 20000) / 100:.2f}"
            item_rows.append(
                item(oid * 10 + k, oid, pid=rng.randrange(1, 9), price=price, status=rng.choice(STATUSES))
                | {"created_at": created}
            )
    return [
        (f"products{tag}.csv", csv_bytes("products", products)),
        (f"orders{tag}.csv", csv_bytes("orders", order_rows)),
        (f"order_items{tag}.csv", csv_bytes("order_items", item_rows)),
    ]


# ---------------------------------------------------------------------------------- processes
def tree(process: psutil.Process) -> list[psutil.Process]:
    """A process and its descendants (those still there)."""
    try:
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def signal_all(processes: Iterable[psutil.Process], signum: int) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signum)


def freeze(process: psutil.Process) -> list[psutil.Process]:
    """SIGSTOP a process tree (again, for children started meanwhile); the frozen processes."""
    frozen: dict[int, psutil.Process] = {}
    for _ in range(3):
        current = [p for p in tree(process) if p.pid not in frozen]
        if not current:
            break
        signal_all(current, signal.SIGSTOP)
        frozen |= {p.pid: p for p in current}
    return list(frozen.values())


def kill_frozen(frozen: list[psutil.Process]) -> None:
    """SIGKILL frozen processes, as a stopped container's processes die: all at once."""
    signal_all(frozen, signal.SIGKILL)
    psutil.wait_procs(frozen, timeout=10)


def kernel_of(task: psutil.Process) -> psutil.Process | None:
    return next((p for p in tree(task)[1:] if "ipykernel_launcher" in " ".join(_cmdline(p))), None)


def jvm_of(task: psutil.Process) -> psutil.Process | None:
    return next((p for p in tree(task)[1:] if _name(p) == "java"), None)


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return []


def _name(process: psutil.Process) -> str:
    try:
        return process.name()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return ""


def wait_until(condition: Callable[[], Any], timeout: float, what: str, poll: float = POLL) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


# -------------------------------------------------------------------------------- local stack
@dataclass
class LocalAws:
    """The shared emulator (moto with the local stack's workarounds) and where its tasks log."""

    server: MotoServer
    log_dir: Path

    @property
    def pid(self) -> int:
        assert self.server.server.process is not None
        return self.server.server.process.pid

    @property
    def process(self) -> psutil.Process:
        return psutil.Process(self.pid)

    def resume(self) -> None:
        """SIGCONT the emulator (a no-op unless a scenario froze it)."""
        if self.server.server.process is not None and self.server.server.process.poll() is None:
            os.kill(self.pid, signal.SIGCONT)

    def task_processes(self) -> list[psutil.Process]:
        """The ``ecom-pipeline notebook`` processes the local ECS agent runs now."""
        found = []
        for process in tree(self.process)[1:]:
            line = _cmdline(process)
            if any(a.endswith("ecom-pipeline") for a in line[:2]) and "notebook" in line:
                found.append(process)
        return found


@dataclass
class Upload:
    key: str
    version_id: str
    data: bytes


@dataclass
class Scenario:
    """One scenario's pipeline on the shared emulator; see the module's docstring."""

    name: str
    aws: LocalAws
    settings: Settings
    uploads: list[Upload] = field(default_factory=list)
    execution_arns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def provision(cls, name: str, aws: LocalAws, **overrides: Any) -> Scenario:
        base = Settings(
            spark_master="local[2]",
            spark_jars_dir=str(REPO / ".jars"),
            notebooks_dir=str(REPO / "notebooks"),
        ).with_overrides(**overrides)
        # Each scenario is its own deployment of infra/pipeline.yaml on the shared emulator.
        environment = f"r{uuid.uuid4().hex[:8]}"
        return cls(name, aws, template.deploy(aws.server.settings(base), environment))

    # -------------------------------------------------------------------------- clients
    def client(self, service: str) -> Any:
        """The test's own client of a service (made once: the fault points poll with it)."""
        if service not in self.clients:
            self.clients[service] = boto3.client(
                service,
                endpoint_url=self.settings.aws_endpoint_url,
                region_name=self.settings.region,
                aws_access_key_id=self.settings.aws_access_key_id,
                aws_secret_access_key=self.settings.aws_secret_access_key,
                config=CLIENT_CONFIG,
            )
        return self.clients[service]

    @property
    def bucket(self) -> str:
        return self.settings.bucket

    # -------------------------------------------------------------------------- actions
    def upload(self, files: Iterable[tuple[str, bytes]]) -> None:
        """Put each file in ``input/`` (S3 notifies the queue), in order."""
        s3 = self.client("s3")
        for name, data in files:
            key = self.settings.input_prefix + name
            version = s3.put_object(Bucket=self.bucket, Key=key, Body=data)["VersionId"]
            self.uploads.append(Upload(key, version, data))

    def trigger(self) -> dict[str, Any]:
        """One orchestrator run (its Lambda, as the scheduler invokes it); it must start an execution."""
        outcome = executions.invoke_orchestrator(self.settings)
        assert outcome.get("started"), f"the trigger started nothing: {outcome}"
        self.execution_arns.append(str(outcome["execution_arn"]))
        return outcome

    def follow(self, execution_arn: str) -> executions.ExecutionReport:
        report = executions.follow(self.settings, execution_arn, progress=lambda _: None, timeout=EXECUTION_TIMEOUT)
        assert report.status != "RUNNING", f"{report.name} still runs after {EXECUTION_TIMEOUT} s"
        return report

    def cli(self, *arguments: str, timeout: float = EXECUTION_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """An ``ecom-pipeline`` verb in its own process, configured for this scenario's stack."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "AWS_"))}
        env |= self.settings.to_env()
        done = subprocess.run(
            [str(CLI), *arguments], env=env, cwd=self.aws.log_dir, capture_output=True, text=True, timeout=timeout
        )
        self.notes.append(f"$ ecom-pipeline {' '.join(arguments)} -> {done.returncode}\n{done.stdout}{done.stderr}")
        for line in done.stdout.splitlines():
            if line.startswith("started "):
                name = line.split()[1]
                self.execution_arns.append(self.execution_arn(name))
        return done

    def rerun(self, execution_id: str) -> executions.ExecutionReport:
        """``ecom-pipeline rerun EXECUTION_ID`` (it follows the execution to its end); how it ended."""
        done = self.cli("rerun", execution_id)
        started = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("started ")]
        assert started, f"the rerun started nothing:\n{done.stdout}{done.stderr}"
        return self.follow(self.execution_arn(started[0]))

    def start_rerun(self, execution_id: str) -> dict[str, Any]:
        """What ``ecom-pipeline rerun`` calls, without following: to fault the rerun itself."""
        outcome = orchestrator.rerun(self.settings, execution_id).to_dict()
        assert outcome["started"], f"the rerun started nothing: {outcome}"
        self.execution_arns.append(str(outcome["execution_arn"]))
        return outcome

    def execution_arn(self, name: str) -> str:
        assert self.settings.state_machine_arn
        return f"{self.settings.state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"

    def states_entered(self, execution_arn: str) -> list[str]:
        sfn = self.client("stepfunctions")
        events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]

    # -------------------------------------------------------------------------- tasks
    def task(self, step: str, execution_id: str, timeout: float = TASK_TIMEOUT) -> psutil.Process:
        """The running ``ecom-pipeline notebook STEP`` process of an execution."""

        def find() -> psutil.Process | None:
            for process in self.aws.task_processes():
                line = _cmdline(process)
                if step in line and execution_id in line:
                    return process
            return None

        found: psutil.Process = wait_until(find, timeout, f"the {step} task of {execution_id}")
        return found

    def kill_task_when(
        self,
        step: str,
        execution_id: str,
        point: Callable[[psutil.Process], bool],
        check: Callable[[], None] = lambda: None,
        *,
        what: str,
        timeout: float = TASK_TIMEOUT,
    ) -> None:
        """Wait for the step's task, then for ``point``; freeze the task's process tree,
        ``check`` the point reached, and SIGKILL the tree (the task, its kernel, its JVM)."""
        task = self.task(step, execution_id, timeout)
        wait_until(lambda: point(task) or not task.is_running(), timeout, what, poll=0.02)
        assert task.is_running(), f"the {step} task of {execution_id} ended before {what}"
        frozen = freeze(task)
        try:
            check()
        finally:
            kill_frozen(frozen)
        self.notes.append(f"killed the {step} task of {execution_id} ({len(frozen)} processes) {what}")

    # -------------------------------------------------------------------------- S3 / DynamoDB
    def keys(self, prefix: str) -> list[str]:
        s3 = self.client("s3")
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def exists(self, key: str) -> bool:
        return key in self.keys(key)

    def delta_commits(self, dataset: str) -> list[str]:
        return [k for k in self.keys(f"staging/{dataset}/_delta_log/") if k.endswith(".json")]

    def delta_data_files(self, dataset: str) -> list[str]:
        return [k for k in self.keys(f"staging/{dataset}/") if k.endswith(".parquet") and "_delta_log" not in k]

    def kpis(self) -> tuple[dict[str, dict[str, Decimal]], dict[tuple[str, str], dict[str, Decimal]]]:
        """Both KPI tables, item by item, values as Decimal (``tests/conftest.py``'s reading)."""
        client = self.client("dynamodb")
        order_spec, category_spec = (
            transform.order_kpis_spec(self.settings),
            transform.category_kpis_spec(self.settings),
        )
        orders = {
            i["order_date"]: {k: Decimal(str(i[k])) for k in order_spec.values}
            for i in dynamodb.scan_items(client, order_spec)
        }
        categories = {
            (i["category"], i["order_date"]): {k: Decimal(str(i[k])) for k in category_spec.values}
            for i in dynamodb.scan_items(client, category_spec)
        }
        return orders, categories

    def item_count(self, table: str) -> int:
        client = self.client("dynamodb")
        count, start = 0, None
        while True:
            page = client.scan(TableName=table, Select="COUNT", **({"ExclusiveStartKey": start} if start else {}))
            count += page["Count"]
            start = page.get("LastEvaluatedKey")
            if not start:
                return count

    def empty_table(self, table: str) -> int:
        """Delete every item of a KPI table, as an operator's mistake would; how many there were."""
        client = self.client("dynamodb")
        key = [k["AttributeName"] for k in client.describe_table(TableName=table)["Table"]["KeySchema"]]
        table_resource = boto3.resource(
            "dynamodb",
            endpoint_url=self.settings.aws_endpoint_url,
            region_name=self.settings.region,
            aws_access_key_id=self.settings.aws_access_key_id,
            aws_secret_access_key=self.settings.aws_secret_access_key,
            config=CLIENT_CONFIG,
        ).Table(table)
        removed = 0
        with table_resource.batch_writer() as batch:
            for page in client.get_paginator("scan").paginate(TableName=table, ProjectionExpression=", ".join(key)):
                for found in page["Items"]:
                    batch.delete_item(Key={k: next(iter(found[k].values())) for k in key})
                    removed += 1
        return removed

    # -------------------------------------------------------------------------- checks
    def expected_kpis(self, uploads: Iterable[Upload] | None = None) -> tuple[dict, dict]:
        """The reference fed the uploads (all, by default) in arrival order."""
        ref = Reference()
        for upload in self.uploads if uploads is None else uploads:
            ref.load(upload.key.rsplit("/", 1)[-1], upload.data)
        return ref.kpis()

    def whereabouts(self) -> dict[tuple[str, str], list[str]]:
        """Each uploaded version: the keys under archive/, rejected/ and input/ that hold it."""
        s3 = self.client("s3")
        found: dict[tuple[str, str], list[str]] = {(u.key, u.version_id): [] for u in self.uploads}
        for prefix in (self.settings.archive_prefix, self.settings.rejected_prefix):
            for key in self.keys(prefix):
                metadata = s3.head_object(Bucket=self.bucket, Key=key).get("Metadata", {})
                source = (unquote(metadata.get("source-key", "")), metadata.get("source-version-id", ""))
                found.setdefault(source, []).append(key)
        versions = s3.list_object_versions(Bucket=self.bucket, Prefix=self.settings.input_prefix)
        for version in versions.get("Versions", []):
            found.setdefault((version["Key"], version["VersionId"]), []).append(f"{version['Key']} (still there)")
        return found

    def assert_accounted(self) -> None:
        """Nothing left in input/ (no version at all); every uploaded version moved to exactly one
        of archive/ or rejected/, and nothing there that was not uploaded."""
        assert self.keys(self.settings.input_prefix) == [], "files left in input/"
        places = self.whereabouts()
        uploaded = {(u.key, u.version_id) for u in self.uploads}
        problems = [
            f"{key} (version {version}): {where or 'LOST: in neither archive/ nor rejected/'}"
            for (key, version), where in places.items()
            if len(where) != 1 or where[0].endswith("(still there)") or (key, version) not in uploaded
        ]
        assert not problems, "files not accounted for:\n  " + "\n  ".join(problems)

    def assert_kpis(self, uploads: Iterable[Upload] | None = None) -> None:
        expected_orders, expected_categories = self.expected_kpis(uploads)
        orders, categories = self.kpis()
        assert orders == expected_orders, _diff("OrderKPIs", orders, expected_orders)
        assert categories == expected_categories, _diff("CategoryKPIs", categories, expected_categories)

    def assert_converged(self) -> None:
        self.assert_kpis()
        self.assert_accounted()

    # -------------------------------------------------------------------------- report
    def describe(self) -> str:
        """The scenario, the files uploaded and where each ended, the executions and their states."""
        self.aws.resume()
        lines = [f"scenario {self.name}: bucket {self.bucket}, state machine {self.settings.state_machine_name}"]
        lines += [f"  note: {note}" for note in self.notes]
        try:
            places = self.whereabouts()
            lines.append("uploads (arrival order) and where each version ended:")
            for n, upload in enumerate(self.uploads, start=1):
                where = places.get((upload.key, upload.version_id)) or ["LOST: in neither archive/ nor rejected/"]
                lines.append(f"  {n}. {upload.key} v{upload.version_id} ({len(upload.data)} B) -> {', '.join(where)}")
            for prefix in (self.settings.input_prefix, self.settings.archive_prefix, self.settings.rejected_prefix):
                keys = self.keys(prefix)
                lines.append(f"{prefix} ({len(keys)}): {', '.join(keys)}")
            sfn = self.client("stepfunctions")
            lines.append("executions:")
            for arn in dict.fromkeys(self.execution_arns):
                described = sfn.describe_execution(executionArn=arn)
                detail = f" {described.get('error')}: {described.get('cause')}" if described.get("error") else ""
                lines.append(f"  {arn.rsplit(':', 1)[-1]}: {described['status']}{detail}")
                lines.append(f"    states: {' > '.join(self.states_entered(arn))}")
                for key in self.keys(f"{self.settings.runs_prefix}{arn.rsplit(':', 1)[-1]}/"):
                    if key.endswith(".json"):
                        record = json.loads(self.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read())
                        if record.get("status") != "SUCCEEDED":
                            error = str(record.get("error"))[:600]
                            lines.append(f"    {key}: exit code {record.get('exit_code')}: {error}")
        except Exception as error:  # the report must not hide the failure it reports
            lines.append(f"(could not read the stack: {type(error).__name__}: {error})")
        names = {arn.rsplit(":", 1)[-1] for arn in self.execution_arns}
        for log in sorted(self.aws.log_dir.glob("*.log"), key=lambda p: p.stat().st_mtime):
            text = log.read_text(errors="replace")
            first = text.split("\n", 1)[0]
            if any(first.endswith(" " + name) for name in names):
                tail = "\n".join(text.splitlines()[-15:])
                lines.append(f"task log {log.name} ({first}):\n{tail}")
        return "\n".join(lines)


def _diff(table: str, found: dict, expected: dict) -> str:
    missing = sorted(set(expected) - set(found), key=str)
    extra = sorted(set(found) - set(expected), key=str)
    wrong = sorted((k for k in set(found) & set(expected) if found[k] != expected[k]), key=str)
    lines = [f"{table} differs from the reference: {len(missing)} missing, {len(extra)} extra, {len(wrong)} wrong"]
    lines += [f"  missing {k}: {expected[k]}" for k in missing[:5]]
    lines += [f"  extra {k}: {found[k]}" for k in extra[:5]]
    lines += [f"  wrong {k}: {found[k]} != {expected[k]}" for k in wrong[:5]]
    return "\n".join(lines)
