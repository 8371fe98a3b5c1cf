"""S3 access: object sources (S3 and local), listings, versions, moves and JSON documents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import ClientError


@dataclass
class S3Source:
    """An S3 object as a validation/staging source: one version of it when ``version_id`` is given."""

    s3: Any
    bucket: str
    key: str
    version_id: str | None = None

    def _address(self) -> dict[str, str]:
        address = {"Bucket": self.bucket, "Key": self.key}
        if self.version_id is not None:
            address["VersionId"] = self.version_id
        return address

    def read_prefix(self, size: int) -> tuple[bytes, bool]:
        head = self.s3.head_object(**self._address())
        total = head["ContentLength"]
        if total == 0:
            return b"", True
        body = self.s3.get_object(**self._address(), Range=f"bytes=0-{size - 1}")["Body"]
        data = body.read()
        return data, len(data) >= total

    def open(self) -> BinaryIO:
        body = self.s3.get_object(**self._address())["Body"]
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


#: HeadObject's answers for a key or version that is not there: 404 (no such key or
#: version; a missing key answers 403 instead when the caller may not s3:ListBucket)
#: and 405 (the version is a delete marker).
_ABSENT = {"404", "NoSuchKey", "NotFound", "NoSuchVersion", "405", "MethodNotAllowed"}


def is_absent(error: ClientError) -> bool:
    """Whether an S3 error says the key or version is not there (never a 403: see ``_ABSENT``)."""
    return str(error.response.get("Error", {}).get("Code")) in _ABSENT


def head_version(s3: Any, bucket: str, key: str, version_id: str | None = None) -> dict[str, Any] | None:
    """HeadObject of a version (the current one when ``version_id`` is None); None when it is not there.

    A 403 is raised, not read as "not there": it also answers a caller that lacks
    s3:GetObjectVersion or a key's KMS grant, and a file taken for absent would be dropped.
    """
    address = {"Bucket": bucket, "Key": key} | ({"VersionId": version_id} if version_id is not None else {})
    try:
        return dict(s3.head_object(**address))
    except ClientError as error:
        if is_absent(error):
            return None
        raise


def older_versions(s3: Any, bucket: str, key: str, version_id: str) -> list[str] | None:
    """The versions of ``key`` older than ``version_id``, oldest first; None when that version is gone.

    Delete markers are not versions of the content and are left alone.
    """
    newest_first: list[str] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
        newest_first += [v["VersionId"] for v in page.get("Versions", []) if v["Key"] == key]
    if version_id not in newest_first:
        return None
    return list(reversed(newest_first[newest_first.index(version_id) + 1 :]))


def copy_version(s3: Any, bucket: str, key: str, version_id: str | None, to_key: str, metadata: dict[str, str]) -> bool:
    """Copy one version of ``key`` to ``to_key`` with ``metadata`` (ASCII) as its user metadata.

    Returns:
        False when the version is gone (already moved); the copy is not made.
    """
    source = {"Bucket": bucket, "Key": key} | ({"VersionId": version_id} if version_id is not None else {})
    try:
        s3.copy_object(Bucket=bucket, Key=to_key, CopySource=source, Metadata=metadata, MetadataDirective="REPLACE")
    except ClientError as error:
        if is_absent(error):
            return False
        raise
    return True


def delete_versions(s3: Any, bucket: str, key: str, version_ids: list[str | None]) -> None:
    """Delete exactly these versions of ``key``, in order (None: the key as a plain delete)."""
    for version_id in version_ids:
        extra = {"VersionId": version_id} if version_id is not None else {}
        s3.delete_object(Bucket=bucket, Key=key, **extra)


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
