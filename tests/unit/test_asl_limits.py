"""Limits AWS Step Functions enforces on the definition that moto's interpreter does not."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from moto.stepfunctions.parser.asl.parse.intrinsic.intrinsic_parser import IntrinsicParser

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


def test_every_intrinsic_field_parses_with_the_intrinsic_grammar_as_aws_reads_it():
    """Each field as AWS reads it: the JSON string value, its escapes decoded.

    The intrinsic grammar (moto's port of LocalStack's, which follows AWS) refuses a control
    character, such as a line break, inside a string literal: its lexer's SAFECODEPOINT
    excludes U+0000 to U+001F. Yet moto's Step Functions ran a definition with such a
    literal. A multi-line message is a template read from a path (FailureNotice's Result).
    """
    fields = {path: value for path, value in _fields(asl.load()) if value.startswith("States.")}
    assert any("States.Format(" in value for value in fields.values())
    refused = {}
    for path, value in fields.items():
        try:
            IntrinsicParser.parse(value)
        except Exception as error:  # the parser raises ValueError or antlr's own errors
            refused[path] = str(error).splitlines()[0][:200]
    assert refused == {}
