"""The ``ecom-pipeline`` command: parse, build Settings, call one function, map errors to exit codes."""

from __future__ import annotations

import argparse
import csv
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_tasks import cli_errors, layout
from pipeline_tasks.cli_parser import DESCRIPTION, EPILOG, add_commands
from pipeline_tasks.errors import InvalidFile, PipelineError
from pipeline_tasks.settings import Settings

if TYPE_CHECKING:
    from pipeline_tasks.io.published import TableCheck


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecom-pipeline",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step in detail")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error (and log in detail)")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def _validate(files: Sequence[Path]) -> int:
    from pipeline_tasks.io.s3 import LocalSource
    from pipeline_tasks.validation import validate

    invalid = 0
    for path in files:
        if not path.is_file():
            invalid += 1
            what = "a folder (give its CSV files: FOLDER/*.csv)" if path.is_dir() else "no such file"
            print(f"ERROR    {path}: {what}")
            continue
        try:
            verdict = validate(LocalSource(path))
        except (OSError, PipelineError) as error:
            invalid += 1
            print(
                f"ERROR    {path}: {cli_errors.one_line(cli_errors.translate(error) or error).removeprefix('error: ')}"
            )
            continue
        if verdict.valid:
            dropped = ", ".join(f"{n} {reason}" for reason, n in verdict.rows_not_staged.items()) or "none"
            print(f"VALID    {path} ({verdict.dataset}, {plural(verdict.rows_read, 'row')}; not staged: {dropped})")
        else:
            invalid += 1
            print(f"INVALID  {path}: {verdict.reason}")
    return 3 if invalid else 0


def plural(count: int | None, noun: str) -> str:
    """``1 row``, ``2 rows`` (``? rows`` when unknown)."""
    if count is None:
        return f"? {noun}s"
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _notebook(step: str, pairs: Sequence[Sequence[str]], output_dir: Path | None, progress: bool) -> int:
    """Check the ``-p`` pairs against the notebook's declared parameters, then run it (``notebooks.run_step``)."""
    from pipeline_tasks import notebooks, parameters

    settings = Settings.from_env().with_absolute_paths()
    source = notebooks.notebook_path(settings, step)
    typed = parameters.check_step(source, [(name, value) for name, value in pairs])
    run = notebooks.run_step(settings, step, typed, output_dir=output_dir, progress=progress)
    print(
        f"{step} succeeded in {run.seconds['execute']:.1f} s; executed notebook: s3://{settings.bucket}/{run.keys['html']}"
    )
    return 0


def _runs_list(limit: int | None) -> int:
    from pipeline_tasks import runs

    summaries = runs.list_executions(_settings(), limit=limit)
    if not summaries:
        print("no executions yet")
        return 0
    line = "{:<36} {:<10} {:<26} {:>5} {:>5} {:>8}  {}"
    print(line.format("EXECUTION", "STATUS", "STARTED", "FILES", "VALID", "REJECTED", "STEPS"))
    for s in summaries:
        print(line.format(s.execution_id, s.status, s.started_at, s.files, s.valid, s.rejected, s.steps))
    return 0


def _runs_show(execution_id: str, dest: Path) -> int:
    from pipeline_tasks import review, runs

    settings = _settings()
    record = runs.load(settings, execution_id)
    summary = runs.summarise(record)
    print(f"execution {execution_id}: {summary.status} (started {summary.started_at or 'unknown'})")
    if summary.error:
        print(f"  error: {summary.error}")
    if summary.status == runs.ADHOC:
        print(f"  an ad-hoc notebook run (no batch manifest): {summary.steps}")
    if summary.status == runs.INCOMPLETE:
        found = ", ".join(record.archived) or "nothing archived"
        print(f"  no step left a run record (a task killed, or still starting); under runs/: {found}")
    if record.result:
        print("files:")
        print(review.verdicts(record.result).to_string(index=False))
    if record.stage_report:
        print("\ndata-quality funnel:")
        print(review.funnel(record.stage_report).to_string(index=False))
        quarantined = runs.quarantined(settings, record)
        if quarantined:
            print(f"\nquarantined rows ({len(quarantined)}; staging/quarantine):")
            print(review.quarantined(quarantined).to_string(index=False, max_colwidth=80))
    if record.transform_report is not None:
        report = record.transform_report
        days = report.affected_dates
        print(f"\nKPIs ({report.mode}): {'every day' if days is None else plural(len(days), 'day')} recomputed")
        print(review.kpi_writes(report).to_string(index=False))
        blocked = review.blocked_days(report)
        if not blocked.empty:
            print(f"\n{plural(len(blocked), 'day')} blocked (left as they were, retried by the next run):")
            print(blocked.to_string(index=False))
        from pipeline_tasks.io.published import TableCheck

        for check in (TableCheck.from_json(check) for check in report.table_checks):
            if check.action != "none" or check.identity_changed:
                print(table_check_line(check))
    paths = runs.download_notebooks(settings, execution_id, dest)
    print(f"\nnotebooks downloaded to {dest / execution_id}:")
    for step, page in runs.html_pages(paths).items():
        print(f"  {step:<10} {page.resolve()}")
    return 0


