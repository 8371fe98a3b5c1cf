"""The one-line summaries of a KPI table's check (``ecom-pipeline reconcile``, ``runs show``)."""

from __future__ import annotations

import json

import pytest

from pipeline_tasks.cli import table_check_line
from pipeline_tasks.io.published import TableCheck

ID = {"TableId": "0f1e2d3c-0000-4000-8000-000000000000"}


@pytest.mark.parametrize(
    ("check", "line"),
    [
        (TableCheck("O", ID, False, 3, 3, "none", 0, 0, 3), "O: in sync (3 items recorded, 3 found, 3 matching)"),
        (
            TableCheck("C", ID, True, 3, 3, "repaired", 1, 0, 2),
            "C: repaired: 1 put, 0 deleted "
            "(3 items recorded, 3 found, 2 matching; a new table since the last transform)",
        ),
        (
            TableCheck("C", ID, False, 4, 5, "would repair", 1, 2, 2),
            "C: would put 1, delete 2 (4 items recorded, 5 found, 2 matching; dry run)",
        ),
        (TableCheck("C", None, True, 4, None, "missing"), "C: missing (4 items recorded, no table)"),
        (
            TableCheck("C", ID, False, 4, 0, "full recompute"),
            "C: does not match, and the published-KPI record is missing: every day recomputed "
            "(4 items recorded, 0 found)",
        ),
    ],
)
def test_a_check_reads_as_one_line(check, line):
    assert table_check_line(check) == line


def test_a_check_round_trips_through_the_transform_report():
    check = TableCheck(
        "C", ID, False, 2, 1, "repaired", 1, 0, 1, ({"category": "Tops", "order_date": "d1", "change": "new"},)
    )
    assert TableCheck.from_json(json.loads(json.dumps(check.to_json()))) == check
