"""The KPI tables in DynamoDB: what ``contract.ORDER_KPIS`` and ``CATEGORY_KPIS`` declare, named by Settings."""

from __future__ import annotations

from pipeline_tasks.contract import CATEGORY_KPIS, ORDER_KPIS, KpiOutput
from pipeline_tasks.io.dynamodb import TableSpec
from pipeline_tasks.settings import Settings


def spec(output: KpiOutput, name: str, index: str | None) -> TableSpec:
    return TableSpec(name, output.key, output.columns, inverted_index=index if output.by_date_index else None)


def order_kpis_spec(settings: Settings) -> TableSpec:
    return spec(ORDER_KPIS, settings.order_kpis_table, None)


def category_kpis_spec(settings: Settings) -> TableSpec:
    return spec(CATEGORY_KPIS, settings.category_kpis_table, settings.category_by_date_index)
