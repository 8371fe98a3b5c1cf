"""DynamoDB I/O for the KPI tables: create, read by key, write a diff.

Access patterns: OrderKPIs by ``order_date`` (GetItem/BatchGetItem);
CategoryKPIs by ``category`` and a date range (Query), or by day, every
category (Query on the table's inverted global secondary index).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.table import BatchWriter
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

log = logging.getLogger(__name__)

_BATCH_GET_LIMIT = 100
#: Batch writers sending at once: a few requests in flight hide each one's round trip
#: (811 items to the local moto server: 0.44 s with two or four writers, 0.53 s with one;
#: medians of six alternating runs).
WRITERS = 4
_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()

Key = tuple[str, ...]


@dataclass(frozen=True)
class TableSpec:
    """A KPI table: its name, key attributes and KPI attributes.

    Attributes:
        name: Table name.
        key: Hash key attribute, then the range key attribute when there is one.
        values: KPI attributes (what a write compares to decide whether an item changed).
        inverted_index: Name of a global secondary index with the key swapped (hash key the
            table's range key, range key the table's hash key, every attribute projected);
            None when the table has none. Only for tables with a range key.
    """

    name: str
    key: tuple[str, ...]
    values: tuple[str, ...]
    inverted_index: str | None = None

    def __post_init__(self) -> None:
        if self.inverted_index is not None and len(self.key) != 2:
            raise ValueError(f"{self.name}: an inverted index needs a hash and a range key, not {self.key}")

    def key_of(self, item: Mapping[str, Any]) -> Key:
        return tuple(str(item[k]) for k in self.key)

    @property
    def diffed(self) -> tuple[str, ...]:
        """The attributes a diff reads: the key, then the KPI values."""
        return (*self.key, *self.values)


_KEY_TYPES = ("HASH", "RANGE")


def _key_schema(key: Sequence[str]) -> list[dict[str, str]]:
    return [{"AttributeName": k, "KeyType": kind} for k, kind in zip(key, _KEY_TYPES, strict=False)]


def table_definition(spec: TableSpec) -> dict[str, Any]:
    """CreateTable arguments: string keys, on-demand capacity, the inverted index when declared."""
    definition: dict[str, Any] = {
        "TableName": spec.name,
        "KeySchema": _key_schema(spec.key),
        # The inverted index reuses the table's key attributes: nothing more to define.
        "AttributeDefinitions": [{"AttributeName": k, "AttributeType": "S"} for k in spec.key],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if spec.inverted_index is not None:
        definition["GlobalSecondaryIndexes"] = [
            {
                "IndexName": spec.inverted_index,
                "KeySchema": _key_schema(spec.key[::-1]),
                "Projection": {"ProjectionType": "ALL"},
            }
        ]
    return definition


def ensure_table(dynamodb: Any, spec: TableSpec) -> None:
    """Create the table when missing and wait until it is active."""
    try:
        dynamodb.create_table(**table_definition(spec))
    except dynamodb.exceptions.ResourceInUseException:
        return
    dynamodb.get_waiter("table_exists").wait(TableName=spec.name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def _deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _DESERIALIZER.deserialize(v) for k, v in item.items()}


def _serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SERIALIZER.serialize(v) for k, v in item.items()}


def _projection(attributes: Sequence[str] | None) -> dict[str, Any]:
    """Request arguments that read only ``attributes`` (every attribute when None)."""
    if attributes is None:
        return {}
    names = {f"#a{i}": name for i, name in enumerate(attributes)}
    return {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}


def scan_items(dynamodb: Any, spec: TableSpec, attributes: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every item of the table (consistent read), or only its ``attributes``. For dumps and full recomputes."""
    paginator = dynamodb.get_paginator("scan")
    for page in paginator.paginate(TableName=spec.name, ConsistentRead=True, **_projection(attributes)):
        for item in page["Items"]:
            yield _deserialize(item)


