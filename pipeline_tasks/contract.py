"""The data contract of ``KPI_SPEC.md`` as code: datasets, keys, columns and types.

Everything else reads the contract from here; nothing here does I/O.
"""

from __future__ import annotations

import fnmatch
import posixpath
from dataclasses import dataclass
from enum import StrEnum

#: Decimal type of money columns: 38 digits with 18 after the point holds every
#: float-formatted price of TheLook exactly (``0.0199999995529651``).
MONEY_PRECISION = 38
MONEY_SCALE = 18


class ColumnType(StrEnum):
    """Logical type of a staged column (§3 of the contract)."""

    STRING = "string"
    INT64 = "int64"
    DECIMAL = "decimal"
    TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class Dataset:
    """One dataset of the contract.

    Attributes:
        name: Dataset and Delta table name (``orders``).
        pattern: Lower-case glob on the object key's base name.
        key: Primary key column.
        columns: Required columns in contract order, with their types.
        partition_by: Partition columns of the staged Delta table.
    """

    name: str
    pattern: str
    key: str
    columns: tuple[tuple[str, ColumnType], ...]
    partition_by: tuple[str, ...]

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def columns_of_type(self, column_type: ColumnType) -> tuple[str, ...]:
        return tuple(name for name, kind in self.columns if kind is column_type)


_S, _I, _D, _T = ColumnType.STRING, ColumnType.INT64, ColumnType.DECIMAL, ColumnType.TIMESTAMP

PRODUCTS = Dataset(
    name="products",
    pattern="products*.csv",
    key="id",
    columns=(
        ("id", _I),
        ("sku", _S),
        ("cost", _D),
        ("category", _S),
        ("name", _S),
        ("brand", _S),
        ("retail_price", _D),
        ("department", _S),
    ),
    partition_by=("department",),
)

ORDERS = Dataset(
    name="orders",
    pattern="orders*.csv",
    key="order_id",
    columns=(
        ("order_id", _I),
        ("user_id", _I),
        ("status", _S),
        ("created_at", _T),
        ("returned_at", _T),
        ("shipped_at", _T),
        ("delivered_at", _T),
        ("num_of_item", _I),
    ),
    partition_by=("year", "month"),
)

ORDER_ITEMS = Dataset(
    name="order_items",
    pattern="order_items*.csv",
    key="id",
    columns=(
        ("id", _I),
        ("order_id", _I),
        ("user_id", _I),
        ("product_id", _I),
        ("status", _S),
        ("created_at", _T),
        ("shipped_at", _T),
        ("delivered_at", _T),
        ("returned_at", _T),
        ("sale_price", _D),
    ),
    partition_by=("year", "month"),
)

DATASETS: tuple[Dataset, ...] = (PRODUCTS, ORDERS, ORDER_ITEMS)
DATASETS_BY_NAME: dict[str, Dataset] = {d.name: d for d in DATASETS}

#: Lineage columns the staging step adds to every row (not part of the contract).
SOURCE_KEY_COLUMN = "_source_key"
EXECUTION_ID_COLUMN = "_execution_id"
LINEAGE_COLUMNS = (SOURCE_KEY_COLUMN, EXECUTION_ID_COLUMN)

#: Exact parts of ``sale_price`` the staging step derives (not part of the contract): the
#: whole part, then the first and the last nine of its 18 decimals, each with the value's
#: sign, so that sale_price = units + nanos * 10**-9 + attos * 10**-18. Spark sums these
#: as 64-bit integers instead of ``decimal(38, 18)`` objects (see ``transforms.kpis``).
SALE_PRICE_PARTS = ("_sale_price_units", "_sale_price_nanos", "_sale_price_attos")
#: Values at or above this magnitude get null parts (their whole part would not fit).
SALE_PRICE_PARTS_LIMIT = 10**18

UNKNOWN = "Unknown"
RETURNED = "returned"


@dataclass(frozen=True)
class CleaningRule:
    """A row-exclusion rule of §4: the row is kept only when ``column`` is present
    (and, when ``positive``, greater than zero).

    Attributes:
        name: Reason recorded in the data-quality funnel when the rule excludes a row.
        column: The column the rule looks at.
        positive: Whether the value must also be greater than zero.
    """

    name: str
    column: str
    positive: bool


#: §4: the rows cleaning excludes, per dataset, in the order the funnel reports them
#: (a row is counted under the first rule it breaks).
CLEANING_RULES: dict[str, tuple[CleaningRule, ...]] = {
    "products": (
        CleaningRule("cost_missing_or_not_positive", "cost", positive=True),
        CleaningRule("retail_price_missing_or_not_positive", "retail_price", positive=True),
    ),
    "orders": (
        CleaningRule("created_at_missing", "created_at", positive=False),
        CleaningRule("num_of_item_missing_or_not_positive", "num_of_item", positive=True),
    ),
    "order_items": (
        CleaningRule("product_id_missing", "product_id", positive=False),
        CleaningRule("sale_price_missing_or_not_positive", "sale_price", positive=True),
    ),
}


def classify(key: str) -> Dataset | None:
    """Return the dataset of an object key by its base name, or None when unknown.

    >>> classify("input/Orders_2024.CSV").name
    'orders'
    """
    base = posixpath.basename(key).lower()
    for dataset in DATASETS:
        if fnmatch.fnmatchcase(base, dataset.pattern):
            return dataset
    return None


def normalise_header_name(name: str) -> str:
    """Header names are compared after trimming whitespace and lower-casing (§2)."""
    return name.strip().lower()
