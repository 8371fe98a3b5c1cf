"""The KPI outputs are declared once (contract.ORDER_KPIS, CATEGORY_KPIS); everyone reads them there."""

from __future__ import annotations

import subprocess
import sys

from pipeline_tasks import contract
from pipeline_tasks.contract import CATEGORY_KPIS, ORDER_KPIS, Measure
from pipeline_tasks.io.kpi_tables import category_kpis_spec, order_kpis_spec
from pipeline_tasks.settings import Settings


def test_the_dashboard_reads_the_kpis_without_importing_spark():
    """An analyst's kernel loads explore.py; Spark (and its JVM) belongs to the transform only."""
    code = (
        "import sys, pipeline_tasks.explore, pipeline_tasks.review, pipeline_tasks.io.kpi_tables\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'delta')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_table_specs_are_the_declared_outputs():
    settings = Settings(order_kpis_table="O", category_kpis_table="C", category_by_date_index="I")
    order, category = order_kpis_spec(settings), category_kpis_spec(settings)
    assert (order.name, order.key, order.values, order.inverted_index) == (
        "O",
        ("order_date",),
        ORDER_KPIS.columns,
        None,
    )
    assert (category.name, category.key, category.values) == ("C", ("category", "order_date"), CATEGORY_KPIS.columns)
    assert category.inverted_index == "I"


def test_every_kpi_attribute_has_one_measure():
    names = [name for output in contract.KPI_OUTPUTS for name in output.columns]
    assert len(names) == len(set(names))
    assert [n for n in names if contract.measure_of(n) is Measure.COUNT] == [
        "total_orders",
        "total_items_sold",
        "unique_customers",
    ]
    assert contract.measure_of("order_date") is None and contract.measure_of("execution_id") is None
    assert ORDER_KPIS.header[0] == "order_date" and CATEGORY_KPIS.header[:2] == ("category", "order_date")
