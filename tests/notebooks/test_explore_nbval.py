"""nbval over the explore notebooks' committed outputs, on a stack seeded as ``make lab`` seeds it.

The committed outputs come from ``make notebook-outputs`` (the same seeding, default
resource names). nbval runs in its own pytest process so that its kernels inherit the
stack's settings from the environment, as JupyterLab's kernels do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline_tasks.io import aws
from pipeline_tasks.local import lab
from pipeline_tasks.settings import Settings

pytestmark = [pytest.mark.aws, pytest.mark.spark, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
EXPLORE = [REPO / "notebooks" / "explore" / name for name in lab.EXPLORE_NOTEBOOKS]
SANITIZE = REPO / "tests" / "notebooks" / "nbval_sanitize.cfg"


def nbval(settings: Settings, *paths: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval"]
    command += [*map(str, paths), "--nbval-sanitize-with", str(SANITIZE), "--nbval-cell-timeout", "300"]
    env = dict(os.environ, **settings.to_env())
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def test_the_explore_notebooks_match_their_committed_outputs(seeded):
    result = nbval(seeded, *EXPLORE)
    assert result.returncode == 0, result.stdout[-4000:]


def test_a_changed_kpi_makes_nbval_fail(seeded):
    table = aws.client(seeded, "dynamodb")
    key = {"order_date": {"S": "2025-03-08"}}
    before = table.get_item(TableName=seeded.order_kpis_table, Key=key, ConsistentRead=True)["Item"]
    revenue = Decimal(before["total_revenue"]["N"])
    changed = str(revenue + Decimal("1.00"))
    table.update_item(
        TableName=seeded.order_kpis_table,
        Key=key,
        UpdateExpression="SET total_revenue = :r",
        ExpressionAttributeValues={":r": {"N": changed}},
    )
    try:
        result = nbval(seeded, EXPLORE[0])
    finally:
        table.put_item(TableName=seeded.order_kpis_table, Item=before)
    assert result.returncode != 0
    assert "kpi_dashboard.ipynb" in result.stdout and f"{revenue + 1:.2f}" in result.stdout
