"""Incremental == full recompute == reference, over seeded random batch sequences.

Batches insert, update, move orders across days and months, recategorise and
exclude products, repeat keys inside files and batches, and re-send old files.
After every batch the tables equal the reference; at the end a full recompute
finds nothing to change.
"""

from __future__ import annotations

import random

import pytest

from tests.builders import csv_bytes, item, order, product
from tests.reference import Reference

pytestmark = [pytest.mark.spark, pytest.mark.aws, pytest.mark.slow]

CATEGORIES = ["Tops", "Jeans", "Socks", "Outerwear", None]
STATUSES = ["Complete", "Returned", "shipped", "RETURNED", "Processing", "Cancelled"]


def _timestamp(rng: random.Random) -> str:
    day = rng.randint(1, 6)
    month = rng.choice([1, 2])
    form = rng.randrange(4)
    hour = rng.randint(0, 23)
    if form == 0:
        return f"2024-{month:02d}-{day:02d} {hour:02d}:15:00"
    if form == 1:
        return f"2024-{month:02d}-{day:02d}T{hour:02d}:15:00Z"
    if form == 2:
        return f"2024-{month:02d}-{day:02d} {hour:02d}:15:00.000000 UTC"
    return f"2024-{month:02d}-{day:02d}T{hour:02d}:15:00{rng.choice(['+05:00', '-07:00'])}"


def _price(rng: random.Random) -> str:
    return rng.choice(["0", "-1", "", f"{rng.randint(1, 20000) / 1000:.3f}", f"{rng.random() * 50:.16f}", "19.995"])


def _batch(rng: random.Random, number: int, history: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    files = []
    if rng.random() < 0.6:
        products = [
            product(pid, rng.choice(CATEGORIES), cost=rng.choice(["5", "0", "", "2.5"]), retail="10")
            for pid in rng.sample(range(1, 15), rng.randint(1, 8))
        ]
        files.append((f"products_{number}.csv", csv_bytes("products", products)))
    orders = [
        order(
            oid,
            _timestamp(rng),
            user=rng.randint(1, 6),
            status=rng.choice(STATUSES),
            items=rng.choice([1, 2, 0, None]) if rng.random() < 0.2 else 1,
        )
        for oid in (rng.randint(1, 40) for _ in range(rng.randint(3, 15)))
    ]
    files.append((f"orders_{number}.csv", csv_bytes("orders", orders)))
    items = [
        item(
            iid,
            rng.randint(1, 45),
            pid=rng.choice([*range(1, 16), None]),
            price=_price(rng),
            status=rng.choice(STATUSES),
        )
        for iid in (rng.randint(1, 80) for _ in range(rng.randint(5, 25)))
    ]
    files.append((f"order_items_{number}.csv", csv_bytes("order_items", items)))
    if history and rng.random() < 0.3:
        name, data = rng.choice(history)  # an old file arrives again
        files.append((f"{name[:-4]}_again{number}.csv", data))
    rng.shuffle(files)
    return files


@pytest.mark.parametrize("seed", [7, 2024])
def test_incremental_equals_full_and_reference(pipeline, seed):
    rng = random.Random(seed)
    ref = Reference()
    history: list[tuple[str, bytes]] = []
    for number in range(1, 6):
        batch = _batch(rng, number, history)
        pipeline.run_batch(batch)
        for name, data in batch:
            ref.load(name, data)
        history += batch
        expected_orders, expected_categories = ref.kpis()
        assert pipeline.order_kpis() == expected_orders, f"batch {number}"
        assert pipeline.category_kpis() == expected_categories, f"batch {number}"
    report = pipeline.full_recompute()
    assert all(t.put == 0 and t.deleted == 0 for t in report.tables.values()), report.tables
