"""The step documents: each round-trips a document the code produced, and keeps every key the readers need."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline_tasks import documents, layout, notebooks
from pipeline_tasks.batches import BatchFile
from pipeline_tasks.documents import (
    BatchValidation,
    FileFunnel,
    KpiTableWrites,
    MergeSummary,
    RejectedFile,
    RunRecord,
    StageReport,
    TransformReport,
    ValidFile,
)
from pipeline_tasks.io import aws
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.io.s3 import LocalSource
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps import stage, validate
from pipeline_tasks.transforms.staging import Provenance
from pipeline_tasks.validation import validate as validate_file
from tests.builders import csv_bytes, item, order, product

ORDERS_HEADER = "order_id,user_id,status,created_at,returned_at,shipped_at,delivered_at,num_of_item"

#: The keys each document writes: what the state machine, the Lambda functions and the
#: reviewers' notebooks read. A field dropped from a class (or from its ``to_json``) fails here.
KEYS: dict[type[documents.Document], set[str]] = {
    BatchValidation: {"execution_id", "keys", "validated_at", "valid_files", "invalid_files", "has_valid_files"},
    ValidFile: {"key", "dataset", "rows_read", "rows_not_staged", "version_id", "event_time"},
    RejectedFile: {"key", "dataset", "reason", "version_id", "event_time"},
    StageReport: {"execution_id", "files", "tables", "quarantine"},
    FileFunnel: {
        "key",
        "dataset",
        "rows_read",
        "rows_not_staged",
        "rows_quarantined",
        "rows_staged",
        "rows_excluded_by_cleaning",
        "rows_kept",
    },
    MergeSummary: {
        "table",
        "version",
        "source_rows",
        "inserted",
        "updated",
        "unchanged",
        "partitions_touched",
        "older",
        "rows_superseded_in_batch",
        "chunks",
        "seconds",
    },
    TransformReport: {
        "execution_id",
        "mode",
        "versions",
        "previous_versions",
        "affected_dates",
        "spark_requested",
        "money_sums",
        "read_back_days",
        "table_checks",
        "blocked_days",
        "tables",
        "order_kpis",
        "seconds",
        "seconds_by_phase",
    },
    KpiTableWrites: {"key", "values", "put", "new", "deleted", "unchanged", "changes"},
    RunRecord: {
        "execution_id",
        "step",
        "notebook",
        "status",
        "started_at",
        "parameters",
        "exit_code",
        "error",
        "keys",
        "local_path",
        "seconds",
    },
}


#: Keys a document writes only when it has them: the transform's ``plan`` (written by the
#: rewrite of ``steps.transform`` under way).
OPTIONAL_KEYS: dict[type[documents.Document], set[str]] = {TransformReport: {"plan"}}


def _stored(document: dict[str, Any]) -> dict[str, Any]:
    """The document as S3 holds it (``io.s3.put_json``) and readers get it back."""
    return json.loads(json.dumps(document, indent=2, sort_keys=True, default=str))


def _assert_round_trips(kind: type[documents.Document], document: dict[str, Any]) -> None:
    stored = _stored(document)
    assert kind.from_json(stored).to_json() == stored
    assert kind.from_json(stored) == kind.from_json(document)


def _write(folder: Path, name: str, data: bytes) -> LocalSource:
    path = folder / name
    path.write_bytes(data)
    return LocalSource(path)


def _validation(tmp_path: Path) -> BatchValidation:
    """A validation result of real verdicts: a valid file with row problems, two invalid files."""
    sources = [
        _write(
            tmp_path,
            "orders.csv",
            f"{ORDERS_HEADER}\n1,10,Complete,2024-01-01 10:00:00,,,,1\n2,10,Complete\nabc,1,x,,,,,1\n".encode(),
        ),
        _write(tmp_path, "orders.txt", b"not ours"),
        _write(tmp_path, "products.csv", b""),
    ]
    verdicts = [validate_file(source) for source in sources]
    files = [BatchFile(s.key, f"v{n}", f"2024-03-0{n}T10:00:00+00:00") for n, s in enumerate(sources, start=1)]
    return validate.batch_validation("e-1", verdicts, files)


def test_the_validation_result_round_trips(tmp_path):
    validation = _validation(tmp_path)
    document = validation.to_json()
    assert [f["key"] for f in document["valid_files"]] == [str(tmp_path / "orders.csv")]
    assert document["valid_files"][0]["rows_not_staged"] and len(document["invalid_files"]) == 2
    _assert_round_trips(BatchValidation, document)
    assert BatchValidation.from_json(_stored(document)) == validation
    rejected = validate.build_result("e-1", [validate_file(LocalSource(tmp_path / "orders.txt"))])
    assert rejected.to_json()["has_valid_files"] is False


def _stage_report(tmp_path: Path) -> StageReport:
    """A stage report of a real staging run on local files into a local lake."""
    folder = tmp_path / "input"
    folder.mkdir()
    settings = Settings(bucket="unused", lake_root=str(tmp_path / "lake"))
    orders = csv_bytes("orders", [order(1), order(2, "2024-03-02 00:00:00"), order(3, created="")])
    files = [
        _write(folder, "products.csv", csv_bytes("products", [product(1)])),
        _write(folder, "orders.csv", orders + b"abc,1,Complete,2024-03-01 10:00:00,1\n"),
        _write(folder, "order_items.csv", csv_bytes("order_items", [item(1, 1), item(2, 2, price="4.5")])),
    ]
    now = datetime(2024, 3, 3, tzinfo=UTC)
    batch = [stage.FileToStage(f, Provenance(f.key, None, "e-1", now)) for f in files]
    return stage.stage_files(settings, "e-1", batch)


def test_the_stage_report_round_trips(tmp_path):
    report = _stage_report(tmp_path)
    document = report.to_json()
    assert [f["dataset"] for f in document["files"]] == ["products", "orders", "order_items"]  # arrival order
    assert set(document["tables"]) == {"products", "orders", "order_items"}
    _assert_round_trips(StageReport, document)


def test_the_run_record_is_the_runs_fields_and_round_trips(tmp_path):
    settings = Settings(bucket="b", notebooks_dir=str(tmp_path))
    run = notebooks._new_run(settings, "validate", tmp_path / "10_validate.ipynb", {"execution_id": "e-1"})
    run.status, run.exit_code, run.error = notebooks.FAILED, 3, "orders.csv: missing required column"
    run.seconds["execute"], run.keys["record"] = 1.5, layout.run_key(settings, "e-1", "10_validate.json")
    # The record holds exactly the run's fields, in their order (the record is written unsorted).
    assert list(run.record().to_json().items()) == list(dataclasses.asdict(run).items())
    _assert_round_trips(RunRecord, run.record().to_json())


@pytest.mark.aws
def test_an_archived_run_record_round_trips(settings, tmp_path):
    run = notebooks._new_run(settings, "stage", tmp_path / "20_stage.ipynb", {"execution_id": "e-2", "x": [1]})
    notebooks._archive(settings, run, tmp_path / "never-executed.ipynb")  # the record only
    stored = s3io.get_json(aws.client(settings, "s3"), settings.bucket, run.keys["record"])
    assert stored == dataclasses.asdict(run)
    _assert_round_trips(RunRecord, stored)


def _transform_report() -> dict[str, Any]:
    """A transform report as ``steps.transform`` writes it (a real one: ``test_real_documents_round_trip``)."""
    changes = [{"order_date": "2024-03-01", "change": "new", "total_orders_before": "", "total_orders": "2"}]
    return {
        "execution_id": "e-1",
        "mode": "incremental",
        "versions": {"orders": 3, "order_items": 2, "products": 1},
        "previous_versions": {"orders": 2, "order_items": 2, "products": 1},
        "affected_dates": ["2024-03-01"],
        "spark_requested": True,
        "money_sums": "int64 parts",
        "read_back_days": ["2024-03-01"],
        "table_checks": [{"table": "OrderKPIs", "identity_changed": False, "expected_items": 3, "found_items": 3}],
        "blocked_days": {"2024-03-02": "ArithmeticError: overflow"},
        "tables": {
            "OrderKPIs": {
                "key": ["order_date"],
                "values": ["total_orders"],
                "put": 1,
                "new": 1,
                "deleted": 0,
                "unchanged": 4,
                "changes": changes,
            }
        },
        "order_kpis": [{"order_date": "2024-03-01", "total_orders": 2, "total_revenue": "10.00"}],
        "seconds": 12.5,
        "seconds_by_phase": {"open tables": 0.2, "compute KPIs": 9.1},
    }


def test_a_transform_report_round_trips_whole_or_read_back_all():
    _assert_round_trips(TransformReport, _transform_report())
    _assert_round_trips(TransformReport, _transform_report() | {"read_back_days": "all", "affected_dates": None})
    full = TransformReport.from_json(_transform_report() | {"mode": "full", "previous_versions": None})
    assert full.previous_versions is None and full.tables["OrderKPIs"].changed == 0


def test_every_document_writes_every_key_its_readers_need(tmp_path):
    validation = _validation(tmp_path)
    report = _stage_report(tmp_path)
    run = RunRecord("e-1", "validate", "SUCCEEDED", "2026-01-01T00:00:00+00:00", notebook="10_validate")
    transform = TransformReport.from_json(_transform_report())
    written: list[documents.Document] = [
        validation,
        validation.valid_files[0],
        validation.invalid_files[0],
        report,
        report.files[0],
        report.tables["orders"],
        transform,
        transform.tables["OrderKPIs"],
        run,
    ]
    assert {type(d) for d in written} == set(KEYS)
    for document in written:
        assert set(document.to_json()) == KEYS[type(document)], type(document).__name__
    # Every field is written (``has_valid_files`` is derived from ``valid_files``).
    for kind, keys in KEYS.items():
        assert {f.name for f in dataclasses.fields(kind)} <= keys | OPTIONAL_KEYS.get(kind, set()), kind.__name__
    planned = dataclasses.replace(transform, plan={"mode": "incremental", "needs_spark": True})
    assert set(planned.to_json()) == KEYS[TransformReport] | {"plan"}
    _assert_round_trips(TransformReport, planned.to_json())


def test_older_documents_and_hand_built_entries_still_read():
    """Keys a document lacks take the defaults the readers used; keys beyond the known ones are ignored."""
    funnel = {"key": "k", "dataset": "orders", "rows_read": 5, "rows_not_staged": {}, "rows_staged": 5, "new": 1}
    report = StageReport.from_json({"files": [funnel], "tables": {"orders": {"inserted": 5, "version": 1}}})
    assert report.quarantine is None and report.files[0].kept == 5 and report.files[0].rows_quarantined == 0
    assert report.tables["orders"].older is None and "quarantine" not in report.to_json()
    moves = BatchValidation.from_json({"invalid_files": [{"key": "input/x.csv", "reason": "r", "later": True}]})
    assert moves.invalid_files == (RejectedFile("input/x.csv", reason="r"),) and not moves.has_valid_files
    assert TransformReport.from_json({}).tables == {} and TransformReport.from_json({}).affected_dates is None
    record = RunRecord.from_json({"step": "stage", "status": "FAILED", "started_at": "t", "error": "boom"})
    assert (record.exit_code, record.error) == (0, "boom")
    assert ValidFile.of(ValidFile("k")) == ValidFile.of({"key": "k"})


@pytest.mark.aws
@pytest.mark.spark
@pytest.mark.slow
def test_real_documents_round_trip(pipeline):
    """The documents one batch leaves in the bucket, through the real steps."""
    execution = pipeline.run_batch(
        [
            ("products.csv", csv_bytes("products", [product(1)])),
            ("orders.csv", csv_bytes("orders", [order(1), order(2, "2024-03-02 00:00:00")])),
            ("order_items.csv", csv_bytes("order_items", [item(1, 1), item(2, 2, price="4.5")])),
            ("junk.csv", b"not ours"),
        ]
    )
    settings, s3, execution_id = pipeline.settings, pipeline.s3, execution.execution_id
    stored = {
        BatchValidation: layout.result_key(settings, execution_id),
        StageReport: layout.report_key(settings, execution_id, "stage"),
        TransformReport: layout.report_key(settings, execution_id, "transform"),
    }
    for kind, key in stored.items():
        document = s3io.get_json(s3, settings.bucket, key)
        assert KEYS[kind] <= set(document) <= KEYS[kind] | OPTIONAL_KEYS.get(kind, set()), kind.__name__
        _assert_round_trips(kind, document)
    transform = TransformReport.from_json(s3io.get_json(s3, settings.bucket, stored[TransformReport]))
    for writes in transform.tables.values():
        assert set(writes.to_json()) == KEYS[KpiTableWrites]
