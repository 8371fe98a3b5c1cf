"""Operations go wrong around the batches: a KPI table emptied, triggers at once, a file
re-uploaded mid-run, a failed batch rerun after a newer one."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

from pipeline_tasks import executions
from tests.expected_states import PROCESSED
from tests.reliability.harness import Scenario, kernel_of, shop


def _succeeds(scenario: Scenario, outcome: dict[str, Any]) -> None:
    report = scenario.follow(str(outcome["execution_arn"]))
    assert (report.status, report.states) == ("SUCCEEDED", PROCESSED), report


def test_kpi_table_emptied_between_batches(scenario: Scenario) -> None:
    """OrderKPIs is emptied after a batch; the next batch's transform finds the table out of
    step with its record and repairs it. Then CategoryKPIs is emptied and ``ecom-pipeline
    reconcile`` repairs it."""
    scenario.upload(shop(7, tag="_a"))
    _succeeds(scenario, scenario.trigger())
    scenario.assert_converged()

    assert scenario.empty_table(scenario.settings.order_kpis_table) > 0
    scenario.upload(shop(8, first_order=10_001, first_day=date(2023, 6, 1), tag="_b"))
    _succeeds(scenario, scenario.trigger())
    scenario.assert_converged()

    assert scenario.empty_table(scenario.settings.category_kpis_table) > 0
    done = scenario.cli("reconcile", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "repaired" in done.stdout, done.stdout
    scenario.assert_converged()


def test_two_triggers_at_once(scenario: Scenario) -> None:
    """Two orchestrator runs at the same instant: exactly one execution starts, with every
    uploaded file once; the other run starts nothing. A later trigger finds nothing new."""
    scenario.upload(shop(9))
    barrier = threading.Barrier(2, timeout=30)
    outcomes: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def trigger() -> None:
        try:
            barrier.wait()
            outcomes.append(executions.invoke_orchestrator(scenario.settings))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=trigger) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(outcomes) == 2, (errors, outcomes)
    started = [o for o in outcomes if o["started"]]
    assert len(started) == 1, outcomes
    scenario.execution_arns.append(str(started[0]["execution_arn"]))
    [other] = [o for o in outcomes if not o["started"]]
    assert any(reason in other["reason"] for reason in ("lock", "running", "no new file")), other
    keys = started[0]["keys"]
    assert len(keys) == len(set(keys)) and sorted(keys) == sorted(u.key for u in scenario.uploads)
    sfn = scenario.client("stepfunctions")
    assert len(sfn.list_executions(stateMachineArn=scenario.settings.state_machine_arn)["executions"]) == 1

    _succeeds(scenario, started[0])
    later = executions.invoke_orchestrator(scenario.settings)
    assert not later["started"] and "no new file" in later["reason"], later
    scenario.assert_converged()


def test_reupload_while_the_transform_runs(scenario: Scenario) -> None:
    """A changed ``orders.csv`` is uploaded while its batch's transform runs: the batch stages
    and archives the version it pinned; the new version stays in input/ and the next
    trigger processes it. The KPIs equal the reference fed both versions in order."""
    first = shop(10, orders=200)
    scenario.upload(first)
    outcome = scenario.trigger()
    scenario.task("transform", str(outcome["execution_id"]))
    [(_, changed)] = [f for f in shop(11, orders=200, first_order=101) if f[0] == "orders.csv"]
    scenario.upload([("orders.csv", changed)])
    _succeeds(scenario, outcome)

    s3 = scenario.client("s3")
    archived = s3.get_object(Bucket=scenario.bucket, Key="archive/orders.csv")
    assert archived["Body"].read() == dict(first)["orders.csv"]
    assert scenario.keys("input/") == ["input/orders.csv"]
    assert s3.get_object(Bucket=scenario.bucket, Key="input/orders.csv")["Body"].read() == changed

    second = scenario.trigger()
    assert second["keys"] == ["input/orders.csv"]
    _succeeds(scenario, second)
    scenario.assert_converged()


def _killed_at_validation(scenario: Scenario) -> dict[str, Any]:
    outcome = scenario.trigger()
    scenario.kill_task_when(
        "validate",
        str(outcome["execution_id"]),
        lambda task: kernel_of(task) is not None,
        what="once its kernel ran",
    )
    report = scenario.follow(str(outcome["execution_arn"]))
    assert report.status == "FAILED", report
    assert scenario.keys("input/") == sorted(outcome["keys"])
    return outcome


def test_rerun_out_of_order(scenario: Scenario) -> None:
    """Batch A fails (its validation task killed); batch B, uploaded later under other names,
    changes half of A's orders and items (statuses, prices, days) and succeeds; then
    ``ecom-pipeline rerun A``. A's rows are older than B's: B's stay. The KPIs equal
    processing A then B."""
    scenario.upload(shop(12, orders=200, tag="_a"))
    failed = _killed_at_validation(scenario)
    scenario.upload(shop(13, orders=200, first_order=101, tag="_b"))
    _succeeds(scenario, scenario.trigger())
    assert scenario.keys("input/") == sorted(failed["keys"])

    report = scenario.rerun(str(failed["execution_id"]))
    assert (report.status, report.states) == ("SUCCEEDED", PROCESSED), report
    scenario.assert_converged()


def test_rerun_out_of_order_same_file_names(scenario: Scenario) -> None:
    """As ``test_rerun_out_of_order``, but B re-uploads A's file names (``products.csv``,
    ``orders.csv``, ``order_items.csv``): the same S3 keys, newer versions. A's versions
    wait in input/ for their rerun; the KPIs must equal processing A then B, and A's
    versions must end in archive/ like every other upload."""
    scenario.upload(shop(14, orders=200))
    failed = _killed_at_validation(scenario)
    scenario.upload(shop(15, orders=200, first_order=101))
    _succeeds(scenario, scenario.trigger())

    # B moved its own versions only: A's pinned versions wait in input/ (current again).
    assert scenario.keys("input/") == sorted(failed["keys"])
    done = scenario.cli("rerun", str(failed["execution_id"]))
    assert done.returncode == 0 and done.stdout.startswith("started "), done.stdout + done.stderr
    report = scenario.follow(scenario.execution_arns[-1])
    assert (report.status, report.states) == ("SUCCEEDED", PROCESSED), report
    scenario.assert_converged()
