"""The pipeline notebooks as an auditor reads them: complete tables, no JVM noise (issue 18, item 3)."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from pipeline_tasks import layout, notebooks, runs
from pipeline_tasks.documents import BatchValidation, TransformReport
from pipeline_tasks.io import aws
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.local import lab
from tests.notebooks.conftest import SAMPLES

pytestmark = [pytest.mark.aws, pytest.mark.spark, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def _stderr(executed: nbformat.NotebookNode) -> list[str]:
    return [
        "".join(o.get("text", ""))
        for cell in executed.cells
        for o in cell.get("outputs", [])
        if o.get("output_type") == "stream" and o.get("name") == "stderr"
    ]


def _cells(page: str) -> list[str]:
    """The text of every table cell of an HTML page."""
    return [html.unescape(cell) for cell in re.findall(r"<td>(.*?)</td>", page, flags=re.S)]


def _archived(settings, execution: str, name: str) -> str:
    s3 = aws.client(settings, "s3")
    return s3.get_object(Bucket=settings.bucket, Key=layout.run_key(settings, execution, name))["Body"].read().decode()


def test_the_archived_notebooks_show_every_reason_and_change_without_jvm_noise(seeded):
    """The sample batches through the pipeline: the audit record of each step is complete and clean."""
    settings = seeded
    executions = [e for e in runs.execution_ids(settings) if e != lab.SAMPLE_EXECUTION]
    assert len(executions) == len(SAMPLES)
    s3 = aws.client(settings, "s3")
    for execution in executions:
        for name in notebooks.STEPS.values():
            executed = nbformat.reads(_archived(settings, execution, f"{name}.ipynb"), as_version=4)
            assert _stderr(executed) == [], (execution, name)

    rejected = 0
    for execution in executions:
        result = BatchValidation.from_json(s3io.get_json(s3, settings.bucket, layout.result_key(settings, execution)))
        page = _archived(settings, execution, "10_validate.html")
        cells = _cells(page)
        assert all(f.reason in cells for f in result.invalid_files), execution
        assert "&lt;NA&gt;" not in page
        rejected += len(result.invalid_files)
    assert rejected and any(len(f.reason or "") > 50 for f in result.invalid_files)

    longest = 0
    for execution in executions:
        report = TransformReport.from_json(
            s3io.get_json(s3, settings.bucket, layout.report_key(settings, execution, "transform"))
        )
        page = _archived(settings, execution, "30_transform_kpis.html")
        cells = _cells(page)
        for table in (settings.order_kpis_table, settings.category_kpis_table):
            changes = report.tables[table].changes
            keys = report.tables[table].key
            assert all(all(str(c[k]) in cells for k in keys) for c in changes), (execution, table)
            longest = max(longest, len(changes))
        rows = re.findall(r"<tr>\s*<th>\d+</th>", page)
        assert len(rows) >= sum(len(t.changes) for t in report.tables.values()) + len(report.order_kpis)
        assert "<td>...</td>" not in page and "<th>...</th>" not in page
    assert longest > 60  # longer than pandas shows a table without cutting it


def test_a_spark_session_prints_nothing_on_the_terminal(tmp_path):
    """The JVM's start-up output (log4j banner, NativeCodeLoader, ivy) goes to its log file."""
    log = tmp_path / "jvm.log"
    script = (
        "from pipeline_tasks.io import spark\n"
        "from pipeline_tasks.settings import Settings\n"
        f"session = spark.session(Settings(spark_jars_dir={str(REPO / '.jars')!r}, spark_jvm_log={str(log)!r}), "
        "short_lived=True)\n"
        "assert session.range(3).count() == 3\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")
    assert log.exists()
