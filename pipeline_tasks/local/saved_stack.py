"""The lab's saved seeded stack: every S3 object and KPI item of a seeded local stack, on disk.

Saved under ``.lab-cache/seeded-{fingerprint}/`` (beside the notebooks folder) once the lab
has seeded a stack; the fingerprint covers the sample files, the pipeline notebooks and the
package's code, so any change to them seeds anew. A later start restores the saved state into
its fresh moto server instead of running the samples through the pipeline again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pipeline_tasks
from pipeline_tasks.errors import PipelineError
from pipeline_tasks.io import aws
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.settings import Settings

#: Where seeded stacks are saved (beside the notebooks folder); one folder per fingerprint.
CACHE_DIR = ".lab-cache"
#: Bumped when the saved stack's layout changes (older saves are then seeded anew).
SNAPSHOT_FORMAT = 2


def _files(folder: Path, pattern: str) -> Iterator[Path]:
    return (path for path in sorted(folder.rglob(pattern)) if path.is_file())


def seed_fingerprint(settings: Settings, batch_dirs: Sequence[Path]) -> str:
    """What the seeded stack depends on: the sample files, the pipeline notebooks, the package's code.

    This module is left out (a change to how stacks are saved bumps ``SNAPSHOT_FORMAT``).
    """
    digest = hashlib.sha256(f"format {SNAPSHOT_FORMAT}\n".encode())
    package = Path(pipeline_tasks.__file__).resolve().parent
    sources = [
        *(("samples", folder.name, path) for folder in batch_dirs for path in _files(folder, "*")),
        *(("notebooks", "", path) for path in _files(Path(settings.notebooks_dir) / "pipeline", "*.ipynb")),
        *(("code", "", path) for path in _files(package, "*.py") if path.resolve() != Path(__file__).resolve()),
    ]
    for kind, batch, path in sources:
        digest.update(f"{kind} {batch} {path.name} {path.stat().st_size}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_dir(settings: Settings) -> Path:
    return Path(settings.notebooks_dir).resolve().parent / CACHE_DIR


def saved_stack_dir(settings: Settings, batch_dirs: Sequence[Path]) -> Path:
    """The folder of the seeded stack saved for these samples and this code (it may not exist)."""
    return cache_dir(settings) / f"seeded-{seed_fingerprint(settings, batch_dirs)}"


def _table_items(client: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items.extend(page.get("Items", []))
    return items


def _kpi_tables(settings: Settings) -> dict[str, str]:
    """The KPI tables by role: a stack saved under some table names restores under others."""
    return {"order_kpis": settings.order_kpis_table, "category_kpis": settings.category_kpis_table}


def save_stack(settings: Settings, dest: Path, *, workers: int = 8) -> dict[str, int]:
    """Save the bucket's current objects and the KPI tables' items into ``dest``.

    Written into a temporary folder renamed at the end: a start interrupted meanwhile leaves
    no half-saved stack. Returns the counts saved (``objects``, ``items``).
    """
    s3 = aws.client(settings, "s3")
    dynamodb = aws.client(settings, "dynamodb")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".saving-", dir=dest.parent))
    try:
        (staging / "objects").mkdir()
        keys = list(s3io.list_keys(s3, settings.bucket, ""))

        def save_object(numbered: tuple[int, str]) -> dict[str, Any]:
            number, key = numbered
            response = s3.get_object(Bucket=settings.bucket, Key=key)
            (staging / "objects" / f"{number:06d}").write_bytes(response["Body"].read())
            return {
                "key": key,
                "file": f"{number:06d}",
                "content_type": response.get("ContentType"),
                "metadata": response.get("Metadata", {}),
            }

        with ThreadPoolExecutor(workers) as pool:
            objects = list(pool.map(save_object, enumerate(keys)))
        tables = {role: _table_items(dynamodb, table) for role, table in _kpi_tables(settings).items()}
        document = {"format": SNAPSHOT_FORMAT, "bucket": settings.bucket, "objects": objects, "tables": tables}
        (staging / "stack.json").write_text(json.dumps(document))
        if dest.exists():  # another lab saved the same stack meanwhile
            shutil.rmtree(staging)
        else:
            staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for other in dest.parent.glob("seeded-*"):
        if other != dest:
            shutil.rmtree(other, ignore_errors=True)
    return {"objects": len(objects), "items": sum(len(items) for items in tables.values())}


def restore_stack(settings: Settings, source: Path, *, workers: int = 8) -> dict[str, int]:
    """Put a saved stack's objects and KPI items into the (empty, provisioned) stack.

    Returns the counts restored (``objects``, ``items``).
    """
    document = json.loads((source / "stack.json").read_text())
    if document.get("format") != SNAPSHOT_FORMAT:
        raise PipelineError(f"{source} was saved in another format")
    s3 = aws.client(settings, "s3")
    dynamodb = aws.client(settings, "dynamodb")

    def put_object(item: dict[str, Any]) -> None:
        extra = {"ContentType": item["content_type"]} if item.get("content_type") else {}
        body = (source / "objects" / item["file"]).read_bytes()
        s3.put_object(Bucket=settings.bucket, Key=item["key"], Body=body, Metadata=item["metadata"], **extra)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(put_object, document["objects"]))
    count = 0
    for role, table in _kpi_tables(settings).items():
        items = document["tables"][role]
        for start in range(0, len(items), 25):
            requests = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
            while requests:
                requests = dynamodb.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
        count += len(items)
    return {"objects": len(document["objects"]), "items": count}
