"""What reviewers see: report documents in, tables and charts out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

from pipeline_tasks import errors, review, runs
from pipeline_tasks.documents import BatchValidation, RunRecord
from pipeline_tasks.io.dynamodb import TableSpec, describe_changes

RESULT = {
    "keys": ["input/orders.csv", "input/junk.csv", "input/order_items.csv"],
    "valid_files": [
        {"key": "input/order_items.csv", "dataset": "order_items", "rows_read": 5, "rows_not_staged": {}},
        {"key": "input/orders.csv", "dataset": "orders", "rows_read": 4, "rows_not_staged": {"missing_key": 1}},
    ],
    "invalid_files": [{"key": "input/junk.csv", "dataset": None, "reason": "unknown dataset"}],
}
STAGE = {
    "files": [
        {
            "key": "input/orders.csv",
            "dataset": "orders",
            "rows_read": 4,
            "rows_not_staged": {"missing_key": 1},
            "rows_quarantined": 1,
            "rows_staged": 3,
            "rows_excluded_by_cleaning": {"created_at_missing": 1},
            "rows_kept": 2,
        },
        {
            "key": "input/order_items.csv",
            "dataset": "order_items",
            "rows_read": 5,
            "rows_not_staged": {},
            "rows_staged": 5,
            "rows_excluded_by_cleaning": {},
            "rows_kept": 5,
        },
    ],
    "tables": {"orders": {"inserted": 3, "updated": 0, "unchanged": 0, "version": 1}},
}
TRANSFORM = {
    "mode": "incremental",
    "affected_dates": ["2024-03-02", "2024-03-01"],
    "order_kpis": [
        {"order_date": "2024-03-02", "total_orders": 2, "total_revenue": "10.50", "return_rate": "50.00"},
        {"order_date": "2024-03-01", "total_orders": 1, "total_revenue": "4.00", "return_rate": "0.00"},
    ],
    "tables": {
        "OrderKPIs": {
            "key": ["order_date"],
            "values": ["total_revenue"],
            "put": 2,
            "new": 1,
            "deleted": 1,
            "unchanged": 3,
            "changes": [
                {
                    "order_date": "2024-03-02",
                    "change": "changed",
                    "total_revenue_before": "9",
                    "total_revenue": "10.50",
                },
                {"order_date": "2024-03-01", "change": "new", "total_revenue_before": "", "total_revenue": "4.00"},
            ],
        }
    },
}


def test_verdicts_list_every_file_in_arrival_order_with_its_reason():
    table = review.verdicts(RESULT)
    assert table["key"].tolist() == RESULT["keys"]
    assert table["verdict"].tolist() == ["valid", "rejected", "valid"]
    assert table.loc[1, "reason"] == "unknown dataset" and table.loc[1, "dataset"] == "unknown"
    assert table.loc[0, "rows_not_staged"] == "1 missing_key"


def test_the_funnel_adds_a_column_per_reason_and_rule():
    table = review.funnel(STAGE)
    assert table.columns.tolist() == [
        "key",
        "dataset",
        "rows_read",
        "not staged: missing_key",
        "rows_quarantined",
        "rows_staged",
        "excluded: created_at_missing",
        "rows_kept",
    ]
    assert table.iloc[0].tolist()[2:] == [4, 1, 1, 3, 1, 2]
    assert table.iloc[1].tolist()[2:] == [5, 0, 0, 5, 0, 5]


def test_quarantined_rows_are_listed_by_file_and_line_in_full():
    long_value = "x" * 1500
    records = [
        {"source_key": "input/b.csv", "line": 7, "reason": "missing_key", "key": None, "value": None, "row": "{}"},
        {"source_key": "input/a.csv", "line": 12, "reason": "category_too_long", "key": "2", "value": long_value},
        {"source_key": "input/a.csv", "line": 3, "reason": "wrong_field_count", "row": "1,2"},
    ]
    table = review.quarantined(records)
    assert list(zip(table["source_key"], table["line"], strict=True)) == [
        ("input/a.csv", 3),
        ("input/a.csv", 12),
        ("input/b.csv", 7),
    ]
    assert table.loc[1, "value"] == long_value
    assert review.quarantined([]).columns.tolist() == list(review.QUARANTINE_COLUMNS)


def test_row_rules_show_the_share_in_force():
    table = review.row_rules(lambda rule: 0.1 if rule.name == "category_too_long" else rule.max_share)
    by_rule = table.set_index("rule")
    assert by_rule.loc["category_too_long", "rejects the file above"] == "10% of its rows"
    assert by_rule.loc["category_too_long", "limit"] == "1,024 bytes"
    assert by_rule.loc["sale_price_out_of_range", "rejects the file above"] == "50% of its rows"


def test_kpi_writes_and_changes():
    assert review.kpi_change_counts(TRANSFORM) == {"OrderKPIs": {"new": 1, "changed": 1, "deleted": 1, "unchanged": 3}}
    assert review.kpi_change_counts(None) == {}
    changes = review.kpi_changes(TRANSFORM, "OrderKPIs")
    assert changes["order_date"].tolist() == ["2024-03-01", "2024-03-02"]  # sorted by key
    assert changes.columns.tolist() == ["order_date", "change", "total_revenue_before", "total_revenue"]


def test_affected_days_are_typed_and_sorted():
    days = review.affected_days(TRANSFORM)
    assert days["order_date"].tolist() == ["2024-03-01", "2024-03-02"]
    assert days["total_revenue"].tolist() == [4.0, 10.5] and str(days["total_orders"].dtype) == "int64"


@pytest.mark.parametrize(
    "chart",
    [
        lambda: review.affected_days_chart(TRANSFORM),
        lambda: review.affected_days_chart({"order_kpis": []}),
        lambda: review.funnel_chart(STAGE),
        lambda: review.funnel_chart({"files": []}),
    ],
)
def test_charts_are_figures_even_when_empty(chart):
    assert isinstance(chart(), Figure)


def test_describe_changes_gives_before_and_after_and_respects_the_limit():
    spec = TableSpec("OrderKPIs", ("order_date",), ("total_orders",))
    existing = {("2024-03-01",): {"order_date": "2024-03-01", "total_orders": 1}}
    puts = [{"order_date": "2024-03-01", "total_orders": 2}, {"order_date": "2024-03-02", "total_orders": 5}]
    rows = describe_changes(spec, puts, [("2024-02-01",)], existing, limit=10)
    assert rows == [
        {"order_date": "2024-03-01", "change": "changed", "total_orders_before": "1", "total_orders": "2"},
        {"order_date": "2024-03-02", "change": "new", "total_orders_before": "", "total_orders": "5"},
        {"order_date": "2024-02-01", "change": "deleted", "total_orders_before": "", "total_orders": ""},
    ]
    assert len(describe_changes(spec, puts, [], existing, limit=1)) == 1


def _step(step, status, started="2026-01-01T00:00:00+00:00", error=None):
    return {"step": step, "status": status, "started_at": started, "error": error}


@pytest.mark.parametrize(
    ("steps", "result", "status"),
    [
        (
            {"validate": _step("validate", "SUCCEEDED"), "transform": _step("transform", "SUCCEEDED")},
            RESULT,
            "SUCCEEDED",
        ),
        (
            {"validate": _step("validate", "SUCCEEDED")},
            {"valid_files": [], "invalid_files": [{"key": "input/junk.csv"}]},
            "SUCCEEDED",
        ),
        ({"validate": _step("validate", "SUCCEEDED")}, RESULT, "RUNNING"),
        (
            {"validate": _step("validate", "SUCCEEDED"), "stage": _step("stage", "FAILED", error="boom")},
            RESULT,
            "FAILED",
        ),
    ],
)
def test_an_executions_status_comes_from_its_step_records(steps, result, status):
    records = {step: RunRecord.from_json(document) for step, document in steps.items()}
    summary = runs.summarise(runs.ExecutionRecord("e-1", steps=records, result=BatchValidation.from_json(result)))
    assert summary.status == status
    assert (summary.files, summary.valid, summary.rejected) == (
        len(result["valid_files"]) + len(result["invalid_files"]),
        len(result["valid_files"]),
        len(result["invalid_files"]),
    )
    if status == "FAILED":
        assert summary.error == "boom" and "stage:FAILED" in summary.steps


def test_error_names_and_one_exit_code_per_kind():
    kinds = errors.by_name()
    assert kinds["KernelDied"].exit_code == 6 and kinds["InvalidFile"].exit_code == 3
    codes = [k.exit_code for k in kinds.values()]
    assert len(codes) == len(set(codes))  # one exit code per failure kind


def test_table_checks_show_what_the_run_found_and_repaired():
    report = {
        "table_checks": [
            {"table": "OrderKPIs", "identity_changed": False, "expected_items": 3, "found_items": 3, "action": "none"},
            {
                "table": "CategoryKPIs",
                "identity_changed": True,
                "expected_items": 5,
                "found_items": 0,
                "action": "repaired",
                "put": 5,
                "deleted": 0,
            },
        ]
    }
    table = review.table_checks(report)
    assert table["action"].tolist() == ["none", "repaired"]
    assert table.loc[1, ["found_items", "put"]].tolist() == [0, 5]
    assert review.table_checks(None).empty and review.table_checks({}).columns[0] == "table"


def test_blocked_days_list_each_day_with_its_error():
    table = review.blocked_days({"blocked_days": {"2024-03-02": "ArithmeticError: x", "2024-03-01": "ValueError: y"}})
    assert table.values.tolist() == [["2024-03-01", "ValueError: y"], ["2024-03-02", "ArithmeticError: x"]]
    assert review.blocked_days({}).empty and review.blocked_days(None).columns.tolist() == ["order_date", "error"]


def test_tables_show_every_row_and_every_character_in_a_scrolling_box():
    reason = "too many rows fail the row rules: " + "x" * 200 + " (the end)"
    result = {**RESULT, "invalid_files": [{"key": "input/junk.csv", "dataset": None, "reason": reason}]}
    verdicts = review.verdicts(result)
    assert verdicts["rows_read"].dtype == "int64" and verdicts["rows_read"].tolist() == [4, 0, 5]
    html, text = verdicts._repr_html_(), repr(verdicts)
    assert reason in html and reason in text and "<NA>" not in html + text
    assert html.startswith(f'<div style="{review.TABLE_BOX}">')
    changes = [
        {
            "category": f"c{n:03}",
            "order_date": "2024-03-01",
            "change": "new",
            "total_revenue_before": None,
            "total_revenue": str(n),
        }
        for n in range(216)
    ]
    transform = {
        "tables": {
            "CategoryKPIs": {
                "key": ["category", "order_date"],
                "values": ["total_revenue"],
                "put": 216,
                "deleted": 0,
                "unchanged": 0,
                "changes": changes,
            }
        }
    }
    table = review.kpi_changes(transform, "CategoryKPIs")
    html = table._repr_html_()
    assert all(f"<td>c{n:03}</td>" in html for n in range(216)) and "..." not in html and "..." not in repr(table)
    assert type(table.head(3)) is pd.DataFrame  # derived frames are plain DataFrames


def test_step_runs_name_pages_a_reader_can_open(tmp_path):
    record = {"execution_id": "e1", "step": "validate", "status": "SUCCEEDED", "started_at": "t"}
    record |= {"notebook": "10_validate", "keys": {"html": "runs/e1/10_validate.html"}}
    inside = tmp_path / "runs" / "e1" / "10_validate.html"
    assert review.step_runs({"validate": record}, {"validate": inside}, root=tmp_path)["html"][0] == str(
        Path("runs/e1/10_validate.html")
    )
    elsewhere = review.step_runs(
        {"validate": record}, {"validate": "/tmp/x/10_validate.html"}, bucket="b", root=tmp_path
    )
    assert elsewhere["html"][0] == "s3://b/runs/e1/10_validate.html"
    assert review.step_runs({"validate": record})["html"][0] == "runs/e1/10_validate.html"
