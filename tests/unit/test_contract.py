import pytest

from pipeline_tasks.contract import DATASETS, ORDER_ITEMS, ORDERS, PRODUCTS, classify


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("input/products.csv", PRODUCTS),
        ("input/products_part1.csv", PRODUCTS),
        ("input/PRODUCTS.CSV", PRODUCTS),
        ("input/orders.csv", ORDERS),
        ("input/Orders_2024-01.csv", ORDERS),
        ("input/order_items.csv", ORDER_ITEMS),
        ("input/sub/folder/order_items_part10.csv", ORDER_ITEMS),
        ("order_items_part1.CSV", ORDER_ITEMS),
        ("input/customers.csv", None),
        ("input/orders.csv.gz", None),
        ("input/orders.txt", None),
        ("input/my_orders.csv", None),
        ("input/products/readme.csv", None),
        ("input/orderitems.csv", None),
    ],
)
def test_classify_by_base_name_case_insensitively(key, expected):
    assert classify(key) is expected


def test_every_dataset_has_its_key_among_required_columns():
    for dataset in DATASETS:
        assert dataset.key in dataset.required_columns
        assert len(set(dataset.required_columns)) == len(dataset.required_columns)


def test_partitioning_follows_the_contract():
    assert PRODUCTS.partition_by == ("department",)
    assert ORDERS.partition_by == ("year", "month")
    assert ORDER_ITEMS.partition_by == ("year", "month")
