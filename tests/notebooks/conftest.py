"""A local stack seeded the way ``make lab`` seeds it, shared by the notebook tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_tasks.local import lab
from pipeline_tasks.local.stack import MotoServer
from pipeline_tasks.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SAMPLES = [REPO / "samples" / "batch_01", REPO / "samples" / "batch_02"]


@pytest.fixture(scope="session")
def seeded(moto_server: MotoServer) -> Iterator[Settings]:
    """The sample batches run through the pipeline notebooks; the sample batch left for the defaults.

    Seeded as ``make lab`` seeds: restored from ``.lab-cache/`` when a lab (or an earlier
    run) saved the stack for these samples and this exact code, else run through the
    pipeline and saved. Either way the bucket holds what the pipeline wrote, archived
    notebooks included.
    """
    settings = lab.local_stack_settings(
        moto_server,
        # The default resource names, as in `make lab`: the committed outputs show them.
        Settings(
            notebooks_dir=str(REPO / "notebooks"),
            spark_jars_dir=str(REPO / ".jars"),
        ),
    )
    lab.seed_or_restore(settings, SAMPLES, progress=lambda _: None)
    yield settings
