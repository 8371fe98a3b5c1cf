"""Staging streams a batch in chunks: tiny chunks stage what one merge of the batch stages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline_tasks import csv_reader
from pipeline_tasks.io import aws, delta
from pipeline_tasks.steps import stage
from tests.builders import csv_bytes, item, order
from tests.reference import KEYS, REQUIRED, Reference

pytestmark = [pytest.mark.aws]

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
T1, T2 = T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)
ORDERS_HEADER = ",".join(REQUIRED["orders"])

EARLIER = [("orders_0.csv", csv_bytes("orders", [order(n, f"2024-03-0{n} 10:00:00") for n in range(1, 7)]), T0)]
# Arrival order. Keys repeat within files, across files and across the earlier batch; the last
# file arrives last but was created before the others of its batch, so its rows lose to newer ones.
BATCH = [
    (
        "orders_a.csv",
        "\n".join(
            [
                ORDERS_HEADER,
                "7,1,Complete,2024-04-01 10:00:00,,,,1",
                "1,1,Returned,2024-03-01 10:00:00,,,,1",  # updates the earlier batch's order 1
                "2,1,Complete,2024-03-02 10:00:00,,,,1",  # as staged: only its event time moves
                ",1,Complete,2024-04-01 10:00:00,,,,1",  # missing key
                "8,2,Complete,2024-04-02 10:00:00,,,,2",
                "9,1,Complete,2024-04-03 10:00:00,,,",  # one field short
                "9,1,Complete,2024-04-03 10:00:00,,,,1",
                "7,3,Shipped,2024-04-01 10:00:00,,,,1",  # order 7 again, in a later chunk of the file
            ]
        ).encode()
        + b"\n",
        T1,
    ),
    (
        "orders_b.csv",
        csv_bytes(
            "orders",
            [
                order(7, "2024-04-01 10:00:00", user=4),
                order(3, "2024-05-03 10:00:00"),  # moves to May
                order(10, "2024-05-10 10:00:00", user=5),
                order(8, "2024-04-02 10:00:00", user=2, items=2),  # same values as in orders_a
                order(11, "2024-05-11 10:00:00"),
            ],
        ),
        T2,
    ),
    (
        "orders_c.csv",
        csv_bytes(
            "orders",
            [
                order(10, "2024-06-10 10:00:00", user=6),  # older than orders_b's: loses
                order(12, "2024-06-12 10:00:00"),
                order(1, "2024-06-01 10:00:00"),  # older than orders_a's: loses
                order(4, "2024-06-04 10:00:00"),  # newer than the earlier batch's: wins
            ],
        ),
        T1 - timedelta(minutes=5),
    ),
    (
        "order_items_a.csv",
        csv_bytes(
            "order_items",
            [
                item(1, 1, price="1.00"),
                item(2, 1, price="5e18"),  # breaks the row rule: quarantined
                item(3, 7, price="3.00"),
                item(1, 1, price="1.50"),
                item(4, 8, price="4.00"),
                item(5, 9, price="5.00"),
            ],
        ),
        T1,
    ),
    (
        "order_items_b.csv",
        csv_bytes(
            "order_items",
            [item(3, 7, price="30.00"), item(6, 10, price="6.00"), item(1, 1, price="1.50"), item(7, 11)],
        ),
        T2,
    ),
]


def _put(settings, files):
    s3 = aws.client(settings, "s3")
    entries = []
    for name, data, when in files:
        key = settings.input_prefix + name
        s3.put_object(Bucket=settings.bucket, Key=key, Body=data)
        entries.append({"key": key, "event_time": when.isoformat()})
    return entries


def _staged(settings, dataset):
    table = delta.open_table(settings.table_uri(dataset), delta.storage_options(settings))
    rows = table.to_pyarrow_table().to_pylist()
    return {row[KEYS[dataset]]: row for row in rows}


def test_tiny_chunks_stage_what_one_merge_stages(settings, monkeypatch):
    # Several reader batches per file, a merge every two rows, quarantine written row by row.
    monkeypatch.setattr(csv_reader, "BLOCK_SIZE", 160)
    monkeypatch.setattr(stage, "QUARANTINE_FLUSH_ROWS", 1)
    one = settings.with_overrides(lake_root=f"s3://{settings.bucket}/staging-one-merge")
    earlier, batch = _put(settings, EARLIER), _put(settings, BATCH)
    reports = {}
    for label, target, chunk_rows in (("tiny", settings, 2), ("one", one, 10**9)):
        stage.run(target, "earlier", earlier, chunk_rows=chunk_rows)
        reports[label] = stage.run(target, "batch", batch, chunk_rows=chunk_rows)

    tiny, whole = reports["tiny"], reports["one"]
    assert [f.to_json() for f in tiny.files] == [f.to_json() for f in whole.files]
    assert tiny.tables["orders"].chunks >= 4 and whole.tables["orders"].chunks == 1
    assert tiny.files[0].to_json() == {
        "key": "input/orders_a.csv",
        "dataset": "orders",
        "rows_read": 8,
        "rows_not_staged": {"wrong_field_count": 1, "missing_key": 1},
        "rows_quarantined": 2,
        "rows_staged": 6,
        "rows_excluded_by_cleaning": {},
        "rows_kept": 6,
    }
    assert tiny.quarantine.rows == whole.quarantine.rows == 3
    # orders_c's orders 1 and 10 lose to newer rows: staged by an earlier chunk, or within the one merge.
    assert (tiny.tables["orders"].older, whole.tables["orders"].older) == (2, 0)

    quarantined = [
        delta.read_quarantine(target.table_uri(delta.QUARANTINE_TABLE), delta.storage_options(target)).to_pylist()
        for target in (settings, one)
    ]
    assert quarantined[0] == quarantined[1]
    assert [(q["source_key"], q["line"], q["reason"]) for q in quarantined[0]] == [
        ("input/order_items_a.csv", 3, "sale_price_out_of_range"),
        ("input/orders_a.csv", 5, "missing_key"),
        ("input/orders_a.csv", 7, "wrong_field_count"),
    ]

    ref = Reference()
    for name, data, when in EARLIER + BATCH:
        ref.load(name, data, event_time=when)
    for dataset in ("orders", "order_items"):
        staged, merged_once = _staged(settings, dataset), _staged(one, dataset)
        assert staged == merged_once  # lineage and event times included
        assert {key: {c: row[c] for c in REQUIRED[dataset]} for key, row in staged.items()} == ref.tables[dataset]
    assert staged[1]["sale_price"] == 1.5 and staged[3]["_source_key"] == "input/order_items_b.csv"
