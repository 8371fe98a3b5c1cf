"""The command's errors: one line and an exit code, never a traceback (unless --debug).

The subprocess tests run ``python -m pipeline_tasks.cli`` in an empty folder (no
``local up`` stack attached) with HOME and every AWS variable cleared, so botocore
finds no credentials; "no stack" is an endpoint on a free port nothing listens on.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

from pipeline_tasks import cli, cli_errors, cli_parser, notebooks, runs
from pipeline_tasks.documents import RunRecord
from pipeline_tasks.errors import ConfigurationError, PipelineError, StepFailed

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "batch_01" / "products.csv"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_", "BOTO"))}
    env.pop("HOME", None)
    env.update({"HOME": "/nonexistent", "PIPELINE_NOTEBOOKS_DIR": str(REPO / "notebooks")}, **extra)
    return env


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline_tasks.cli", *args],
        cwd=tmp_path,
        env=_clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


NO_CREDENTIALS = [["runs", "list"], ["runs", "show", "x-1"], ["trigger"], ["rerun", "x-1"], ["upload", str(SAMPLE)]]


@pytest.mark.parametrize("args", NO_CREDENTIALS, ids=" ".join)
def test_without_credentials_a_verb_says_what_to_do_in_one_line_and_exits_2(tmp_path, args):
    result = _cli(tmp_path, *args)
    line = _one_line(result)
    assert result.returncode == 2
    assert line.startswith("error: no AWS credentials found") and "ecom-pipeline local up" in line
    assert "AWS_ACCESS_KEY_ID" in line and "PIPELINE_AWS_ENDPOINT_URL" in line


@pytest.mark.parametrize("args", [["runs", "list"], ["trigger", "--no-follow"]], ids=" ".join)
def test_without_a_stack_a_verb_names_the_endpoint_and_exits_2(tmp_path, args):
    endpoint = f"http://127.0.0.1:{_free_port()}"
    keys = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "us-east-1"}
    result = _cli(tmp_path, *args, PIPELINE_AWS_ENDPOINT_URL=endpoint, AWS_MAX_ATTEMPTS="1", **keys)
    line = _one_line(result)
    assert result.returncode == 2
    assert line.startswith(f"error: cannot connect to {endpoint}:") and "ecom-pipeline local up" in line


def test_debug_prints_the_traceback_too(tmp_path):
    result = _cli(tmp_path, "--debug", "runs", "list")
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "NoCredentialsError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: no AWS credentials found")


def test_validate_reports_every_file_and_a_missing_one_or_a_folder_in_one_line(tmp_path):
    result = _cli(tmp_path, "validate", "/nonexistent/orders.csv", str(tmp_path), str(SAMPLE))
    assert result.returncode == 3 and "Traceback" not in result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "ERROR    /nonexistent/orders.csv: no such file"
    assert lines[1].startswith(f"ERROR    {tmp_path}: a folder")
    assert lines[2].startswith(f"VALID    {SAMPLE} (products, 10,000 rows;")


def test_upload_refuses_a_name_of_no_dataset_unless_forced(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("hello\n")
    result = _cli(tmp_path, "upload", str(readme))
    assert result.returncode == 3
    assert _one_line(result).startswith("error: README.md matches none of products*.csv, orders*.csv")
    forced = _cli(tmp_path, "upload", "--force", str(readme))
    assert forced.returncode == 2 and "no AWS credentials" in _one_line(forced)  # past the name check


@pytest.mark.parametrize("limit", ["-1", "0", "x"])
def test_runs_list_refuses_a_limit_that_is_not_positive(tmp_path, limit):
    result = _cli(tmp_path, "runs", "list", "--limit", limit)
    assert result.returncode == 2 and "argument --limit" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["-p", "full", "maybe"], "error: parameter full: 'maybe' is not a bool (true/false/1/0)"),
        (["-p", "bogus", "1"], "error: unknown parameter bogus for 30_transform_kpis.ipynb; it declares"),
        (["-p", "__import__('os').system('touch pwned');x", "1"], "error: parameter name "),
        (["-p", "full", "true"], "error: parameter execution_id is required (-p execution_id VALUE)"),
    ],
)
def test_notebook_parameters_are_refused_before_a_kernel_starts(tmp_path, pairs, message):
    args = ["notebook", "transform", "--no-progress", *pairs]
    if "execution_id" not in message:
        args += ["-p", "execution_id", "e-1"]
    result = _cli(tmp_path, *args)
    assert result.returncode == 2 and _one_line(result).startswith(message)
    assert not (tmp_path / "pwned").exists()


def test_top_level_help_describes_the_command_and_its_verbs(tmp_path):
    result = _cli(tmp_path, "--help")
    assert result.returncode == 0
    assert result.stdout.count("\n") > 10 and "parse, build Settings" not in result.stdout
    assert "Run and review the e-commerce KPI pipeline" in result.stdout and "Exit codes:" in result.stdout
    assert "--debug" in result.stdout


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _parsers(sub)
    return found


def test_every_verb_and_positional_has_a_help_text():
    parser = cli._parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert all(choice.help for choice in verbs._choices_actions)
    for sub in _parsers(parser):
        for action in sub._actions:
            if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"{sub.prog} {action.dest} has no help"


def test_positive_int():
    assert cli_parser.positive_int("3") == 3
    for bad in ("0", "-1", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli_parser.positive_int(bad)


def test_counts_are_singular_for_one():
    assert [cli.plural(n, "row") for n in (0, 1, 2, 1000)] == ["0 rows", "1 row", "2 rows", "1,000 rows"]


def test_botocore_errors_become_configuration_errors_with_what_to_do():
    missing = cli_errors.translate(NoCredentialsError())
    assert isinstance(missing, ConfigurationError) and missing.exit_code == 2
    assert "NoCredentialsError" not in str(missing) and "ecom-pipeline local up" in str(missing)
    unreachable = cli_errors.translate(EndpointConnectionError(endpoint_url="http://127.0.0.1:9/bucket?list-type=2"))
    assert isinstance(unreachable, ConfigurationError)
    assert str(unreachable).startswith("cannot connect to http://127.0.0.1:9:")
    assert isinstance(cli_errors.translate(NoRegionError()), ConfigurationError)


def _client_error(code: str, operation: str = "ListObjectsV2", **extra: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m", **extra}}, operation)


def test_refusals_and_missing_resources_are_configuration_errors():
    denied = cli_errors.translate(_client_error("AccessDenied"))
    assert isinstance(denied, ConfigurationError) and "AWS refused ListObjectsV2 (AccessDenied: m)" in str(denied)
    bucket = cli_errors.translate(_client_error("NoSuchBucket", BucketName="b-1"))
    assert isinstance(bucket, ConfigurationError) and "bucket b-1" in str(bucket)
    other = cli_errors.translate(_client_error("Throttling"))
    assert type(other) is PipelineError and str(other) == "AWS ListObjectsV2 failed: Throttling: m"
    assert cli_errors.translate(ValueError("x")) is None


def test_the_printed_line_names_no_error_type_and_keeps_the_archived_notebook():
    error = StepFailed("in cell [3]: boom\nsecond line")
    error.notebook_uri = "s3://b/runs/e/10_validate.html"
    assert (
        cli_errors.one_line(error)
        == "error: in cell [3]: boom second line (executed notebook: s3://b/runs/e/10_validate.html)"
    )
    assert cli_errors.one_line(ConfigurationError("bad")) == "error: bad"


def test_a_cells_error_keeps_our_kind_without_repeating_its_name_and_missing_credentials_are_configuration():
    ours = notebooks._cell_failure("ConfigurationError", "no bucket", 3)
    assert type(ours) is ConfigurationError and str(ours) == "in cell [3]: no bucket"
    credentials = notebooks._cell_failure("NoCredentialsError", "Unable to locate credentials", 2)
    assert type(credentials) is ConfigurationError and credentials.exit_code == 2
    assert "ecom-pipeline local up" in str(credentials)
    other = notebooks._cell_failure("ZeroDivisionError", "division by zero", 4)
    assert type(other) is StepFailed and str(other) == "ZeroDivisionError in cell [4]: division by zero"


def test_archived_keys_outside_the_destination_are_refused(tmp_path):
    folder = tmp_path / "runs" / "x"
    assert runs.local_path(folder, "10_validate.html") == (folder / "10_validate.html").resolve()
    assert runs.local_path(folder, "sub/f.json") == (folder / "sub" / "f.json").resolve()
    for bad in ("../../f", "../x2/f", "/etc/passwd", "", "."):
        assert runs.local_path(folder, bad) is None


def _step(step: str, status: str) -> RunRecord:
    return RunRecord("e-1", step, status, "2026-01-01T00:00:00+00:00", error="boom" if status == "FAILED" else None)


def test_an_adhoc_run_is_not_a_failed_execution_and_a_killed_one_is_incomplete():
    adhoc = runs.summarise(
        runs.ExecutionRecord("e-1", steps={"validate": _step("validate", "FAILED")}, has_manifest=False)
    )
    assert adhoc.status == runs.ADHOC and adhoc.steps == "validate:FAILED"
    killed = runs.summarise(runs.ExecutionRecord("e-1", archived=("10_validate.ipynb",)))
    assert killed.status == runs.INCOMPLETE and killed.started_at == ""
    failed = runs.summarise(runs.ExecutionRecord("e-1", steps={"validate": _step("validate", "FAILED")}))
    assert failed.status == "FAILED"


def test_the_kpi_summary_says_1_day(tmp_path, capsys):
    (tmp_path / "order_kpis.csv").write_text(
        "order_date,total_revenue,total_orders,total_items_sold\n2024-01-01,10.00,1,2\n"
    )
    (tmp_path / "category_kpis.csv").write_text("category,daily_revenue\nbooks,10.00\n")
    cli.print_summary(tmp_path)
    assert "KPIs: 1 day from 2024-01-01 to 2024-01-01" in capsys.readouterr().out
