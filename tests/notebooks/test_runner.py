"""The notebook runner's failure kinds, each with a real kernel: archived notebook, distinct exit code."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from pipeline_tasks import errors, layout, notebooks
from pipeline_tasks.cli import main
from pipeline_tasks.documents import RunRecord
from pipeline_tasks.io import aws
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.settings import Settings

pytestmark = pytest.mark.aws


def _notebooks_dir(tmp_path: Path, *sources: str) -> Path:
    """A notebooks folder whose validate notebook runs the given cells (after a parameters cell)."""
    parameters = new_code_cell('execution_id = "x"\nbucket = None\naws_endpoint_url = None')
    parameters.metadata["tags"] = ["parameters"]
    cells = [parameters, *(new_code_cell(source) for source in sources)]
    notebook = new_notebook(
        cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}
    )
    (tmp_path / "pipeline").mkdir(parents=True)
    nbformat.write(notebook, tmp_path / "pipeline" / "10_validate.ipynb")
    return tmp_path


def _archived(settings: Settings, execution_id: str) -> dict[str, str]:
    s3 = aws.client(settings, "s3")
    prefix = layout.run_key(settings, execution_id, "")
    return {key[len(prefix) :]: key for key in s3io.list_keys(s3, settings.bucket, prefix)}


def _record(settings: Settings, execution_id: str) -> RunRecord:
    s3 = aws.client(settings, "s3")
    return RunRecord.from_json(
        s3io.get_json(s3, settings.bucket, layout.run_key(settings, execution_id, "10_validate.json"))
    )


def _executed_text(settings: Settings, execution_id: str) -> str:
    s3 = aws.client(settings, "s3")
    key = layout.run_key(settings, execution_id, "10_validate.ipynb")
    return s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read().decode()


def test_a_successful_run_is_archived_with_its_injected_parameters(settings, tmp_path):
    folder = _notebooks_dir(tmp_path / "nb", 'print(f"ran {execution_id} on {bucket}")')
    settings = settings.with_overrides(notebooks_dir=str(folder))
    run = notebooks.run_step(settings, "validate", {"execution_id": "ok-1"}, output_dir=tmp_path / "out")
    assert run.succeeded and run.exit_code == 0
    assert set(_archived(settings, "ok-1")) == {"10_validate.ipynb", "10_validate.html", "10_validate.json"}
    executed = nbformat.reads(_executed_text(settings, "ok-1"), as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and '"ok-1"' in injected[0].source and settings.bucket in injected[0].source
    assert f"ran ok-1 on {settings.bucket}" in executed.cells[-1].outputs[0]["text"]
    assert _record(settings, "ok-1").status == "SUCCEEDED"
    assert (tmp_path / "out" / "10_validate.html").read_text().count("ran ok-1") >= 1


def test_a_failing_cell_is_archived_visible_and_maps_our_errors_to_their_exit_codes(settings, tmp_path):
    folder = _notebooks_dir(
        tmp_path,
        "from pipeline_tasks.errors import InvalidFile",
        'raise InvalidFile("orders.csv: missing required column created_at")',
        'print("never runs")',
    )
    settings = settings.with_overrides(notebooks_dir=str(folder))
    with pytest.raises(errors.InvalidFile, match="missing required column created_at") as caught:
        notebooks.run_step(settings, "validate", {"execution_id": "bad-1"})
    assert caught.value.exit_code == 3
    record = _record(settings, "bad-1")
    assert (record.status, record.exit_code) == ("FAILED", 3)
    executed = nbformat.reads(_executed_text(settings, "bad-1"), as_version=4)
    failing = [c for c in executed.cells if c.cell_type == "code" and c.get("outputs")]
    assert any(o.get("ename") == "InvalidFile" for c in failing for o in c.outputs)
    assert "papermill-error-cell-tag" in executed.cells[0].metadata.get("tags", [])  # the banner at the top
    html = (
        aws.client(settings, "s3")
        .get_object(Bucket=settings.bucket, Key=layout.run_key(settings, "bad-1", "10_validate.html"))["Body"]
        .read()
    )
    assert b"missing required column created_at" in html


def test_another_exception_in_a_cell_is_a_failed_step(settings, tmp_path):
    folder = _notebooks_dir(tmp_path, "1 / 0")
    settings = settings.with_overrides(notebooks_dir=str(folder))
    with pytest.raises(errors.StepFailed, match="ZeroDivisionError") as caught:
        notebooks.run_step(settings, "validate", {"execution_id": "zero-1"})
    assert type(caught.value) is errors.StepFailed and caught.value.exit_code == 4


def test_a_dead_kernel_is_reported_not_waited_for(settings, tmp_path):
    folder = _notebooks_dir(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", 'print("after")')
    settings = settings.with_overrides(notebooks_dir=str(folder))
    with pytest.raises(errors.KernelDied, match="memory") as caught:
        notebooks.run_step(settings, "validate", {"execution_id": "dead-1"})
    assert caught.value.exit_code == 6
    assert _record(settings, "dead-1").exit_code == 6
    executed = nbformat.reads(_executed_text(settings, "dead-1"), as_version=4)
    assert "kernel died" in executed.cells[0].source


def test_a_cell_over_the_timeout_is_stopped(settings, tmp_path):
    folder = _notebooks_dir(tmp_path, "import time\ntime.sleep(60)")
    settings = settings.with_overrides(notebooks_dir=str(folder), cell_timeout=2)
    with pytest.raises(errors.CellTimeout) as caught:
        notebooks.run_step(settings, "validate", {"execution_id": "slow-1"})
    assert caught.value.exit_code == 7
    assert "10_validate.html" in _archived(settings, "slow-1")


def test_a_kernel_that_never_answers_is_a_start_timeout(settings, tmp_path, monkeypatch):
    spec = tmp_path / "jupyter" / "kernels" / "mute"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps({"argv": ["python", "-c", "import time; time.sleep(60)", "{connection_file}"], "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    folder = _notebooks_dir(tmp_path, "1")
    settings = settings.with_overrides(notebooks_dir=str(folder), kernel_name="mute", kernel_start_timeout=3)
    with pytest.raises(errors.KernelStartTimeout) as caught:
        notebooks.run_step(settings, "validate", {"execution_id": "mute-1"})
    assert caught.value.exit_code == 8
    assert _record(settings, "mute-1").status == "FAILED"


def test_an_unknown_kernel_or_step_is_a_configuration_error(settings, tmp_path):
    folder = _notebooks_dir(tmp_path, "1")
    with pytest.raises(errors.ConfigurationError, match="no Jupyter kernel named 'nope'"):
        notebooks.run_step(
            settings.with_overrides(notebooks_dir=str(folder), kernel_name="nope"), "validate", {"execution_id": "k"}
        )
    with pytest.raises(errors.ConfigurationError, match="unknown step"):
        notebooks.run_step(settings, "publish", {"execution_id": "k"})


def test_the_cli_exits_with_the_failure_kind_and_says_where_the_notebook_is(settings, tmp_path, monkeypatch, capsys):
    folder = _notebooks_dir(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    for name, value in settings.with_overrides(notebooks_dir=str(folder)).to_env().items():
        monkeypatch.setenv(name, value)
    code = main(["notebook", "validate", "-p", "execution_id", "cli-1", "--no-progress"])
    assert code == 6
    err = capsys.readouterr().err
    assert "KernelDied" in err and f"s3://{settings.bucket}/runs/cli-1/10_validate.html" in err
