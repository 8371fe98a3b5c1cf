"""The verbs of the ``ecom-pipeline`` command: their arguments, options and help texts.

``pipeline_tasks.cli`` builds the top-level parser and runs the verb; this module
only declares the verbs, one function per group, and imports nothing heavier than
argparse (the command starts fast).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]

#: What ``ecom-pipeline --help`` says first.
DESCRIPTION = """\
Run and review the e-commerce KPI pipeline: CSV batches of products, orders and
order items are validated, staged and turned into daily KPIs in DynamoDB.

Try it locally:  ecom-pipeline local up; ecom-pipeline upload samples/batch_01/*.csv;
                 ecom-pipeline trigger; ecom-pipeline runs list"""

#: What ``ecom-pipeline --help`` says last.
EPILOG = """\
`ecom-pipeline VERB --help` describes a verb. AWS is the local stack `local up` started in
this folder, else the one the AWS_* and PIPELINE_* variables name. Exit codes: 0 done,
1 error, 2 configuration (no credentials, no stack, a bad parameter), 3 invalid file,
4 step failed, 5 local stack, 6 kernel died, 7 cell timeout, 8 kernel start timeout,
9 archiving failed, 130 interrupted; --debug prints the traceback of an error."""


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not positive (--all lists every execution)")
    return value


def add_commands(commands: Commands) -> None:
    """Add every verb of the command to ``commands`` (in the order ``--help`` lists them)."""
    check = commands.add_parser(
        "validate",
        help="validate local CSV files against the contract",
        description="Validate each file as the pipeline would and print its verdict; exit 3 when any is "
        "invalid or unreadable (the other files are still checked).",
    )
    check.add_argument(
        "files", nargs="+", type=Path, metavar="FILE", help="CSV files (products*, orders*, order_items*)"
    )
    _add_notebook(commands)
    _add_runs(commands)
    _add_lab(commands)
    _add_reconcile(commands)
    _add_operations(commands)
    _add_local(commands)


def _add_notebook(commands: Commands) -> None:
    step = commands.add_parser(
        "notebook",
        help="run a pipeline step's notebook with papermill and archive it (the task containers' command)",
        description="Run a step's notebook with papermill; archive the executed notebook and its HTML to "
        "s3://BUCKET/runs/EXECUTION_ID/. Exit codes: 0 done, 2 configuration, 3 invalid file, 4 step failed, "
        "6 kernel died (out of memory?), 7 cell timeout, 8 kernel start timeout, 9 archiving failed.",
    )
    step.add_argument("step", choices=["validate", "stage", "transform"], help="the step whose notebook runs")
    step.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a parameter the notebook's `parameters` cell declares, converted to its declared type "
        "(bool: true/false/1/0; None for an Optional one: none/null); checked before the kernel starts; "
        "execution_id is required",
    )
    step.add_argument("--output-dir", type=Path, help="keep the executed notebook and its HTML here")
    step.add_argument("--no-progress", action="store_true", help="no cell-by-cell progress bar")


def _add_runs(commands: Commands) -> None:
    review = commands.add_parser("runs", help="review executions: files, verdicts, KPI changes, notebooks")
    review_commands = review.add_subparsers(dest="runs_command", required=True)
    listing = review_commands.add_parser("list", help="executions with status, start time and file counts")
    limits = listing.add_mutually_exclusive_group()
    limits.add_argument("--limit", type=positive_int, default=20, metavar="N", help="the most recent N (20)")
    limits.add_argument("--all", action="store_true", help="every execution")
    show = review_commands.add_parser(
        "show", help="one execution's files, verdicts, KPI changes; downloads its notebooks"
    )
    show.add_argument("execution_id", help="an execution id, as `runs list` shows it")
    show.add_argument("--dest", type=Path, default=Path("runs"), help="where to download the notebooks (./runs)")


def _add_lab(commands: Commands) -> None:
    lab = commands.add_parser(
        "lab", help="JupyterLab on lab/ (copies of notebooks/) against a seeded local stack (or AWS)"
    )
    lab.add_argument("--aws", action="store_true", help="against AWS (PIPELINE_* and AWS_* settings) instead")
    lab.add_argument("--port", type=int, help="JupyterLab's port (a free one by default)")
    lab.add_argument("--no-browser", action="store_true", help="print the lab's URL; open no browser")
    lab.add_argument(
        "--samples",
        nargs="+",
        type=Path,
        default=[Path("samples/batch_01"), Path("samples/batch_02")],
        help="batches that seed an empty local stack",
    )
    lab.add_argument(
        "--refresh-outputs",
        action="store_true",
        help="execute the explore notebooks in place on the seeded stack (their committed outputs) and stop",
    )
    lab.add_argument(
        "--reset",
        action="store_true",
        help="copy the notebooks into the work folder afresh (your edited copies are replaced) and seed again",
    )


def _add_reconcile(commands: Commands) -> None:
    heal = commands.add_parser(
        "reconcile",
        help="compare every KPI item in DynamoDB with the published-KPI record and repair what differs",
        description="Read OrderKPIs and CategoryKPIs in full and compare every item with the published-KPI record "
        "(the KPIs of the staged snapshot the last transform wrote): put missing or changed items, delete stale "
        "ones. Each transform already checks the tables cheaply (table identity, item count) and repairs one that "
        "fails; this also finds an item edited in place. Do not run it while a transform runs. Exit codes: "
        "0 in sync or repaired, 1 differences found with --dry-run, 4 nothing to reconcile against (run a full "
        "recompute), a KPI table missing, or a transform ran meanwhile.",
    )
    heal.add_argument("--dry-run", action="store_true", help="compare and report; write nothing")


def _add_operations(commands: Commands) -> None:
    """The verbs that feed the deployed pipeline: upload, trigger, rerun."""
    upload = commands.add_parser("upload", help="upload files to input/ (their S3 events queue them)")
    upload.add_argument(
        "files", nargs="+", type=Path, metavar="FILE", help="CSV files named products*, orders* or order_items*"
    )
    upload.add_argument("--force", action="store_true", help="upload a file whose name matches no dataset too")
    trigger = commands.add_parser("trigger", help="one orchestrator run; follows the execution it starts")
    trigger.add_argument("--no-follow", action="store_true", help="print the execution and return")
    again = commands.add_parser("rerun", help="start a failed execution's files (still in input/) again")
    again.add_argument("execution_id", help="the failed execution, as `runs list` shows it")


def _add_local(commands: Commands) -> None:
    local = commands.add_parser("local", help="run the pipeline on a local emulated AWS")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    local_commands.add_parser("up", help="start a local stack in the background (state in .local-stack/)")
    local_commands.add_parser("status", help="the local stack: endpoint, queue depths, executions")
    local_commands.add_parser("down", help="stop the local stack")
    run = local_commands.add_parser("run", help="process each folder as one batch, in order")
    run.add_argument(
        "batch_dirs", nargs="+", type=Path, metavar="BATCH_DIR", help="folders of CSV files, one batch each"
    )
    run.add_argument("--out", type=Path, required=True, help="folder for the KPI dumps and executions.json")
