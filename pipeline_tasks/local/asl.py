"""statemachine/pipeline.asl.json run in this process: the one description of a batch's sequence.

Step Functions runs the definition on AWS (and moto's interpreter on the local stack);
``runner.process_batch`` runs the same definition through ``interpret``, each Task and
Map state done by a local callable instead of ECS, Lambda, S3 or SNS. This module owns
reading the definition, naming what each of its tasks asks for (``Task``: an ECS task
runs a step notebook with the parameters its container command passes; a Lambda
function is named by its ``${…FunctionArn}``; a Map state moves the files of its
``ItemsPath`` to the destination its copy writes; an SNS publish names its topic), and
walking the states.

Interpreted: Task, Map (one action over all its items), Choice (the comparisons
below), Pass, Succeed and Fail; ``Next``/``End``, ``ResultPath``, ``Catch``
(``ErrorEquals``, ``ResultPath``, ``Next``), and JSON paths of the form ``$.a.b``.
Not interpreted: ``Retry`` (a local step runs once), ``ResultSelector`` (a local
action returns what the selector would select) and any other parameters.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_tasks.local.template import REPO

#: The state machine's definition, as the template deploys it.
DEFINITION = REPO / "statemachine" / "pipeline.asl.json"

#: The Choice comparisons interpreted: the rule's value against the variable's.
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "NumericEquals": lambda value, expected: value == expected,
    "BooleanEquals": lambda value, expected: value is expected,
    "StringEquals": lambda value, expected: value == expected,
}

_ARGUMENT = re.compile(r"'([^']*)'|(\$[\w.]*)")


class Unsupported(ValueError):
    """The definition uses something this interpreter does not."""


@dataclass(frozen=True)
class Task:
    """What a Task or Map state asks for: ``kind`` (ecs, lambda, move, sns) and ``name``.

    ``parameters`` name the JSON path of each input the state passes (a notebook's
    ``-p`` parameters, a Lambda's payload, a Map's ``items``).
    """

    kind: str
    name: str
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    def inputs(self, data: Any) -> dict[str, Any]:
        return {name: get(data, path) for name, path in self.parameters.items()}


@dataclass
class Outcome:
    """How an execution ended: ``SUCCEEDED`` or ``FAILED``, and the error a Catch caught."""

    status: str
    data: Any
    error: Exception | None = None
    fail: dict[str, Any] = field(default_factory=dict)


#: Does a task: the task and its inputs in, the task's result out (raises when it fails).
Act = Callable[[Task, dict[str, Any]], Any]


def load(path: Path = DEFINITION) -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(path.read_text())
    return definition


def get(data: Any, path: str) -> Any:
    """The value at a JSON path ``$`` or ``$.a.b`` (KeyError when absent)."""
    if path == "$":
        return data
    if not path.startswith("$."):
        raise Unsupported(f"JSON path {path!r}")
    for part in path[2:].split("."):
        data = data[part]
    return data


def put(data: Any, path: str | None, value: Any) -> Any:
    """``data`` with ``value`` at the ResultPath ``path`` (None: the result is discarded)."""
    if path is None:
        return data
    if path == "$":
        return value
    if not path.startswith("$."):
        raise Unsupported(f"ResultPath {path!r}")
    *parents, last = path[2:].split(".")
    document = copy.deepcopy(data)
    node = document
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return document


def task_of(state: dict[str, Any]) -> Task:
    """What a Task or Map state asks for, from its resource and parameters."""
    parameters = state.get("Parameters", {})
    if state["Type"] == "Map":
        processor = state["ItemProcessor"]
        copy = processor["States"][processor["StartAt"]]["Parameters"]
        destination = re.fullmatch(r"\$\.(\w+)_key", copy["Key.$"])
        if destination is None:
            raise Unsupported(f"Map state copying to {copy['Key.$']!r}")
        return Task("move", destination.group(1), {"items": state["ItemsPath"]})
    resource = state["Resource"]
    if resource == "arn:aws:states:::ecs:runTask.sync":
        [container] = parameters["Overrides"]["ContainerOverrides"]
        arguments = [text if path == "" else path for text, path in _ARGUMENT.findall(container["Command.$"])]
        step = arguments[arguments.index("notebook") + 1]
        flags = [i for i, argument in enumerate(arguments) if argument == "-p"]
        return Task("ecs", step, {arguments[i + 1]: arguments[i + 2] for i in flags})
    if resource == "arn:aws:states:::lambda:invoke":
        function = re.fullmatch(r"\$\{(\w+)FunctionArn\}", parameters["FunctionName"])
        if function is None:
            raise Unsupported(f"Lambda function {parameters['FunctionName']!r}")
        payload = {name[:-2]: path for name, path in parameters["Payload"].items() if name.endswith(".$")}
        return Task("lambda", function.group(1), payload)
    if resource == "arn:aws:states:::sns:publish":
        topic = re.fullmatch(r"\$\{(\w+)TopicArn\}", parameters["TopicArn"])
        if topic is None:
            raise Unsupported(f"SNS topic {parameters['TopicArn']!r}")
        return Task("sns", topic.group(1))
    raise Unsupported(f"Task resource {resource!r}")


def tasks(definition: dict[str, Any]) -> Iterator[tuple[str, Task]]:
    """Every top-level Task and Map state, with what it asks for (definition order)."""
    for name, state in definition["States"].items():
        if state["Type"] in ("Task", "Map"):
            yield name, task_of(state)


def choose(state: dict[str, Any], data: Any) -> str:
    """The ``Next`` of a Choice state's first matching rule, else its ``Default``."""
    for rule in state["Choices"]:
        variable = rule["Variable"]
        try:
            value = get(data, variable)
            present = True
        except (KeyError, TypeError):
            value, present = None, False
        [comparison] = [c for c in rule if c not in ("Variable", "Next")]
        if comparison == "IsPresent":
            matched = present is rule[comparison]
        elif comparison in COMPARISONS:
            matched = present and COMPARISONS[comparison](value, rule[comparison])
        else:
            raise Unsupported(f"Choice comparison {comparison!r}")
        if matched:
            return str(rule["Next"])
    if "Default" not in state:
        raise Unsupported("a Choice state that matches nothing and has no Default")
    return str(state["Default"])


