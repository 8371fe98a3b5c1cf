"""A shop's messiest export, through the real steps: 200+ malformed files and poison values.

Every file ends in exactly one of archive/ or rejected/ (a rejected one with its reason),
every data record of a valid file is staged or counted under a reason, every batch
succeeds, and the KPIs equal the independent reference's.
"""

from __future__ import annotations

import pytest

from pipeline_tasks import layout
from pipeline_tasks.documents import BatchValidation
from pipeline_tasks.io import s3 as s3io
from tests.corpus import Case, corpus
from tests.reference import Reference

pytestmark = [pytest.mark.spark, pytest.mark.aws, pytest.mark.slow]

BATCHES = 3


def test_every_malformed_file_is_archived_or_rejected_with_a_reason_and_the_kpis_hold(pipeline):
    cases = list(corpus())
    assert len(cases) >= 200
    by_key = {pipeline.settings.input_prefix + c.name: c for c in cases}
    reference = Reference()
    for number in range(BATCHES):
        batch = cases[number::BATCHES]
        execution = pipeline.run_batch([(c.name, c.data) for c in batch])
        result = BatchValidation.from_json(
            s3io.get_json(
                pipeline.s3, pipeline.settings.bucket, layout.result_key(pipeline.settings, execution.execution_id)
            )
        )
        _check_verdicts(by_key, result)
        for case in batch:
            if case.valid:
                reference.load(case.name, case.data)
        orders, categories = reference.kpis()
        assert pipeline.order_kpis() == orders, f"batch {number + 1}"
        assert pipeline.category_kpis() == categories, f"batch {number + 1}"

    archived = {
        k.removeprefix(pipeline.settings.archive_prefix) for k in pipeline.keys(pipeline.settings.archive_prefix)
    }
    rejected = {
        k.removeprefix(pipeline.settings.rejected_prefix) for k in pipeline.keys(pipeline.settings.rejected_prefix)
    }
    assert pipeline.keys(pipeline.settings.input_prefix) == []
    assert archived == {c.name for c in cases if c.valid}
    assert rejected == {c.name for c in cases if not c.valid}


def _check_verdicts(by_key: dict[str, Case], result: BatchValidation) -> None:
    problems = []
    for rejected in result.invalid_files:
        case = by_key[rejected.key]
        if case.valid:
            problems.append(f"{case.name}: rejected ({rejected.reason}) but valid")
        elif case.reason not in (rejected.reason or ""):
            problems.append(f"{case.name}: reason {rejected.reason!r} lacks {case.reason!r}")
    for valid in result.valid_files:
        case = by_key[valid.key]
        if not case.valid:
            problems.append(f"{case.name}: accepted, expected a rejection for {case.reason!r}")
        elif valid.rows_read != case.rows:
            problems.append(f"{case.name}: rows_read {valid.rows_read}, the file has {case.rows} data records")
    assert not problems, "\n".join(problems)
