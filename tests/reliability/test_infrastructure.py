"""The infrastructure fails under a running batch: the local AWS frozen for a while, a task's disk full."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.expected_states import FAILED_AT_TRANSFORM, PROCESSED
from tests.reliability.harness import TASK_TIMEOUT, Scenario, jvm_of, shop, wait_until

FROZEN_SECONDS = 20


def test_local_aws_frozen_during_the_transform(scenario: Scenario) -> None:
    """The moto server process (S3, DynamoDB, Step Functions, the ECS agent: all of AWS here)
    is stopped with SIGSTOP for 20 s once the transform's Spark JVM runs, then resumed. Every
    call in flight waits; the batch either rides it out or fails and is rerun. Either way
    it converges."""
    scenario.upload(shop(5))
    outcome = scenario.trigger()
    task = scenario.task("transform", str(outcome["execution_id"]))
    wait_until(lambda: jvm_of(task), TASK_TIMEOUT, "the transform's JVM")
    os.kill(scenario.aws.pid, signal.SIGSTOP)
    try:
        time.sleep(FROZEN_SECONDS)
    finally:
        os.kill(scenario.aws.pid, signal.SIGCONT)
    scenario.notes.append(f"froze the local AWS for {FROZEN_SECONDS} s once the transform's JVM ran")

    report = scenario.follow(str(outcome["execution_arn"]))
    scenario.notes.append(f"the frozen execution ended {report.status}: {report.error} {report.cause}")
    if report.status != "SUCCEEDED":
        assert scenario.keys("input/") == sorted(outcome["keys"])
        report = scenario.rerun(str(outcome["execution_id"]))
    assert (report.status, report.states) == ("SUCCEEDED", PROCESSED), report
    scenario.assert_converged()


@pytest.fixture
def full_disk(tmp_path: Path):
    """A 1 MB tmpfs filled to the last byte (root may mount; otherwise the scenario is skipped);
    the test grows it (remount) to fix the fault."""
    mount = tmp_path / "scratch"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    filler = mount / "filler"
    try:
        with filler.open("wb", buffering=0) as handle, contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * 4096)
        assert shutil.disk_usage(mount).free == 0
        yield mount, filler
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_full_disk_in_the_transform_task(new_scenario, full_disk) -> None:
    """The transform task's scratch disk is full: Spark's local directory (``spark.local.dir``,
    where its context copies its jars and writes shuffle files; the task's ephemeral storage
    on ECS) is a tmpfs with no byte free. Only the transform uses it. The batch fails at the
    transform (its Spark context cannot start: "No space left on device") and leaves its files
    in input/; once the disk has room, ``ecom-pipeline rerun`` converges."""
    mount, filler = full_disk
    scenario: Scenario = new_scenario(spark_conf={"spark.local.dir": str(mount)})
    scenario.upload(shop(6))
    outcome = scenario.trigger()
    execution_id = str(outcome["execution_id"])
    report = scenario.follow(str(outcome["execution_arn"]))
    assert report.states == FAILED_AT_TRANSFORM
    record = json.loads(
        scenario.client("s3")
        .get_object(Bucket=scenario.bucket, Key=f"runs/{execution_id}/30_transform_kpis.json")["Body"]
        .read()
    )
    assert record["status"] == "FAILED" and "No space left on device" in record["error"], record
    assert scenario.keys("input/") == sorted(outcome["keys"])

    # The cause is fixed: the filler goes and the disk grows, since Spark copies its jars
    # (tens of MB) into its local directory when its context starts.
    filler.unlink()
    subprocess.run(["mount", "-o", "remount,size=1g", str(mount)], check=True, timeout=30)
    final = scenario.rerun(execution_id)
    assert (final.status, final.states) == ("SUCCEEDED", PROCESSED), final
    scenario.assert_converged()
