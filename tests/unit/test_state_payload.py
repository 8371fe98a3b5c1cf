"""A batch's move plan within Step Functions' 256 KiB state quota (docs/architecture.md, "Orchestration")."""

from __future__ import annotations

import pytest

from pipeline_tasks import state_payload
from pipeline_tasks.documents import BatchValidation, RejectedFile, ValidFile
from pipeline_tasks.errors import StepFailed
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps import files

SETTINGS = Settings()
VERSION = "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"[:32]


def _worst_plan(keys: list[str]) -> dict:
    """Every file rejected with the longest reason and one superseded upload: the largest plan of these keys."""
    validation = BatchValidation(invalid_files=tuple(RejectedFile(k, None, "r" * 400, VERSION) for k in keys))
    return files.move_plan(SETTINGS, validation, older={k: [VERSION] for k in keys})


def _drained(make_key) -> list[str]:
    """Keys taken as the orchestrator takes them: until their largest entries fill the budget, then one more."""
    keys: list[str] = []
    total = 0
    while total < state_payload.MOVE_PLAN_BUDGET:
        keys.append(make_key(len(keys)))
        total += state_payload.entry_bytes(SETTINGS, keys[-1])
    return keys


@pytest.mark.parametrize(
    "make_key",
    [
        lambda n: f"input/orders_part{n:04d}.csv",
        lambda n: f"input/{n:03d} {'日' * 330}.csv",  # about S3's longest key, of 3-byte characters
        lambda n: f"input/{n:03d} export #1 + 100% ü?.csv",
    ],
)
def test_the_largest_plan_of_a_drained_batch_fits_the_state_quota(make_key):
    keys = _drained(make_key)
    assert state_payload.size(_worst_plan(keys)) <= state_payload.MOVE_PLAN_LIMIT < state_payload.STATE_PAYLOAD_LIMIT
    assert state_payload.check_fits(_worst_plan(keys), "e-1")


def test_the_largest_entry_is_that_of_the_longest_key():
    longest = state_payload.largest_entry_bytes(SETTINGS)
    assert longest >= state_payload.entry_bytes(SETTINGS, "input/" + "é" * 509)
    assert longest >= state_payload.entry_bytes(SETTINGS, "input/" + "x" * 1018)
    assert longest >= state_payload.entry_bytes(SETTINGS, "input/" + "\x02" * 1018)
    assert state_payload.MOVE_PLAN_BUDGET + longest <= state_payload.MOVE_PLAN_LIMIT


def test_five_hundred_plain_files_were_more_than_a_state_can_carry():
    """The former batch limit (500 files) alone did not keep a batch within the quota."""
    keys = [f"input/orders_part{n:04d}.csv" for n in range(500)]
    validation = BatchValidation(valid_files=tuple(ValidFile(k, "orders", 1, {}, VERSION) for k in keys))
    plan = files.move_plan(SETTINGS, validation, older={k: [VERSION] for k in keys})
    assert state_payload.size(plan) > state_payload.STATE_PAYLOAD_LIMIT


def test_a_plan_past_the_limit_fails_naming_its_size_and_what_to_do():
    plan = _worst_plan([f"input/orders_part{n:04d}.csv" for n in range(400)])
    with pytest.raises(StepFailed, match=r"move plan of e-1 \(400 file\(s\)\) is [\d,]+ bytes.*ecom-pipeline rerun"):
        state_payload.check_fits(plan, "e-1")


def test_size_counts_utf8_bytes_as_step_functions_does():
    assert state_payload.size({"k": "日"}) == len('{"k":"日"}'.encode())