def _settings() -> Settings:
    """Settings from the environment, or of the stack ``local up`` started here."""
    from pipeline_tasks.local.stack import attached_settings

    return attached_settings()


def _reconcile(dry_run: bool) -> int:
    from pipeline_tasks.steps import transform

    report = transform.reconcile(_settings(), dry_run=dry_run)
    for table in report.tables:
        print(table_check_line(table))
    if report.skipped_days:
        print(
            f"skipped {plural(len(report.skipped_days), 'day')} a failed transform left dirty "
            "(the next one recomputes them)"
        )
    return 1 if dry_run and not report.in_sync else 0


def table_check_line(table: TableCheck) -> str:
    """One KPI table compared with the published-KPI record (by a transform or ``reconcile``), on one line."""
    counts = f"{table.expected_items} items recorded, "
    counts += "no table" if table.found_items is None else f"{table.found_items} found"
    if table.matching is not None:
        counts += f", {table.matching} matching"
    if table.identity_changed and table.found_items is not None:
        counts += "; a new table since the last transform"
    outcome = {
        "none": "in sync",
        "repaired": f"repaired: {table.put} put, {table.deleted} deleted",
        "would repair": f"would put {table.put}, delete {table.deleted}",
        "full recompute": "does not match, and the published-KPI record is missing: every day recomputed",
        "missing": "missing",
    }.get(table.action, table.action)
    return f"{table.table}: {outcome} ({counts}{'; dry run' if table.action == 'would repair' else ''})"


def _upload(files: Sequence[Path], force: bool) -> int:
    from pipeline_tasks.contract import DATASETS, classify
    from pipeline_tasks.io import aws

    for path in files:
        if not path.is_file():
            raise PipelineError(f"not a file: {path}")
        if classify(path.name) is None and not force:
            patterns = ", ".join(d.pattern for d in DATASETS)
            raise InvalidFile(f"{path.name} matches none of {patterns}: not uploaded (--force uploads it anyway)")
    settings = _settings()
    s3 = aws.client(settings, "s3")
    for path in files:
        key = layout.input_key(settings, path.name)
        s3.upload_file(str(path), settings.bucket, key)
        print(f"uploaded s3://{settings.bucket}/{key}")
    return 0


def _follow_outcome(settings: Settings, outcome: dict[str, object], follow: bool) -> int:
    from pipeline_tasks import executions

    if not outcome.get("started"):
        print(f"no execution started: {outcome.get('reason')}")
        return 0
    keys = outcome.get("keys") or []
    print(f"started {outcome['execution_id']} with {plural(len(keys), 'file')}")  # type: ignore[arg-type]
    if not follow:
        return 0
    report = executions.follow(settings, str(outcome["execution_arn"]))
    print(f"{report.name}: {report.status}" + (f" ({report.error}: {report.cause})" if report.error else ""))
    return 0 if report.status == "SUCCEEDED" else 4


def _trigger(follow: bool) -> int:
    from pipeline_tasks import executions

    settings = _settings()
    return _follow_outcome(settings, executions.invoke_orchestrator(settings), follow)


def _rerun(execution_id: str) -> int:
    from pipeline_tasks import orchestrator

    settings = _settings()
    return _follow_outcome(settings, orchestrator.rerun(settings, execution_id).to_dict(), True)