def table_identity(dynamodb: Any, spec: TableSpec) -> dict[str, str] | None:
    """What tells the table apart from an earlier table of the same name; None when there is none.

    From DescribeTable: its ``TableId`` (a UUID DynamoDB generates when it creates the
    table), or, where the service reports none (the local moto server), its ARN and
    creation time. A table restored from a backup is a new table with the old name
    (docs.aws.amazon.com/amazondynamodb/latest/developerguide/pointintimerecovery_restores.html:
    "The recovery process restores to a new DynamoDB table"), so its identity changes.
    """
    try:
        table = dynamodb.describe_table(TableName=spec.name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        return None
    if table.get("TableId"):
        return {"TableId": table["TableId"]}
    return {"TableArn": table["TableArn"], "CreationDateTime": table["CreationDateTime"].isoformat()}


def count_items(dynamodb: Any, spec: TableSpec) -> int:
    """How many items the table holds now: a consistent Scan with ``Select=COUNT``, every page.

    Not DescribeTable's ``ItemCount``: "DynamoDB updates this value approximately every six
    hours. Recent changes might not be reflected in this value." (Amazon DynamoDB API
    Reference, TableDescription; the same words in botocore's service model). A COUNT scan
    reads, and is billed for, every item (1 MB per page), but returns no item.
    """
    pages = dynamodb.get_paginator("scan").paginate(TableName=spec.name, Select="COUNT", ConsistentRead=True)
    return sum(page["Count"] for page in pages)


def get_items(
    dynamodb: Any, spec: TableSpec, keys: Iterable[Key], attributes: Sequence[str] | None = None
) -> dict[Key, dict[str, Any]]:
    """The items that exist among ``keys`` (BatchGetItem, consistent, unprocessed keys retried).

    ``attributes`` (the key attributes among them) limits what is read: a diff needs only
    the key and the KPI values, and every attribute less is less to send and to parse.
    """
    wanted = [dict(zip(spec.key, key, strict=True)) for key in dict.fromkeys(keys)]
    found: dict[Key, dict[str, Any]] = {}
    for start in range(0, len(wanted), _BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            spec.name: {
                "Keys": [_serialize(k) for k in wanted[start : start + _BATCH_GET_LIMIT]],
                "ConsistentRead": True,
                **_projection(attributes),
            }
        }
        while request:
            response = dynamodb.batch_get_item(RequestItems=request)
            for item in response["Responses"].get(spec.name, []):
                value = _deserialize(item)
                found[spec.key_of(value)] = value
            request = response.get("UnprocessedKeys") or {}
    return found


def query_range(
    dynamodb: Any,
    spec: TableSpec,
    partition_value: str,
    low: str | None,
    high: str | None,
    *,
    index: str | None = None,
) -> list[dict[str, Any]]:
    """The items of one partition whose range key lies in ``[low, high]`` (Query, every page).

    Args:
        dynamodb: A boto3 DynamoDB client.
        spec: The table; it must have a range key.
        partition_value: Value of the hash key (of the index's hash key when ``index`` is given).
        low: Smallest range key value, inclusive; None for no lower bound.
        high: Largest range key value, inclusive; None for no upper bound.
        index: Name of the table's inverted index to query instead of the table: its hash key
            is the table's range key and its range key the table's hash key.

    Returns:
        The items, deserialized, in range key order. Reads on the table are consistent;
        reads on an index are eventually consistent (DynamoDB has no other kind for a GSI).
    """
    if len(spec.key) != 2:
        raise ValueError(f"{spec.name} has no range key to query a range of")
    hash_key, range_key = spec.key if index is None else spec.key[::-1]
    names = {"#h": hash_key}
    values: dict[str, Any] = {":h": partition_value}
    if low is None and high is None:
        condition = "#h = :h"
    else:
        names["#r"] = range_key
        if low is not None and high is not None:
            condition = "#h = :h AND #r BETWEEN :low AND :high"
        elif low is not None:
            condition = "#h = :h AND #r >= :low"
        else:
            condition = "#h = :h AND #r <= :high"
        values |= {name: value for name, value in ((":low", low), (":high", high)) if value is not None}
    request: dict[str, Any] = {
        "TableName": spec.name,
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": _serialize(values),
    }
    if index is None:
        request["ConsistentRead"] = True
    else:
        request["IndexName"] = index
    paginator = dynamodb.get_paginator("query")
    return [_deserialize(item) for page in paginator.paginate(**request) for item in page["Items"]]


def diff_items(
    spec: TableSpec,
    desired: Mapping[Key, Mapping[str, Any]],
    existing: Mapping[Key, Mapping[str, Any]],
    *,
    same: Callable[[Any, Any], bool] | None = None,
) -> tuple[list[Mapping[str, Any]], list[Key], int]:
    """Items to put (new or changed KPI values), keys to delete (stale), and the unchanged count.

    ``same(existing value, desired value)`` says whether a KPI value is unchanged
    (default: numerically equal).
    """
    same = same or _same
    puts = []
    unchanged = 0
    for key, item in desired.items():
        old = existing.get(key)
        if old is not None and all(same(old.get(v), item[v]) for v in spec.values):
            unchanged += 1
        else:
            puts.append(item)
    deletes = [key for key in existing if key not in desired]
    return puts, deletes, unchanged


def describe_changes(
    spec: TableSpec,
    puts: Sequence[Mapping[str, Any]],
    deletes: Sequence[Key],
    existing: Mapping[Key, Mapping[str, Any]],
    *,
    limit: int,
) -> list[dict[str, str]]:
    """What a diff does, item by item, for reviewers: at most ``limit`` rows.

    Each row holds the key attributes, ``change`` (``new``, ``changed`` or
    ``deleted``) and, per KPI attribute, the value before and after as strings.
    """
    rows: list[dict[str, str]] = []
    changes = [(spec.key_of(item), item) for item in puts] + [(key, None) for key in deletes]
    for key, item in changes[:limit]:
        old = existing.get(key)
        row = dict(zip(spec.key, key, strict=True))
        row["change"] = "deleted" if item is None else ("new" if old is None else "changed")
        for name in spec.values:
            row[f"{name}_before"] = "" if old is None else str(old.get(name, ""))
            row[name] = "" if item is None else str(item[name])
        rows.append(row)
    return rows


def _same(old: Any, new: Any) -> bool:
    if old is None:
        return False
    return Decimal(str(old)) == Decimal(str(new))


def write_diff(
    dynamodb_resource: Any,
    spec: TableSpec,
    puts: Sequence[Mapping[str, Any]],
    deletes: Sequence[Key],
    extra: Mapping[str, Any],
) -> None:
    """Batched puts and deletes, by up to ``WRITERS`` batch writers at once.

    Each writer is boto3's ``BatchWriter`` (25 requests per BatchWriteItem; it
    resends unprocessed items) on the resource's client, which is thread-safe
    and serialises Python values as the resource does. Puts and deletes name
    distinct keys, so the writers' order does not matter.
    """
    requests = [(True, {**item, **extra}) for item in puts]
    requests += [(False, dict(zip(spec.key, key, strict=True))) for key in deletes]
    if not requests:
        return
    size = -(-len(requests) // WRITERS)
    parts = [requests[start : start + size] for start in range(0, len(requests), size)]

    def write(part: list[tuple[bool, dict[str, Any]]]) -> None:
        with BatchWriter(spec.name, dynamodb_resource.meta.client, overwrite_by_pkeys=list(spec.key)) as batch:
            for is_put, body in part:
                if is_put:
                    batch.put_item(Item=body)
                else:
                    batch.delete_item(Key=body)

    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix=f"write-{spec.name}") as pool:
        for future in [pool.submit(write, part) for part in parts]:
            future.result()
