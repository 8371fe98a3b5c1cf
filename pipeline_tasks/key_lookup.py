"""Key lookups in Arrow arrays: membership of values in a key set, and file pruning by min/max statistics.

Pure Arrow and numpy, no I/O: the Delta readers (``pipeline_tasks.io.delta``) and the
transform use these to find the rows and the data files that hold some keys.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Widest range of wanted integers (max - min + 1) that ``is_in`` tests with a bitmap (a byte each).
BITMAP_RANGE = 1 << 27


def is_in(values: pa.Array, wanted: pa.Array) -> pa.BooleanArray:
    """Whether each of ``values`` is one of ``wanted`` (a null never is).

    Integer keys within ``BITMAP_RANGE`` are looked up in a bitmap, an index per
    value, where ``pc.is_in`` hashes every value. Pass one flat array: ``pc.is_in``
    over a chunked array would rebuild its value set for every chunk.
    """
    keys = wanted.drop_null()
    if len(keys) == 0 or len(values) == 0:
        return pa.array(np.zeros(len(values), dtype=bool))
    if pa.types.is_integer(values.type) and pa.types.is_integer(keys.type):
        numbers = keys.to_numpy().astype(np.int64)
        low, high = int(numbers.min()), int(numbers.max())
        if high - low < BITMAP_RANGE:
            return _in_bitmap(values, numbers, low, high)
    return pc.fill_null(pc.is_in(values, value_set=keys), False)


def _in_bitmap(values: pa.Array, keys: np.ndarray, low: int, high: int) -> pa.BooleanArray:
    """``is_in`` for integer ``values`` against ``keys``, all of them within ``[low, high]``."""
    span = high - low
    bitmap = np.zeros(span + 1, dtype=bool)
    bitmap[keys - low] = True
    # Offsets from ``low``, as unsigned: a value below ``low`` wraps around above ``span``.
    offsets = (pc.fill_null(values, low).to_numpy().astype(np.int64, copy=False) - low).view(np.uint64)
    inside = offsets <= span
    np.minimum(offsets, span, out=offsets)
    found = bitmap[offsets]
    found &= inside
    if values.null_count:
        found &= values.is_valid().to_numpy(zero_copy_only=False)
    return pa.array(found)


def parts_holding(parts: list[pa.Array], wanted: pa.Array) -> list[bool]:
    """For each array of ``parts``, whether it holds one of ``wanted`` (one ``is_in`` over them all)."""
    if not parts:
        return []
    found = is_in(pa.concat_arrays(parts), wanted)
    return _any_per_part(found, [len(part) for part in parts])


def _any_per_part(mask: pa.Array, lengths: list[int]) -> list[bool]:
    """Whether ``mask`` is true anywhere within each consecutive part of the given lengths."""
    flags = mask.to_numpy(zero_copy_only=False)
    sizes = np.array(lengths, dtype=np.int64)
    starts = np.cumsum(sizes) - sizes
    found = np.zeros(len(lengths), dtype=bool)
    filled = sizes > 0
    if filled.any():
        # Each non-empty part runs from its start to the next non-empty part's start.
        found[filled] = np.logical_or.reduceat(flags, starts[filled])
    return found.tolist()


def may_hold(actions: pa.Table, column: str, wanted: pa.Array) -> np.ndarray:
    """For each add action, whether its file's min/max statistics of ``column`` admit a wanted value.

    ``actions`` are a Delta table's add actions, flattened (``min.<column>`` and
    ``max.<column>`` columns). Only integer columns are judged; a file without
    statistics may hold anything, and a null wanted value matches nothing. The cost
    is a sort of the wanted keys and two binary searches per file, instead of a
    read of every file's column.
    """
    bounds = [f"min.{column}", f"max.{column}"]
    everything = np.ones(actions.num_rows, dtype=bool)
    if wanted.null_count == len(wanted):
        return ~everything
    if not pa.types.is_integer(wanted.type) or not set(bounds) <= set(actions.column_names):
        return everything
    low, high = (actions.column(name) for name in bounds)
    if not (pa.types.is_integer(low.type) and pa.types.is_integer(high.type)):
        return everything
    keys = np.sort(wanted.drop_null().to_numpy().astype(np.int64))
    known = pc.and_(pc.is_valid(low), pc.is_valid(high)).to_numpy(zero_copy_only=False)
    lows, highs = (pc.fill_null(bound, 0).to_numpy(zero_copy_only=False).astype(np.int64) for bound in (low, high))
    inside = np.searchsorted(keys, highs, side="right") > np.searchsorted(keys, lows, side="left")
    return np.where(known, inside, everything)
