"""Batches pin versions: the moves of the direct steps against a moto server (versioned bucket, as on AWS)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from pipeline_tasks import batches
from pipeline_tasks.io import aws
from pipeline_tasks.io import s3 as s3io
from pipeline_tasks.keys import MAX_KEY_BYTES
from pipeline_tasks.local.runner import direct_steps, process_batch
from pipeline_tasks.settings import Settings

pytestmark = [pytest.mark.aws]


def _versions(settings: Settings, key: str) -> list[str]:
    listed = aws.client(settings, "s3").list_object_versions(Bucket=settings.bucket, Prefix=key)
    return [v["VersionId"] for v in listed.get("Versions", []) if v["Key"] == key]


def _body(settings: Settings, key: str) -> tuple[bytes, dict[str, Any]]:
    answer = aws.client(settings, "s3").get_object(Bucket=settings.bucket, Key=key)
    return answer["Body"].read(), answer["Metadata"]


def _keys(settings: Settings, prefix: str) -> list[str]:
    return sorted(s3io.list_keys(aws.client(settings, "s3"), settings.bucket, prefix))


def test_a_version_uploaded_after_validation_stays_in_input_for_the_next_batch(settings):
    s3 = aws.client(settings, "s3")
    v1 = s3.put_object(Bucket=settings.bucket, Key="input/junk.csv", Body=b"x\n1\n")["VersionId"]
    steps = direct_steps(settings)

    def upload_while_running(step: str, parameters: dict[str, Any]) -> None:
        steps(step, parameters)
        if step == "validate":  # the batch has read v1; a changed export arrives
            s3.put_object(Bucket=settings.bucket, Key="input/junk.csv", Body=b"y\n2\n")

    first = process_batch(settings, "v-1", ["input/junk.csv"], steps=upload_while_running, progress=lambda _: None)
    assert first.status == "SUCCEEDED", first.error
    assert _body(settings, "rejected/junk.csv") == (
        b"x\n1\n",
        {"source-key": "input/junk.csv", "source-version-id": v1, "rejection-reason": first.invalid_files[0]["reason"]},
    )
    assert _keys(settings, "input/") == ["input/junk.csv"] and _body(settings, "input/junk.csv")[0] == b"y\n2\n"

    second = process_batch(settings, "v-2", ["input/junk.csv"], steps=steps, progress=lambda _: None)
    assert second.status == "SUCCEEDED", second.error
    assert _keys(settings, "input/") == []
    [distinct] = [k for k in _keys(settings, "rejected/") if k != "rejected/junk.csv"]
    assert distinct.startswith("rejected/junk~v") and _body(settings, distinct)[0] == b"y\n2\n"
    assert _body(settings, "rejected/junk.csv")[0] == b"x\n1\n"  # the first version's copy is kept


def test_older_versions_are_kept_beside_the_newest_and_none_comes_back_to_input(settings):
    s3 = aws.client(settings, "s3")
    versions = []
    for body in (b"a\n1\n", b"b\n2\n", b"c\n3\n"):  # three exports of one name before a batch ran
        versions.append(s3.put_object(Bucket=settings.bucket, Key="input/junk.csv", Body=body)["VersionId"])
    execution = process_batch(
        settings, "v-3", ["input/junk.csv"], steps=direct_steps(settings), progress=lambda _: None
    )
    assert execution.status == "SUCCEEDED", execution.error
    assert _body(settings, "rejected/junk.csv")[0] == b"c\n3\n"
    assert _keys(settings, "input/") == [] and _versions(settings, "input/junk.csv") == []
    # Every upload ends in rejected/: the superseded ones under distinct names, saying what superseded them.
    superseded = sorted(k for k in _keys(settings, "rejected/") if k != "rejected/junk.csv")
    assert len(superseded) == 2 and all(k.startswith("rejected/junk~v") for k in superseded)
    bodies = {_body(settings, k)[0]: _body(settings, k)[1] for k in superseded}
    assert set(bodies) == {b"a\n1\n", b"b\n2\n"}
    assert {m["superseded-by"] for m in bodies.values()} == {versions[2]}
    assert {m["source-version-id"] for m in bodies.values()} == set(versions[:2])


def test_a_key_at_the_limit_is_moved_under_a_shortened_name_that_keeps_the_original(settings):
    s3 = aws.client(settings, "s3")
    key = "input/" + "日" * ((MAX_KEY_BYTES - len("input/.csv")) // 3) + ".csv"
    assert len(key.encode()) == MAX_KEY_BYTES
    s3.put_object(Bucket=settings.bucket, Key=key, Body=b"x\n1\n")
    execution = process_batch(settings, "v-4", [key], steps=direct_steps(settings), progress=lambda _: None)
    assert execution.status == "SUCCEEDED", execution.error
    [moved] = _keys(settings, "rejected/")
    assert len(moved.encode()) <= MAX_KEY_BYTES and moved.startswith("rejected/日日日") and moved.endswith(".csv")
    body, metadata = _body(settings, moved)
    assert body == b"x\n1\n" and base64.b64decode(metadata["source-key-base64"]).decode() == key
    assert _keys(settings, "input/") == []


def test_an_older_version_a_failed_execution_pinned_waits_for_its_rerun(settings):
    s3 = aws.client(settings, "s3")
    first = s3.put_object(Bucket=settings.bucket, Key="input/junk.csv", Body=b"a\n1\n")["VersionId"]
    # Batch A pinned the first upload and failed before moving it.
    batches.write_manifest(settings, "a", [batches.BatchFile("input/junk.csv", first, "2025-03-01T09:00:00Z")])
    s3.put_object(Bucket=settings.bucket, Key="input/junk.csv", Body=b"b\n2\n")  # batch B: a newer upload
    execution = process_batch(settings, "b", ["input/junk.csv"], steps=direct_steps(settings), progress=lambda _: None)
    assert execution.status == "SUCCEEDED", execution.error
    # B moved its own version only; A's is current again in input/, for `rerun a`.
    assert _body(settings, "rejected/junk.csv")[0] == b"b\n2\n"
    assert _keys(settings, "input/") == ["input/junk.csv"] and _versions(settings, "input/junk.csv") == [first]
    assert not [k for k in _keys(settings, "rejected/") if k.startswith("rejected/junk~v")]
