"""S3 access: clients, object sources, moves, JSON documents."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from botocore.config import Config

from pipeline_tasks.settings import Settings

_RETRIES = Config(retries={"max_attempts": 8, "mode": "adaptive"})


def client(settings: Settings, service: str) -> Any:
    """A boto3 client for ``service`` configured from Settings (endpoint, region, keys)."""
    return boto3.client(service, **_connection(settings))


def resource(settings: Settings, service: str) -> Any:
    """A boto3 resource for ``service``, configured as ``client`` configures clients."""
    return boto3.resource(service, **_connection(settings))


def _connection(settings: Settings) -> dict[str, Any]:
    return {
        "region_name": settings.region,
        "endpoint_url": settings.aws_endpoint_url,
        "aws_access_key_id": settings.aws_access_key_id,
        "aws_secret_access_key": settings.aws_secret_access_key,
        "config": _RETRIES,
    }


@dataclass
class S3Source:
    """An S3 object as a validation/staging source."""

    s3: Any
    bucket: str
    key: str

    def read_prefix(self, size: int) -> tuple[bytes, bool]:
        head = self.s3.head_object(Bucket=self.bucket, Key=self.key)
        total = head["ContentLength"]
        if total == 0:
            return b"", True
        body = self.s3.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes=0-{size - 1}")["Body"]
        data = body.read()
        return data, len(data) >= total

    def open(self) -> BinaryIO:
        body = self.s3.get_object(Bucket=self.bucket, Key=self.key)["Body"]
        return body  # type: ignore[no-any-return]


@dataclass
class LocalSource:
    """A local file as a validation/staging source (tests, local tools)."""

    path: Path

    @property
    def key(self) -> str:
        return str(self.path)

    def read_prefix(self, size: int) -> tuple[bytes, bool]:
        with self.path.open("rb") as handle:
            data = handle.read(size)
        return data, len(data) == self.path.stat().st_size

    def open(self) -> BinaryIO:
        return self.path.open("rb")


def list_keys(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    """Every object key under ``prefix``, in key order."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def destination_key(key: str, from_prefix: str, to_prefix: str) -> str:
    """``input/a/b.csv`` -> ``archive/a/b.csv``; a key outside ``from_prefix`` keeps its base name."""
    relative = key[len(from_prefix) :] if key.startswith(from_prefix) else posixpath.basename(key)
    return to_prefix + relative


def move_object(s3: Any, bucket: str, key: str, to_key: str, metadata: dict[str, str] | None = None) -> None:
    """Copy then delete (S3 has no rename). A source that already moved is a no-op.

    Args:
        metadata: Replaces the object's user metadata on the copy (ASCII values).
    """
    extra: dict[str, Any] = {}
    if metadata:
        ascii_metadata = {k: v.encode("ascii", "replace").decode()[:1024] for k, v in metadata.items()}
        extra = {"Metadata": ascii_metadata, "MetadataDirective": "REPLACE"}
    try:
        s3.copy_object(Bucket=bucket, Key=to_key, CopySource={"Bucket": bucket, "Key": key}, **extra)
    except s3.exceptions.NoSuchKey:
        s3.head_object(Bucket=bucket, Key=to_key)
        return
    s3.delete_object(Bucket=bucket, Key=key)


def put_json(s3: Any, bucket: str, key: str, document: Any) -> None:
    body = json.dumps(document, indent=2, sort_keys=True, default=str).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def get_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def get_json_or_none(s3: Any, bucket: str, key: str) -> Any:
    try:
        return get_json(s3, bucket, key)
    except s3.exceptions.NoSuchKey:
        return None
