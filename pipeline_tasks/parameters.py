"""A pipeline notebook's parameters: declared with types in its ``parameters`` cell, checked before a run.

Each pipeline notebook declares its parameters in the cell tagged ``parameters``, one
annotated assignment a line, its help as the comment::

    execution_id: str = "sample"  # the execution
    full: bool = False  # True: recompute every day
    bucket: Optional[str] = None  # None: PIPELINE_BUCKET from the environment

papermill's ``inspect_notebook`` reads the names, types, defaults and help from that
cell; ``check`` holds the values given for a run (``-p NAME VALUE`` text, or typed
values from the local runner) against them before any kernel starts: an unknown name,
a name that is not a Python identifier, a value of the wrong type or outside the
allowed ones, or a missing required parameter is a ConfigurationError naming the
parameter. Values come back converted to their declared types, as the run record keeps them.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_tasks.errors import ConfigurationError

#: Parameters every pipeline notebook needs a value for (their declared defaults are for the lab only).
REQUIRED = ("execution_id",)

#: Allowed values beyond the declared type, by parameter name (none today: bool covers ``full``).
CHOICES: dict[str, tuple[Any, ...]] = {}

#: An execution id names S3 prefixes (``runs/{id}/``): letters, digits, ``.``, ``_`` and ``-``.
EXECUTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

_TRUE, _FALSE, _NONE = ("true", "1"), ("false", "0"), ("none", "null")
_OPTIONAL = re.compile(r"Optional\[(?P<inner>\w+)\]")


@dataclass(frozen=True)
class Parameter:
    """One declared parameter: ``name: type_name = default  # help``."""

    name: str
    type_name: str
    default: str = ""
    help: str = ""

    @property
    def optional(self) -> bool:
        return _OPTIONAL.fullmatch(self.type_name) is not None

    @property
    def base_type(self) -> str:
        """The type without ``Optional[...]``: ``str``, ``bool``, ``int`` or ``float``."""
        optional = _OPTIONAL.fullmatch(self.type_name)
        return optional["inner"] if optional else self.type_name

    def describe(self) -> str:
        return f"{self.name}: {self.type_name} = {self.default}" + (f"  # {self.help}" if self.help else "")


_CONVERTERS = ("str", "bool", "int", "float")


def declared(notebook: Path) -> dict[str, Parameter]:
    """The parameters a notebook's ``parameters`` cell declares, by name (papermill reads the cell).

    Raises:
        ConfigurationError: the notebook has no parameters cell, or declares a parameter
            without a type this module converts to.
    """
    import papermill

    try:
        found = papermill.inspect_notebook(str(notebook))
    except ValueError as error:  # no kernelspec, so no language to read the cell in
        raise ConfigurationError(f"cannot read the parameters of {notebook.name}: {error}") from None
    if not found:
        raise ConfigurationError(f"{notebook.name} declares no parameters (no cell tagged `parameters`)")
    parameters = {
        name: Parameter(name, str(p["inferred_type_name"]), str(p["default"]), str(p["help"]))
        for name, p in found.items()
    }
    for parameter in parameters.values():
        if parameter.base_type not in _CONVERTERS:
            raise ConfigurationError(
                f"{notebook.name} declares the parameter {parameter.name} with type {parameter.type_name!r}; "
                f"declare one of {', '.join(_CONVERTERS)} (or Optional[...] of one): `name: bool = False  # help`"
            )
    return parameters


def convert(parameter: Parameter, value: Any) -> Any:
    """``value`` (``-p`` text, or already typed) as the parameter's type; ConfigurationError naming it if it is not."""
    if isinstance(value, str) and parameter.optional and value.strip().lower() in _NONE:
        return None
    if value is None:
        if parameter.optional:
            return None
        raise ConfigurationError(f"parameter {parameter.name}: {parameter.type_name} is required, not None")
    kind = parameter.base_type
    try:
        typed = _convert(kind, value)
    except ValueError:
        raise ConfigurationError(
            f"parameter {parameter.name}: {value!r} is not a {kind}" + (" (true/false/1/0)" if kind == "bool" else "")
        ) from None
    allowed = CHOICES.get(parameter.name)
    if allowed is not None and typed not in allowed:
        raise ConfigurationError(
            f"parameter {parameter.name}: {typed!r} is not one of {', '.join(repr(a) for a in allowed)}"
        )
    return typed


def _convert(kind: str, value: Any) -> Any:
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError(value)
    if kind == "int":
        if isinstance(value, bool | float):
            raise ValueError(value)
        return int(value)
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError(value)
        return float(value)
    if not isinstance(value, str):
        raise ValueError(value)
    return value


def check(
    parameters: Mapping[str, Parameter],
    values: Mapping[str, Any] | Iterable[tuple[str, Any]],
    *,
    notebook: str = "the notebook",
    required: Iterable[str] = REQUIRED,
) -> dict[str, Any]:
    """The given values checked against the declared parameters and converted to their types.

    ``values`` is a mapping, or ``(name, value)`` pairs as ``-p`` gives them (a name
    given twice is refused). Raises ConfigurationError naming the first bad parameter.
    """
    pairs = list(values.items()) if isinstance(values, Mapping) else list(values)
    typed: dict[str, Any] = {}
    for name, value in pairs:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ConfigurationError(f"parameter name {name!r} is not a Python identifier")
        if name not in parameters:
            raise ConfigurationError(
                f"unknown parameter {name} for {notebook}; it declares {', '.join(parameters) or 'none'}"
            )
        if name in typed:
            raise ConfigurationError(f"parameter {name} is given twice")
        typed[name] = convert(parameters[name], value)
    for name in required:
        if typed.get(name) in (None, ""):
            raise ConfigurationError(f"parameter {name} is required (-p {name} VALUE)")
    execution_id = typed.get("execution_id")
    if isinstance(execution_id, str) and not EXECUTION_ID.fullmatch(execution_id):
        raise ConfigurationError(
            f"parameter execution_id: {execution_id!r} is not an execution id (letters, digits, '.', '_', '-')"
        )
    return typed


def check_step(notebook: Path, values: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """``check`` against the parameters ``notebook`` declares: what ``ecom-pipeline notebook`` runs first."""
    return check(declared(notebook), values, notebook=notebook.name)
