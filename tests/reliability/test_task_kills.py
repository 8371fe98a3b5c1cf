"""A task, or its notebook kernel, killed mid-run; the failed batch's files wait in input/ and a rerun converges."""

from __future__ import annotations

import json

import psutil

from tests.expected_states import FAILED_AT_STAGING, FAILED_AT_TRANSFORM, FAILED_AT_VALIDATION, PROCESSED
from tests.reliability.harness import TASK_TIMEOUT, Scenario, jvm_of, kernel_of, shop, wait_until


def _failed_then_rerun(scenario: Scenario, outcome: dict, states: list[str]) -> None:
    """The killed execution failed with ``states``, left its files in input/; ``ecom-pipeline rerun`` converges."""
    report = scenario.follow(str(outcome["execution_arn"]))
    assert report.status == "FAILED", report
    assert report.states == states
    assert scenario.keys("input/") == sorted(outcome["keys"])
    rerun = scenario.rerun(str(outcome["execution_id"]))
    assert rerun.name == f"{outcome['execution_id']}-rerun-1"
    assert (rerun.status, rerun.states) == ("SUCCEEDED", PROCESSED), rerun
    scenario.assert_converged()


def test_validation_task_killed(scenario: Scenario) -> None:
    scenario.upload(shop(1))
    outcome = scenario.trigger()
    execution_id = str(outcome["execution_id"])
    result = f"results/{execution_id}.json"

    def before_the_result() -> None:
        assert not scenario.exists(result), "the validation result was already written"

    scenario.kill_task_when(
        "validate",
        execution_id,
        lambda task: kernel_of(task) is not None,
        before_the_result,
        what="once its kernel ran",
    )
    _failed_then_rerun(scenario, outcome, FAILED_AT_VALIDATION)


def test_staging_task_killed_before_and_after_its_delta_commit(scenario: Scenario) -> None:
    """Two points of one batch: the first execution's staging task is killed while delta-rs
    writes the order items' data files, before their commit; the first rerun's is killed
    right after the order items' commit, before the stage report. The second rerun converges.

    Orders spread over 16 years make about 200 month partitions, so the data files take a
    while to write: the kill lands between the first data file and the commit.
    """
    scenario.upload(shop(2, orders=400, span_days=6000))
    outcome = scenario.trigger()
    execution_id = str(outcome["execution_id"])

    def uncommitted() -> None:
        commits = scenario.delta_commits("order_items")
        assert commits in ([], ["staging/order_items/_delta_log/00000000000000000000.json"]), commits
        assert scenario.delta_data_files("order_items"), "no data file written yet"

    scenario.kill_task_when(
        "stage",
        execution_id,
        lambda _: bool(scenario.delta_data_files("order_items")),
        uncommitted,
        what="while the order items' data files were written, before their Delta commit",
    )
    assert scenario.follow(str(outcome["execution_arn"])).states == FAILED_AT_STAGING
    assert scenario.keys("input/") == sorted(outcome["keys"])
    written_before = scenario.delta_data_files("order_items")

    rerun = scenario.start_rerun(execution_id)
    committed = len(scenario.delta_commits("order_items"))

    def committed_not_reported() -> None:
        assert len(scenario.delta_commits("order_items")) > committed
        assert not scenario.exists(f"reports/{rerun['execution_id']}/stage.json"), "the stage report was written"

    scenario.kill_task_when(
        "stage",
        str(rerun["execution_id"]),
        lambda _: len(scenario.delta_commits("order_items")) > committed,
        committed_not_reported,
        what="right after the order items' Delta commit, before the stage report",
    )
    assert scenario.follow(str(rerun["execution_arn"])).states == FAILED_AT_STAGING
    assert scenario.keys("input/") == sorted(outcome["keys"])
    assert written_before  # the first kill left data files no commit names: Delta ignores them

    final = scenario.rerun(execution_id)
    assert final.name == f"{execution_id}-rerun-2"
    assert (final.status, final.states) == ("SUCCEEDED", PROCESSED), final
    scenario.assert_converged()


def test_transform_task_killed_before_spark_and_mid_dynamodb_write(scenario: Scenario) -> None:
    """The first execution's transform task is killed before its JVM starts; the first rerun's
    while it writes the KPI items (some written, not all). The second rerun converges: the
    days the killed run marked dirty are recomputed and read back from DynamoDB.

    1,500 orders on 1,500 days make about 4,000 KPI items, a few seconds of writes.
    """
    scenario.upload(shop(3, orders=1500, span_days=1500))
    outcome = scenario.trigger()
    execution_id = str(outcome["execution_id"])

    def no_jvm() -> None:
        task = scenario.task("transform", execution_id, timeout=1)
        assert jvm_of(task) is None, "Spark had started"

    scenario.kill_task_when(
        "transform", execution_id, lambda task: kernel_of(task) is not None, no_jvm, what="before Spark started"
    )
    assert scenario.follow(str(outcome["execution_arn"])).states == FAILED_AT_TRANSFORM
    assert scenario.kpis() == ({}, {})

    expected_orders, expected_categories = scenario.expected_kpis()
    total = len(expected_orders) + len(expected_categories)
    tables = (scenario.settings.order_kpis_table, scenario.settings.category_kpis_table)
    rerun = scenario.start_rerun(execution_id)

    def part_written() -> None:
        written = sum(scenario.item_count(table) for table in tables)
        assert 0 < written < total, f"{written} of {total} KPI items written"
        scenario.notes.append(f"killed with {written} of {total} KPI items written")

    scenario.kill_task_when(
        "transform",
        str(rerun["execution_id"]),
        lambda _: scenario.item_count(tables[0]) > 0,
        part_written,
        what="while it wrote the KPI items",
    )
    assert scenario.follow(str(rerun["execution_arn"])).states == FAILED_AT_TRANSFORM
    assert scenario.keys("input/") == sorted(outcome["keys"])

    final = scenario.rerun(execution_id)
    assert (final.status, final.states) == ("SUCCEEDED", PROCESSED), final
    scenario.assert_converged()


def test_transform_kernel_killed(scenario: Scenario) -> None:
    """The transform notebook's kernel (ipykernel) is SIGKILLed once its Spark JVM runs: the
    task reports a dead kernel (exit code 6) and archives the notebook as far as it ran; the
    JVM does not outlive its kernel; a rerun converges."""
    scenario.upload(shop(4))
    outcome = scenario.trigger()
    execution_id = str(outcome["execution_id"])
    task = scenario.task("transform", execution_id)
    jvm = wait_until(lambda: jvm_of(task), TASK_TIMEOUT, "the transform's JVM")
    kernel = kernel_of(task)
    assert kernel is not None
    kernel.kill()
    scenario.notes.append(f"killed the transform kernel {kernel.pid} (its JVM {jvm.pid})")

    assert scenario.follow(str(outcome["execution_arn"])).states == FAILED_AT_TRANSFORM
    record = json.loads(
        scenario.client("s3")
        .get_object(Bucket=scenario.bucket, Key=f"runs/{execution_id}/30_transform_kpis.json")["Body"]
        .read()
    )
    assert (record["status"], record["exit_code"]) == ("FAILED", 6), record
    assert "kernel died" in record["error"]
    try:
        jvm.wait(timeout=60)
    except psutil.TimeoutExpired:
        jvm.kill()
        raise AssertionError(f"the JVM {jvm.pid} of the killed kernel still ran 60 s after it") from None
    assert scenario.keys("input/") == sorted(outcome["keys"])

    final = scenario.rerun(execution_id)
    assert (final.status, final.states) == ("SUCCEEDED", PROCESSED), final
    scenario.assert_converged()