def _catcher(state: dict[str, Any], error: Exception) -> dict[str, Any] | None:
    """The state's first Catch that matches a local failure (any failure is a task's failure)."""
    matching = {"States.ALL", "States.TaskFailed", type(error).__name__}
    return next((c for c in state.get("Catch", []) if matching & set(c["ErrorEquals"])), None)


def interpret(
    definition: dict[str, Any], act: Act, data: Any, *, entered: Callable[[str], None] = lambda _: None
) -> Outcome:
    """Run the states from ``StartAt`` on the input ``data``; each state's name goes to ``entered``.

    A task's exception goes to the state's matching Catch (its error at the Catch's
    ResultPath, as ``Error`` and ``Cause``), or is raised when none matches.
    """
    states, name = definition["States"], definition["StartAt"]
    caught: Exception | None = None
    while True:
        entered(name)
        state = states[name]
        kind = state["Type"]
        if kind == "Succeed":
            return Outcome("SUCCEEDED", data, caught)
        if kind == "Fail":
            return Outcome("FAILED", data, caught, {k: state[k] for k in ("Error", "Cause") if k in state})
        if kind == "Choice":
            name = choose(state, data)
            continue
        if kind == "Pass":
            data = put(data, state.get("ResultPath", "$"), state.get("Result", data))
        elif kind in ("Task", "Map"):
            task = task_of(state)
            try:
                result = act(task, task.inputs(data))
            except Exception as error:
                catcher = _catcher(state, error)
                if catcher is None:
                    raise
                caught = caught or error
                failure = {"Error": type(error).__name__, "Cause": str(error)}
                data, name = put(data, catcher.get("ResultPath", "$"), failure), catcher["Next"]
                continue
            data = put(data, state.get("ResultPath", "$"), result)
        else:
            raise Unsupported(f"{kind} state {name}")
        if state.get("End"):
            return Outcome("SUCCEEDED", data, caught)
        name = state["Next"]
