"""The notebook runner's failure kinds, each with a real kernel: archived notebook, distinct exit code."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from pipeline_tasks import errors, layout, notebooks, runs
from pipeline_tasks.cli import main
from pipeline_tasks.documents import RunRecord
from pipeline_tasks.io import aws
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.settings import Settings

pytestmark = pytest.mark.aws


def _notebooks_dir(tmp_path: Path, *sources: str) -> Path:
    """A notebooks folder whose validate notebook runs the given cells (after a parameters cell)."""
    parameters = new_code_cell(
        "from typing import Optional\n\n"
        'execution_id: str = "x"\nflag: bool = False  # a typed flag\n'
        "bucket: Optional[str] = None\naws_endpoint_url: Optional[str] = None"
    )
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
    assert err.count("\n") == 1 and err.startswith("error: the kernel died") and "KernelDied" not in err
    assert f"(executed notebook: s3://{settings.bucket}/runs/cli-1/10_validate.html)" in err


def test_the_run_record_keeps_the_typed_values(settings, tmp_path, monkeypatch, capsys):
    folder = _notebooks_dir(tmp_path, "assert flag is True, repr(flag)")
    for name, value in settings.with_overrides(notebooks_dir=str(folder)).to_env().items():
        monkeypatch.setenv(name, value)
    code = main(["notebook", "validate", "--no-progress", "-p", "execution_id", "typed-1", "-p", "flag", "TRUE"])
    assert code == 0, capsys.readouterr().err
    record = _record(settings, "typed-1")
    assert record.parameters["flag"] is True and record.parameters["execution_id"] == "typed-1"


def test_bad_parameters_are_refused_before_anything_runs_or_is_archived(settings, tmp_path, monkeypatch, capsys):
    folder = _notebooks_dir(tmp_path, 'print("ran")')
    for name, value in settings.with_overrides(notebooks_dir=str(folder)).to_env().items():
        monkeypatch.setenv(name, value)
    for pairs in (["-p", "flag", "maybe"], ["-p", "bogus", "1"], ["-p", "x;y", "1"]):
        assert main(["notebook", "validate", "--no-progress", "-p", "execution_id", "bad-p", *pairs]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "parameter" in err
    assert main(["notebook", "validate", "--no-progress"]) == 2
    assert "execution_id is required" in capsys.readouterr().err
    assert _archived(settings, "bad-p") == {} and _archived(settings, "None") == {}
    with pytest.raises(errors.ConfigurationError, match="unknown parameter bogus"):
        notebooks.run_step(
            settings.with_overrides(notebooks_dir=str(folder)), "validate", {"execution_id": "p", "bogus": 1}
        )


def test_missing_credentials_in_a_cell_are_a_configuration_error(settings, tmp_path):
    folder = _notebooks_dir(tmp_path, "from botocore.exceptions import NoCredentialsError\nraise NoCredentialsError()")
    settings = settings.with_overrides(notebooks_dir=str(folder))
    with pytest.raises(errors.ConfigurationError, match="ecom-pipeline local up") as caught:
        notebooks.run_step(settings, "validate", {"execution_id": "creds-1"})
    assert caught.value.exit_code == 2 and _record(settings, "creds-1").exit_code == 2


def test_no_archive_url_is_printed_when_archiving_failed(settings, tmp_path, monkeypatch, capsys):
    folder = _notebooks_dir(tmp_path, "1 / 0")
    gone = settings.with_overrides(notebooks_dir=str(folder), bucket=f"{settings.bucket}-missing")
    for name, value in gone.to_env().items():
        monkeypatch.setenv(name, value)
    assert main(["notebook", "validate", "--no-progress", "-p", "execution_id", "noarchive-1"]) == 4
    err = capsys.readouterr().err
    assert "ZeroDivisionError in cell" in err and "s3://" not in err and "executed notebook" not in err


def test_an_adhoc_run_is_listed_as_such_not_as_a_failed_execution(settings, tmp_path):
    folder = _notebooks_dir(tmp_path, "1 / 0")
    settings = settings.with_overrides(notebooks_dir=str(folder))
    with pytest.raises(errors.StepFailed):
        notebooks.run_step(settings, "validate", {"execution_id": "adhoc-1"})
    [summary] = [s for s in runs.list_executions(settings) if s.execution_id == "adhoc-1"]
    assert (summary.status, summary.steps) == (runs.ADHOC, "validate:FAILED")


def test_a_killed_task_leaves_an_incomplete_execution_with_its_files(settings, tmp_path, capsys, monkeypatch):
    s3 = aws.client(settings, "s3")
    s3.put_object(Bucket=settings.bucket, Key=layout.manifest_key(settings, "killed-1"), Body=b"{}")
    s3.put_object(Bucket=settings.bucket, Key=layout.run_key(settings, "killed-1", "partial.txt"), Body=b"x")
    s3.put_object(Bucket=settings.bucket, Key=layout.run_key(settings, "killed-1", "../../escape.txt"), Body=b"x")
    [summary] = [s for s in runs.list_executions(settings) if s.execution_id == "killed-1"]
    assert summary.status == runs.INCOMPLETE
    monkeypatch.setattr("pipeline_tasks.cli._settings", lambda: settings)
    assert main(["runs", "show", "killed-1", "--dest", str(tmp_path / "dest")]) == 0
    out = capsys.readouterr().out
    assert "killed-1: INCOMPLETE" in out and "partial.txt" in out and "../../escape.txt" in out  # archived as such
    assert (tmp_path / "dest" / "killed-1" / "partial.txt").is_file()
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "dest" / "escape.txt").exists()
