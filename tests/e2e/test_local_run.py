"""``ecom-pipeline local run`` over the sample batches: KPIs, archived notebooks, executions.json."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import sys
from decimal import Decimal
from pathlib import Path

import nbformat
import pytest

from pipeline_tasks.cli import main
from tests.expected_states import PROCESSED
from tests.reference import Reference

pytestmark = [pytest.mark.spark, pytest.mark.aws, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BATCHES = [REPO / "samples" / "batch_01", REPO / "samples" / "batch_02"]
NOTEBOOKS = ("10_validate", "20_stage", "30_transform_kpis")
#: Shorter than the default (10 s), so that even a fast transformation gets heartbeats.
HEARTBEAT_SECONDS = 3
#: What the JVM prints (log4j levels and its "yy/MM/dd HH:mm:ss" stamp, JDK and Spark start-up
#: lines), which a heartbeat must never show; the pipeline's own lines may name Spark.
JVM_NOISE = re.compile(r"\bWARN\b|log4j|jdk\.|SparkContext|Using Spark's|NativeCodeLoader|^\d\d/\d\d/\d\d \d\d:")


def _outputs(notebook: nbformat.NotebookNode) -> str:
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") + output.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


def _images(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for c in notebook.cells for o in c.get("outputs", []))


class _Tee(io.StringIO):
    """Keeps what the run prints and still shows it (pytest -s)."""

    def __init__(self, shown: io.TextIOBase) -> None:
        super().__init__()
        self.shown = shown

    def write(self, text: str) -> int:
        self.shown.write(text)
        return super().write(text)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    printed = _Tee(sys.stdout)
    with contextlib.redirect_stdout(printed), pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIPELINE_HEARTBEAT_SECONDS", str(HEARTBEAT_SECONDS))
        code = main(["local", "run", *map(str, BATCHES), "--out", str(out)])
    return code, out, printed.getvalue()


def test_the_demo_succeeds_with_the_contract_kpis(demo):
    code, out, _ = demo
    assert code == 0
    ref = Reference()
    for folder in BATCHES:
        for path in sorted(folder.iterdir()):
            ref.load(path.name, path.read_bytes())
    expected_orders, expected_categories = ref.kpis()
    with (out / "order_kpis.csv").open() as handle:
        orders = {r.pop("order_date"): {k: Decimal(v) for k, v in r.items()} for r in csv.DictReader(handle)}
    with (out / "category_kpis.csv").open() as handle:
        categories = {
            (r.pop("category"), r.pop("order_date")): {k: Decimal(v) for k, v in r.items()}
            for r in csv.DictReader(handle)
        }
    assert orders == expected_orders
    assert categories == expected_categories


def test_every_execution_went_through_the_state_machine(demo):
    _, out, _ = demo
    executions = json.loads((out / "executions.json").read_text())
    assert [e["status"] for e in executions] == ["SUCCEEDED", "SUCCEEDED"]
    for execution in executions:
        assert execution["states"] == PROCESSED
    listing = (out / "bucket.txt").read_text()
    assert "input/ (0)" in listing and "archive/ (10)" in listing and "rejected/ (1)" in listing
    assert "rejected/orders_broken.csv  # missing required column(s) for orders" in listing


def test_every_execution_leaves_its_executed_notebooks(demo):
    _, out, _ = demo
    executions = json.loads((out / "executions.json").read_text())
    for execution in executions:
        execution_id = execution["execution_id"]
        expected = {f"runs/{execution_id}/{n}.{suffix}" for n in NOTEBOOKS for suffix in ("ipynb", "html", "json")}
        assert set(execution["notebooks"]) == expected
        folder = out / "runs" / execution_id
        assert {p.name for p in folder.iterdir()} == {k.rsplit("/", 1)[1] for k in expected}
        for name in NOTEBOOKS:
            notebook = nbformat.read(folder / f"{name}.ipynb", as_version=4)
            injected = [c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", [])]
            assert len(injected) == 1 and f'execution_id = "{execution_id}"' in injected[0].source
            assert not any(o.get("output_type") == "error" for c in notebook.cells for o in c.get("outputs", []))
            assert json.loads((folder / f"{name}.json").read_text())["status"] == "SUCCEEDED"
            assert execution_id in (folder / f"{name}.html").read_text()
        validate_text = _outputs(nbformat.read(folder / "10_validate.ipynb", as_version=4))
        for item in execution["valid_files"] + execution["invalid_files"]:
            assert item["key"] in validate_text
        stage_notebook = nbformat.read(folder / "20_stage.ipynb", as_version=4)
        assert "rows_kept" in _outputs(stage_notebook) and _images(stage_notebook) == 1
        transform_notebook = nbformat.read(folder / "30_transform_kpis.ipynb", as_version=4)
        assert "OrderKPIs" in _outputs(transform_notebook) and _images(transform_notebook) == 1


def test_the_rejected_file_and_its_reason_are_in_the_validate_notebook(demo):
    _, out, _ = demo
    executions = json.loads((out / "executions.json").read_text())
    rejected = executions[1]["invalid_files"]
    assert [r["key"] for r in rejected] == ["input/orders_broken.csv"]
    html = (out / "runs" / executions[1]["execution_id"] / "10_validate.html").read_text()
    assert "orders_broken.csv" in html and "missing required column" in html


def test_the_run_reports_heartbeats_while_the_transformation_runs(demo):
    """Issue 18, no long silences: while the transformation runs, heartbeats name it and its seconds."""
    _, _, printed = demo
    lines = printed.splitlines()
    for start in [n for n, line in enumerate(lines) if line == "    -> TransformationTask"]:
        during = lines[start + 1 : lines.index("    -> CheckTransformationExit", start)]
        beats = [line for line in during if line.startswith("    .. ")]
        assert beats, during
        for beat in beats:
            found = re.fullmatch(r"    \.\. TransformationTask (\d+) s(?:: (.+))?", beat)
            assert found, beat
            assert int(found[1]) >= HEARTBEAT_SECONDS - 1
            assert found[2] is None or not JVM_NOISE.search(found[2]), beat
