"""Notebook parameters: declared with types in the parameters cell, checked and converted before a run."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from pipeline_tasks import notebooks, parameters
from pipeline_tasks.errors import ConfigurationError
from pipeline_tasks.parameters import Parameter

REPO = Path(__file__).resolve().parents[2]
PIPELINE = REPO / "notebooks" / "pipeline"


def _notebook(tmp_path: Path, source: str) -> Path:
    cell = new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    path = tmp_path / "step.ipynb"
    kernel = {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}
    nbformat.write(new_notebook(cells=[cell, new_code_cell("1")], metadata=kernel), path)
    return path


@pytest.mark.parametrize("notebook", sorted(notebooks.STEPS.values()))
def test_every_pipeline_notebook_declares_typed_parameters_with_help(notebook):
    declared = parameters.declared(PIPELINE / f"{notebook}.ipynb")
    assert declared["execution_id"].type_name == "str"
    assert declared["bucket"].optional and declared["aws_endpoint_url"].optional
    assert all(p.help for p in declared.values())


def test_the_transform_declares_full_as_a_bool():
    declared = parameters.declared(PIPELINE / "30_transform_kpis.ipynb")
    assert declared["full"] == Parameter("full", "bool", "False", declared["full"].help)
    assert "recompute" in declared["full"].help


def test_an_untyped_parameter_is_refused_at_declaration(tmp_path):
    with pytest.raises(ConfigurationError, match="declares the parameter limit with type 'None'"):
        parameters.declared(_notebook(tmp_path, 'execution_id: str = "x"\nlimit = 3'))


def test_a_notebook_without_a_parameters_cell_is_refused(tmp_path):
    path = tmp_path / "bare.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("1")]), path)
    with pytest.raises(ConfigurationError, match="declares no parameters"):
        parameters.declared(path)


TRANSFORM = {
    "execution_id": Parameter("execution_id", "str", '"sample"'),
    "full": Parameter("full", "bool", "False"),
    "days": Parameter("days", "int", "3"),
    "bucket": Parameter("bucket", "Optional[str]", "None"),
}


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("TRUE", True), ("1", True), ("False", False), ("0", False), ("false", False)],
)
def test_bools_are_read_from_true_false_1_0_in_any_case(text, value):
    assert parameters.check(TRANSFORM, [("execution_id", "e-1"), ("full", text)])["full"] is value


@pytest.mark.parametrize("text", ["maybe", "yes", "", "2", "none"])
def test_any_other_bool_text_is_refused_naming_the_parameter(text):
    with pytest.raises(ConfigurationError, match=r"^parameter full: .* is not a bool"):
        parameters.check(TRANSFORM, [("execution_id", "e-1"), ("full", text)])


def test_values_are_converted_to_their_declared_types():
    typed = parameters.check(TRANSFORM, [("execution_id", "e-1"), ("full", "true"), ("days", "12"), ("bucket", "null")])
    assert typed == {"execution_id": "e-1", "full": True, "days": 12, "bucket": None}
    assert parameters.check(TRANSFORM, {"execution_id": "e-1", "bucket": "my-bucket"})["bucket"] == "my-bucket"
    with pytest.raises(ConfigurationError, match="parameter days: 'twelve' is not a int"):
        parameters.check(TRANSFORM, [("execution_id", "e-1"), ("days", "twelve")])


def test_typed_values_from_the_runner_pass_and_wrong_types_do_not():
    assert parameters.check(TRANSFORM, {"execution_id": "e-1", "full": True, "days": 2}) == {
        "execution_id": "e-1",
        "full": True,
        "days": 2,
    }
    with pytest.raises(ConfigurationError, match="parameter days"):
        parameters.check(TRANSFORM, {"execution_id": "e-1", "days": True})
    with pytest.raises(ConfigurationError, match="parameter execution_id"):
        parameters.check(TRANSFORM, {"execution_id": 7})
    with pytest.raises(ConfigurationError, match="parameter full: bool is required, not None"):
        parameters.check(TRANSFORM, {"execution_id": "e-1", "full": None})


def test_an_unknown_name_is_refused_with_the_declared_ones():
    with pytest.raises(
        ConfigurationError, match=r"unknown parameter bogus .*declares execution_id, full, days, bucket"
    ):
        parameters.check(TRANSFORM, [("execution_id", "e-1"), ("bogus", "1")])


@pytest.mark.parametrize("name", ["__import__('os').system('touch /tmp/x');x", "a b", "1x", "x=1", "None", ""])
def test_a_name_that_is_not_a_python_identifier_is_refused(name):
    with pytest.raises(ConfigurationError, match="is not a Python identifier"):
        parameters.check(TRANSFORM, [(name, "1"), ("execution_id", "e-1")])


def test_execution_id_is_required_and_must_name_a_prefix():
    with pytest.raises(ConfigurationError, match=r"parameter execution_id is required \(-p execution_id VALUE\)"):
        parameters.check(TRANSFORM, [("full", "true")])
    with pytest.raises(ConfigurationError, match="parameter execution_id is required"):
        parameters.check(TRANSFORM, [("execution_id", "")])
    for bad in ("../x", "a/b", "x y", ".hidden"):
        with pytest.raises(ConfigurationError, match="is not an execution id"):
            parameters.check(TRANSFORM, [("execution_id", bad)])
    assert parameters.check(TRANSFORM, [("execution_id", "batch-1-rerun-2")])["execution_id"] == "batch-1-rerun-2"


def test_a_parameter_given_twice_is_refused():
    with pytest.raises(ConfigurationError, match="parameter full is given twice"):
        parameters.check(TRANSFORM, [("execution_id", "e"), ("full", "1"), ("full", "0")])


def test_allowed_values_are_checked_after_the_type(monkeypatch):
    monkeypatch.setitem(parameters.CHOICES, "days", (1, 7))
    assert parameters.check(TRANSFORM, [("execution_id", "e"), ("days", "7")])["days"] == 7
    with pytest.raises(ConfigurationError, match="parameter days: 3 is not one of 1, 7"):
        parameters.check(TRANSFORM, [("execution_id", "e"), ("days", "3")])


def test_check_step_reads_the_notebook(tmp_path):
    path = _notebook(tmp_path, 'from typing import Optional\n\nexecution_id: str = "x"  # id\nfull: bool = False')
    assert parameters.check_step(path, [("execution_id", "e"), ("full", "1")]) == {"execution_id": "e", "full": True}
    with pytest.raises(ConfigurationError, match=r"unknown parameter nope for step\.ipynb"):
        parameters.check_step(path, [("execution_id", "e"), ("nope", "1")])