def _local(command: str) -> int:
    from pipeline_tasks.local import stack

    if command == "up":
        started = stack.up(Settings.from_env())
        print(f"local stack on {started['endpoint']} (pid {started['pid']}); state in {stack.STATE_DIR}/")
        print("ecom-pipeline upload/trigger/runs in this folder now use it; `ecom-pipeline local down` stops it")
        return 0
    if command == "down":
        print("stopped" if stack.down() else "no local stack was running")
        return 0
    state = stack.attached()
    if state is None:
        print("no local stack running here (ecom-pipeline local up starts one)")
        return 1
    settings = stack.attached_settings()
    print(f"local stack on {state['endpoint']} (pid {state['pid']}), bucket {settings.bucket}")
    from pipeline_tasks.io import aws

    sqs = aws.client(settings, "sqs")
    for name in (settings.queue_name, settings.dead_letter_queue_name):
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        print(
            f"  queue {name}: {attributes['ApproximateNumberOfMessages']} waiting, "
            f"{attributes['ApproximateNumberOfMessagesNotVisible']} in flight"
        )
    sfn = aws.client(settings, "stepfunctions")
    for execution in sfn.list_executions(stateMachineArn=str(settings.state_machine_arn), maxResults=5)["executions"]:
        print(f"  execution {execution['name']}: {execution['status']}")
    return 0


def print_summary(out: Path) -> None:
    """A short, readable summary of the dumped KPIs."""
    with (out / "order_kpis.csv").open() as handle:
        days = list(csv.DictReader(handle))
    with (out / "category_kpis.csv").open() as handle:
        categories = list(csv.DictReader(handle))
    if not days:
        print("no KPIs: no valid orders were staged")
        return
    revenue = sum(Decimal(d["total_revenue"]) for d in days)
    orders = sum(int(d["total_orders"]) for d in days)
    items = sum(int(d["total_items_sold"]) for d in days)
    print(f"\nKPIs: {plural(len(days), 'day')} from {days[0]['order_date']} to {days[-1]['order_date']}")
    print(f"  orders {orders:,}   items sold {items:,}   revenue {revenue:,.2f}")
    by_category: dict[str, Decimal] = {}
    for row in categories:
        by_category[row["category"]] = by_category.get(row["category"], Decimal(0)) + Decimal(row["daily_revenue"])
    print("  top categories by revenue:")
    for name, value in sorted(by_category.items(), key=lambda kv: -kv[1])[:5]:
        print(f"    {name:<28} {value:>14,.2f}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; every error is one line on stderr and an exit code (a traceback too with ``--debug``)."""
    args = _parser().parse_args(argv)
    # A SIGTERM (docker stop, timeout, ECS stopping a task) unwinds like Ctrl-C, so the
    # servers this command started are stopped by their context managers.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print("interrupted; the servers this command started are stopped", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            traceback.print_exc()
        known = cli_errors.translate(error)
        print(cli_errors.one_line(known) if known else cli_errors.unexpected(error), file=sys.stderr)
        return known.exit_code if known else 1


def _dispatch(args: argparse.Namespace) -> int:
    """Call the verb's function."""
    if args.command == "validate":
        return _validate(args.files)
    if args.command == "runs" and args.runs_command == "list":
        return _runs_list(None if args.all else args.limit)
    if args.command == "runs" and args.runs_command == "show":
        return _runs_show(args.execution_id, args.dest)
    if args.command == "lab":
        from pipeline_tasks.local import lab as workbench

        return workbench.run(
            aws=args.aws,
            samples=args.samples,
            port=args.port,
            open_browser=not args.no_browser,
            refresh=args.refresh_outputs,
            reset=args.reset,
        )
    if args.command == "reconcile":
        return _reconcile(args.dry_run)
    if args.command == "upload":
        return _upload(args.files, args.force)
    if args.command == "trigger":
        return _trigger(follow=not args.no_follow)
    if args.command == "rerun":
        return _rerun(args.execution_id)
    if args.command == "local" and args.local_command in ("up", "status", "down"):
        return _local(args.local_command)
    if args.command == "notebook":
        return _notebook(args.step, args.parameter, args.output_dir, progress=not args.no_progress)
    if args.command == "local" and args.local_command == "run":
        return _local_run(args.batch_dirs, args.out)
    return 2


def _local_run(batch_dirs: Sequence[Path], out: Path) -> int:
    from pipeline_tasks.local import runner

    executions = runner.run(batch_dirs, out, base=Settings.from_env())
    print_summary(out)
    failed = [e.execution_id for e in executions if e.status != "SUCCEEDED"]
    if failed:
        print(f"FAILED executions: {', '.join(failed)} (details in {out / 'executions.json'})")
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
