"""Limits AWS Step Functions enforces on the definition that moto's interpreter does not."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pipeline_tasks.local import asl

#: "You can nest up to 10 intrinsic functions within a field" — its example counts every call in the
#: field (https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html).
MAX_INTRINSICS_PER_FIELD = 10


def _fields(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith(".$") and isinstance(value, str):
                yield f"{path}/{key}", value
            yield from _fields(value, f"{path}/{key}")
    elif isinstance(node, list):
        for n, value in enumerate(node):
            yield from _fields(value, f"{path}/{n}")


def test_no_field_calls_more_intrinsic_functions_than_aws_allows():
    fields = dict(_fields(asl.load()))
    assert any("States." in value for value in fields.values())
    counts = {path: len(re.findall(r"\bStates\.[A-Za-z]+\(", value)) for path, value in fields.items()}
    assert max(counts.values()) <= MAX_INTRINSICS_PER_FIELD, {p: c for p, c in counts.items() if c > 10}
