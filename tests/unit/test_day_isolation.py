"""A transform failure on one day never blocks the other days' KPIs (steps.transform.compute.compute_by_halves)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from pipeline_tasks.errors import StepFailed
from pipeline_tasks.steps.transform.compute import MAX_ISOLATION_ATTEMPTS, compute_by_halves

DAYS = [date(2024, 1, 1) + timedelta(days=n) for n in range(200)]


class Computer:
    """Computes one aggregate row per day, failing for any subset holding a poisoned day."""

    def __init__(self, poisoned: set[date]) -> None:
        self.poisoned = poisoned
        self.calls = 0

    def __call__(self, days: list[date]):
        self.calls += 1
        bad = self.poisoned & set(days)
        if bad:
            raise ArithmeticError(f"overflow on {min(bad).isoformat()}")
        return [{"order_date": d} for d in days], [{"order_date": d, "category": "Tops"} for d in days]


@pytest.mark.parametrize("poisoned", [{DAYS[0]}, {DAYS[137]}, {DAYS[5], DAYS[6], DAYS[199]}])
def test_the_failing_days_are_isolated_and_every_other_day_is_computed(poisoned):
    computer = Computer(poisoned)
    orders, categories, blocked = compute_by_halves(computer, DAYS)
    assert sorted(blocked) == sorted(poisoned)
    assert all(reason.startswith("ArithmeticError: overflow on") for reason in blocked.values())
    assert [row["order_date"] for row in orders] == [d for d in DAYS if d not in poisoned]
    assert len(categories) == len(DAYS) - len(poisoned)
    assert computer.calls <= 2 * len(poisoned) * 9  # halving: about log2(200) attempts per poisoned day


def test_nothing_fails_in_one_attempt():
    computer = Computer(set())
    assert compute_by_halves(computer, DAYS)[2] == {} and computer.calls == 1


def test_a_failure_of_every_day_stops_within_the_attempt_budget():
    computer = Computer(set(DAYS))
    with pytest.raises(StepFailed, match="could not isolate"):
        compute_by_halves(computer, DAYS)
    assert computer.calls == MAX_ISOLATION_ATTEMPTS
