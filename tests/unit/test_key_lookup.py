"""Key membership for lookups in the staged tables: the bitmap agrees with Arrow's hash lookup."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipeline_tasks import key_lookup


def _expected(values: pa.Array, wanted: pa.Array) -> list[bool]:
    keys = set(wanted.to_pylist())
    return [value is not None and value in keys for value in values.to_pylist()]


@pytest.mark.parametrize("seed", range(20))
def test_is_in_answers_as_a_set_lookup_would_with_nulls_and_values_outside_the_range(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 200))
    values = pa.array(rng.integers(-50, 300, n), mask=rng.random(n) < 0.1, type=pa.int64() if seed % 2 else pa.int32())
    wanted = pa.array(np.unique(rng.integers(-20, 250, int(rng.integers(0, 40)))), pa.int64())
    assert key_lookup.is_in(values, wanted).to_pylist() == _expected(values, wanted)


def test_is_in_handles_the_int64_extremes_and_falls_back_beyond_the_bitmap_range():
    extremes = pa.array([-(2**63), 2**63 - 1, 5, None, 6])
    assert key_lookup.is_in(extremes, pa.array([5, 6])).to_pylist() == [False, False, True, False, True]
    spread = pa.array([1, 2**40, 3])
    assert key_lookup.is_in(spread, pa.array([1, 2**40])).to_pylist() == [True, True, False]
    assert key_lookup.is_in(pa.array(["a", None, "b"]), pa.array(["a"])).to_pylist() == [True, False, False]
    assert key_lookup.is_in(pa.array(["a", None]), pa.array(["a", None])).to_pylist() == [True, False]
    assert key_lookup.is_in(pa.array([1, 2]), pa.array([], pa.int64())).to_pylist() == [False, False]
    assert key_lookup.is_in(pa.array([1, 2]), pa.array([None], pa.int64())).to_pylist() == [False, False]


def test_is_in_over_millions_of_keys_equals_pyarrow():
    rng = np.random.default_rng(7)
    values = pa.array(rng.integers(0, 2_000_000, 1_000_000))
    wanted = pa.array(np.unique(rng.integers(0, 2_000_000, 50_000)))
    assert key_lookup.is_in(values, wanted).equals(pc.is_in(values, value_set=wanted))


@pytest.mark.parametrize("seed", range(20))
def test_any_per_part_tells_which_parts_hold_a_hit_including_empty_parts(seed):
    rng = np.random.default_rng(seed)
    lengths = [int(n) for n in rng.integers(0, 4, int(rng.integers(1, 8)))]
    mask = rng.random(sum(lengths)) < 0.2
    bounds = np.cumsum([0, *lengths])
    expected = [bool(mask[start:end].any()) for start, end in itertools.pairwise(bounds)]
    assert key_lookup._any_per_part(pa.array(mask, pa.bool_()), lengths) == expected


def _actions(bounds: list[tuple[int | None, int | None]]) -> pa.Table:
    low, high = zip(*bounds, strict=True)
    return pa.table(
        {
            "path": [f"f{n}" for n in range(len(bounds))],
            "min.id": pa.array(low, pa.int64()),
            "max.id": pa.array(high, pa.int64()),
        }
    )


@pytest.mark.parametrize("seed", range(20))
def test_may_hold_keeps_exactly_the_files_whose_bounds_admit_a_wanted_key(seed):
    rng = np.random.default_rng(seed)
    bounds = []
    for _ in range(int(rng.integers(1, 12))):
        low = int(rng.integers(0, 100))
        bounds.append((low, low + int(rng.integers(0, 30))))
    wanted = pa.array(np.unique(rng.integers(-5, 140, int(rng.integers(0, 10)))), pa.int64())
    expected = [any(low <= key <= high for key in wanted.to_pylist()) for low, high in bounds]
    assert key_lookup.may_hold(_actions(bounds), "id", wanted).tolist() == expected


def test_may_hold_keeps_files_without_statistics_and_judges_only_integers():
    actions = _actions([(1, 5), (None, None), (10, 20)])
    assert key_lookup.may_hold(actions, "id", pa.array([7])).tolist() == [False, True, False]
    assert key_lookup.may_hold(actions, "id", pa.array([7, None])).tolist() == [False, True, False]
    # Nothing wanted (or only nulls): no file can hold it.
    assert key_lookup.may_hold(actions, "id", pa.array([])).tolist() == [False, False, False]
    assert key_lookup.may_hold(actions, "id", pa.array([None], pa.int64())).tolist() == [False, False, False]
    # No statistics for the column, or not integers: every file may hold the keys.
    assert key_lookup.may_hold(actions, "order_id", pa.array([7])).tolist() == [True, True, True]
    assert key_lookup.may_hold(actions, "id", pa.array(["7"])).tolist() == [True, True, True]
