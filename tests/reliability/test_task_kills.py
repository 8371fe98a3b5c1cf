"""A task, or its notebook kernel, killed mid-run; the failed batch's files wait in input/ and a rerun converges."""

from __future__ import annotations

from expected_states import PROCESSED
from harness import Scenario, kernel_of, shop

FAILED_AT_VALIDATION = ["ValidationTask", "CheckValidationExit", "NotifyFailure", "PipelineFailed"]


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
