"""The data contract of docs/contract.md as code: datasets, keys, columns, types and row rules.

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
#: When the file a row came from was created (its S3 event time): a merge replaces a staged
#: row only with a row at least as new, so a rerun of an older batch never undoes a newer one.
EVENT_TIME_COLUMN = "_event_time"
LINEAGE_COLUMNS = (SOURCE_KEY_COLUMN, EXECUTION_ID_COLUMN, EVENT_TIME_COLUMN)

#: Exact parts of ``sale_price`` the staging step derives (not part of the contract): the
#: whole part, then the first and the last nine of its 18 decimals, each with the value's
#: sign, so that sale_price = units + nanos * 10**-9 + attos * 10**-18. Spark sums these
#: as 64-bit integers instead of ``decimal(38, 18)`` objects (see ``money``).
SALE_PRICE_PARTS = ("_sale_price_units", "_sale_price_nanos", "_sale_price_attos")
#: Values at or above this magnitude get null parts (their whole part would not fit).
SALE_PRICE_PARTS_LIMIT = 10**18

UNKNOWN = "Unknown"
RETURNED = "returned"


# --- The KPI outputs (docs/contract.md §5) ------------------------------------------


class Measure(StrEnum):
    """What a KPI attribute holds: a count (an integer), money (rounded to the cent), or a rate (a share)."""

    COUNT = "count"
    MONEY = "money"
    RATE = "rate"


@dataclass(frozen=True)
class KpiOutput:
    """One KPI table: its key attributes (partition key, then sort key) and its KPI attributes, in order.

    Attributes:
        key: The item key.
        attributes: Each KPI attribute with its measure, in the order tables and reports show them.
        by_date_index: Whether the table has an index with its key swapped (all categories of one day).
    """

    key: tuple[str, ...]
    attributes: tuple[tuple[str, Measure], ...]
    by_date_index: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        """The KPI attributes' names, in order."""
        return tuple(name for name, _ in self.attributes)

    @property
    def header(self) -> tuple[str, ...]:
        """Key attributes, then KPI attributes: a row of the table."""
        return (*self.key, *self.columns)


#: OrderKPIs: one item per day.
ORDER_KPIS = KpiOutput(
    key=("order_date",),
    attributes=(
        ("total_orders", Measure.COUNT),
        ("total_revenue", Measure.MONEY),
        ("total_items_sold", Measure.COUNT),
        ("unique_customers", Measure.COUNT),
        ("return_rate", Measure.RATE),
    ),
)
#: CategoryKPIs: one item per category and day, with the day's index.
CATEGORY_KPIS = KpiOutput(
    key=("category", "order_date"),
    attributes=(
        ("daily_revenue", Measure.MONEY),
        ("avg_order_value", Measure.MONEY),
        ("avg_return_rate", Measure.RATE),
    ),
    by_date_index=True,
)
KPI_OUTPUTS = (ORDER_KPIS, CATEGORY_KPIS)


def measure_of(attribute: str) -> Measure | None:
    """The measure of a KPI attribute of any KPI table; None for anything else (a key, ``execution_id``)."""
    for output in KPI_OUTPUTS:
        for name, measure in output.attributes:
            if name == attribute:
                return measure
    return None


def is_decimal(attribute: str) -> bool:
    """Whether a KPI attribute holds a decimal (money or a rate, docs/contract.md §5), not a count or a key."""
    return measure_of(attribute) in (Measure.MONEY, Measure.RATE)


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


#: Limits of the KPI stores that a staged value must respect (docs/contract.md, "Row rules").
#: The category is CategoryKPIs' partition key (DynamoDB: at most 2,048 bytes) and the sort key
#: of its ``order_date`` index (at most 1,024 bytes): a longer one fails the item's write.
CATEGORY_MAX_BYTES = 1024
#: A product's department names its Delta partition folder (``department=<percent-encoded>``):
#: 80 UTF-8 bytes stay under 255 characters, a file system's name limit, however encoded.
DEPARTMENT_MAX_BYTES = 80


class Limit(StrEnum):
    """What a row rule measures."""

    BYTES = "bytes"  # the trimmed text's UTF-8 length must not exceed the limit
    MAGNITUDE = "magnitude"  # the number's absolute value must stay below the limit


@dataclass(frozen=True)
class RowRule:
    """A value the pipeline cannot carry to the KPIs: the row is quarantined at staging.

    The row is not staged; it is counted in the file's funnel under ``name`` and written,
    with its file, line and value, to the quarantine table. When more than ``max_share``
    of a file's rows break the rule (a systematic fault, not a stray row), validation
    rejects the whole file instead (``Settings.row_rule_max_share`` overrides the share).

    Attributes:
        name: Reason recorded in the funnel and the quarantine table.
        column: The column the rule looks at.
        measure: What is compared with ``limit``.
        limit: The bound (bytes, or a magnitude).
        max_share: Default share of a file's rows above which the file is rejected.
        why: What the limit protects, for people (docs, audit notebooks).
    """

    name: str
    column: str
    measure: Limit
    limit: int
    max_share: float
    why: str


#: The row rules per dataset (a row is counted under the first rule it breaks).
ROW_RULES: dict[str, tuple[RowRule, ...]] = {
    "products": (
        RowRule(
            "category_too_long",
            "category",
            Limit.BYTES,
            CATEGORY_MAX_BYTES,
            0.5,
            "the category is a key of CategoryKPIs and the sort key of its order_date index (1,024 bytes)",
        ),
        RowRule(
            "department_too_long",
            "department",
            Limit.BYTES,
            DEPARTMENT_MAX_BYTES,
            0.5,
            "the department names the products table's partition folder",
        ),
    ),
    "orders": (),
    "order_items": (
        RowRule(
            "sale_price_out_of_range",
            "sale_price",
            Limit.MAGNITUDE,
            SALE_PRICE_PARTS_LIMIT,
            0.5,
            "revenue is summed exactly as 64-bit parts of prices below 10^18",
        ),
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
