"""The pipeline notebooks with papermill on the sample data: defaults, reports, a failing step."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from pipeline_tasks import errors, layout, notebooks
from pipeline_tasks.documents import BatchValidation, RunRecord, TransformReport
from pipeline_tasks.io import aws
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.local import lab

pytestmark = [pytest.mark.aws, pytest.mark.spark, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SAMPLES = [REPO / "samples" / "batch_01", REPO / "samples" / "batch_02"]


def test_the_pipeline_notebooks_run_with_their_default_parameters(settings, tmp_path):
    """No parameter injected at all: the defaults run on the sample batch ``make lab`` leaves."""
    settings = settings.with_overrides(notebooks_dir=str(REPO / "notebooks"))
    lab.leave_sample_batch(settings, SAMPLES[-1])
    for name in ("10_validate", "20_stage", "30_transform_kpis"):
        copy = tmp_path / f"{name}.ipynb"
        shutil.copy(REPO / "notebooks" / "pipeline" / copy.name, copy)
        lab.execute_in_place(settings, copy)
    s3 = aws.client(settings, "s3")
    result = BatchValidation.from_json(
        s3io.get_json(s3, settings.bucket, layout.result_key(settings, lab.SAMPLE_EXECUTION))
    )
    assert [f.key for f in result.invalid_files] == ["input/orders_broken.csv"]
    assert len(result.valid_files) == len(list(SAMPLES[-1].iterdir())) - 1
    report = TransformReport.from_json(
        s3io.get_json(s3, settings.bucket, layout.report_key(settings, lab.SAMPLE_EXECUTION, "transform"))
    )
    assert report.mode == "full" and report.tables[settings.order_kpis_table].put > 0
    executed = nbformat.read(tmp_path / "30_transform_kpis.ipynb", as_version=4)
    assert any("image/png" in o.get("data", {}) for c in executed.cells for o in c.get("outputs", []))


def test_a_failed_step_is_archived_with_the_error_in_its_notebook(settings):
    settings = settings.with_overrides(notebooks_dir=str(REPO / "notebooks"))
    with pytest.raises(errors.StepFailed, match="no validation result") as caught:
        notebooks.run_step(settings, "stage", {"execution_id": "never-validated"})
    assert caught.value.exit_code == 4
    s3 = aws.client(settings, "s3")
    record = RunRecord.from_json(
        s3io.get_json(s3, settings.bucket, layout.run_key(settings, "never-validated", "20_stage.json"))
    )
    assert (record.status, record.exit_code) == ("FAILED", 4)
    body = s3.get_object(Bucket=settings.bucket, Key=layout.run_key(settings, "never-validated", "20_stage.ipynb"))
    executed = nbformat.reads(body["Body"].read().decode(), as_version=4)
    errors_shown = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert [e["ename"] for e in errors_shown] == ["StepFailed"]
    assert "run the validate step first" in errors_shown[0]["evalue"]


def test_the_lab_serves_the_notebooks_with_the_stacks_settings(settings):
    import time
    import urllib.error
    import urllib.request

    from pipeline_tasks.local.process import free_port

    port = free_port()
    process = lab.start_jupyter(
        settings.with_overrides(notebooks_dir=str(REPO / "notebooks")), port=port, open_browser=False
    )
    try:
        deadline, status = time.monotonic() + 60, None
        while time.monotonic() < deadline and status is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                time.sleep(0.5)
        assert status == 200, "JupyterLab did not answer"
        environ = dict(
            item.split("=", 1) for item in Path(f"/proc/{process.pid}/environ").read_text().split("\0") if "=" in item
        )
        assert environ["PIPELINE_BUCKET"] == settings.bucket
        assert environ["AWS_ENDPOINT_URL"] == settings.aws_endpoint_url
        assert environ["PIPELINE_ORDER_KPIS_TABLE"] == settings.order_kpis_table
    finally:
        process.terminate()
        process.wait(timeout=30)
