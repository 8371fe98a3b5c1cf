"""The reliability suite: faults injected into the whole local flow, then the documented recovery.

One emulator (moto with the local stack's workarounds, on 127.0.0.1) serves every scenario
of a run; each scenario provisions the pipeline on it under names of its own (see
``harness.Scenario``). The suite takes minutes, so it runs only when asked for:
``make test-reliability`` (``pytest tests/reliability -m reliability``), or by naming its
folder or files; a plain ``pytest`` skips it.

A failing scenario's report carries a section with the scenario, the files uploaded and
where each ended, the bucket's input/, archive/ and rejected/, every execution with its
states, and the tails of its task logs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from pipeline_tasks.local.stack import MotoServer
from tests.reliability.harness import REPO, LocalAws, Scenario, signal_all, tree

HERE = Path(__file__).parent


def _asked_for(config: pytest.Config) -> bool:
    """True when the run names this folder (or a file in it), or selects the reliability marker."""
    if "reliability" in (config.getoption("markexpr") or ""):
        return True
    for argument in config.args:
        path = Path(argument.split("::", 1)[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="the reliability suite runs with `make test-reliability`")
    asked = _asked_for(config)
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.reliability)
            if not asked:
                item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    scenario: Scenario | None = getattr(item, "reliability_scenario", None)
    if scenario is not None and report.when == "call" and report.failed:
        report.sections.append((f"scenario {scenario.name}", scenario.describe()))


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    """The emulator every scenario shares; stopped at the end with every process it started."""
    log_dir = tmp_path_factory.mktemp("task-logs")
    server = MotoServer(emulator=True, workdir=REPO, log_dir=log_dir, startup_timeout=60).start()
    aws = LocalAws(server, log_dir)
    try:
        yield aws
    finally:
        aws.resume()
        leftovers = tree(aws.process)[1:]
        server.stop()
        signal_all(leftovers, 9)
        psutil.wait_procs(leftovers, timeout=10)


@pytest.fixture
def new_scenario(local_aws: LocalAws, request: pytest.FixtureRequest) -> Iterator[Callable[..., Scenario]]:
    """Provision a scenario (Settings overrides as keyword arguments); its tasks are stopped at the end."""
    made: list[Scenario] = []

    def make(**overrides: Any) -> Scenario:
        scenario = Scenario.provision(request.node.name, local_aws, **overrides)
        request.node.reliability_scenario = scenario
        made.append(scenario)
        return scenario

    yield make
    local_aws.resume()
    for scenario in made:
        print("\n".join([f"scenario {scenario.name}:", *scenario.notes]))  # shown with -rP
        names = {arn.rsplit(":", 1)[-1] for arn in scenario.execution_arns}
        stray = [p for p in local_aws.task_processes() if names & set(p.cmdline())]
        for process in stray:  # a scenario that failed half-way leaves no task running into the next
            signal_all(tree(process), 9)


@pytest.fixture
def scenario(new_scenario: Callable[..., Scenario]) -> Scenario:
    return new_scenario()
