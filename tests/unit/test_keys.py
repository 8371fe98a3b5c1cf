"""Keys under input/: the accepted shapes, the destinations at S3's 1,024-byte limit, CopySource, metadata."""

from __future__ import annotations

import base64
import string
from urllib.parse import unquote

import pytest

from pipeline_tasks.keys import (
    MAX_KEY_BYTES,
    MAX_METADATA_BYTES,
    copy_source,
    destination_key,
    key_problem,
    metadata_text,
    source_metadata,
)

ODD_KEYS = [
    "input/orders 2025-03.csv",
    "input/orders+plus.csv",
    "input/orders%41percent.csv",
    "input/orders#hash.csv",
    "input/orders?query.csv",
    "input/commandes_été.csv",
    "input/orders_日本.csv",
    "input/2025/03/orders.csv",
    "input/orders&amp;=;:,@$!'()*.csv",
    "input/orders~tilde.csv",
]


@pytest.mark.parametrize("key", ODD_KEYS)
def test_any_utf8_key_below_input_is_accepted(key):
    assert key_problem(key, "input/") is None


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("archive/orders.csv", "not under input/"),
        ("input/", "no file name"),
        ("input/2025/", "a folder marker"),
        ("input/2025//orders.csv", "an empty path segment"),
        ("input/./orders.csv", "a '.' path segment"),
        ("input/../orders.csv", "a '..' path segment"),
        ("input/orders\n.csv", "control character U+000A"),
        ("input/orders\x7f.csv", "control character U+007F"),
        ("input/orders\u200b.csv", "invisible character U+200B ZERO WIDTH SPACE"),
        ("input/\ufefforders.csv", "invisible character U+FEFF"),
        ("input/orders\u202e.csv", "invisible character U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("input/ orders.csv", "the file name starts with whitespace (U+0020 SPACE)"),
        ("input/orders.csv ", "the file name ends with whitespace (U+0020 SPACE)"),
        ("input/orders.csv\u3000", "ends with whitespace (U+3000 IDEOGRAPHIC SPACE)"),
    ],
)
def test_a_key_of_a_refused_shape_has_a_reason(key, reason):
    problem = key_problem(key, "input/")
    assert problem is not None and reason in problem


def test_a_destination_keeps_the_path_below_the_prefix():
    assert destination_key("input/2025/03/orders 1.csv", "input/", "archive/") == "archive/2025/03/orders 1.csv"
    assert destination_key("other/x.csv", "input/", "rejected/") == "rejected/x.csv"


def test_a_distinct_destination_carries_a_hash_of_the_version_before_the_extension():
    first = destination_key("input/2025/orders.csv", "input/", "archive/", distinct="v1")
    second = destination_key("input/2025/orders.csv", "input/", "archive/", distinct="v2")
    assert first.startswith("archive/2025/orders~v") and first.endswith(".csv") and first != second
    assert destination_key("input/README", "input/", "archive/", distinct="v1").startswith("archive/README~v")


@pytest.mark.parametrize("letter", ["a", "é", "日"])
@pytest.mark.parametrize("to_prefix", ["rejected/", "archive/"])
def test_a_destination_past_the_limit_is_shortened_readably_with_a_hash_and_its_extension(letter, to_prefix):
    room = MAX_KEY_BYTES - len("input/") - len("orders_.csv")
    name = "orders_" + letter * (room // len(letter.encode())) + ".csv"
    key = "input/" + name
    assert len(key.encode()) <= MAX_KEY_BYTES and len(key.encode()) > MAX_KEY_BYTES - 3
    shortened = destination_key(key, "input/", to_prefix)
    assert len(shortened.encode()) <= MAX_KEY_BYTES
    assert shortened.startswith(to_prefix + "orders_" + letter * 10) and shortened.endswith(".csv")
    other = destination_key(key[:-5] + "x.csv", "input/", to_prefix)
    assert other != shortened  # the hash tells apart keys of one start
    distinct = destination_key(key, "input/", to_prefix, distinct="v2")
    assert len(distinct.encode()) <= MAX_KEY_BYTES and distinct != shortened


def _aws_uri_encode(text: str) -> str:
    """AWS's rule for URI-encoding (SigV4 "UriEncode"): every byte but A-Z a-z 0-9 - . _ ~ as %XY, hex upper case."""
    unreserved = set(string.ascii_letters + string.digits + "-._~")
    return "".join(chr(b) if chr(b) in unreserved else f"%{b:02X}" for b in text.encode())


@pytest.mark.parametrize("key", ODD_KEYS)
def test_copy_source_is_bucket_slash_key_uri_encoded_with_the_slashes_kept(key):
    expected = "/".join(_aws_uri_encode(part) for part in f"my-bucket/{key}".split("/"))
    assert copy_source("my-bucket", key) == expected
    assert copy_source("my-bucket", key, "3HL4kqt.Jlc_pXro") == expected + "?versionId=3HL4kqt.Jlc_pXro"
    assert " " not in expected and "#" not in expected and "+" not in expected.split("/", 1)[1]


@pytest.mark.parametrize("key", [*ODD_KEYS, "input/" + "日" * 338 + ".csv"])
def test_the_original_key_travels_in_ascii_metadata_within_2_kb(key):
    metadata = source_metadata(key, "v" * 32) | {"rejection-reason": metadata_text("é" * 5000)}
    assert all(value.isascii() for value in metadata.values())
    assert sum(len(k) + len(v) for k, v in metadata.items()) <= MAX_METADATA_BYTES
    if "source-key" in metadata:
        assert unquote(metadata["source-key"]) == key
    else:
        assert base64.b64decode(metadata["source-key-base64"]).decode() == key
    assert metadata["source-version-id"] == "v" * 32
