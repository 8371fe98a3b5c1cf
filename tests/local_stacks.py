"""A local stack deployed from infra/pipeline.yaml, for the tests that run the whole flow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline_tasks.local import template
from pipeline_tasks.local.stack import MotoServer
from pipeline_tasks.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def deployed(tmp_path: Path, edit: Any = None) -> tuple[MotoServer, Settings]:
    """An emulator (IAM enforced) with the template deployed on it; ``edit`` changes the template first.

    The caller stops the server; it is stopped here when the deployment fails.
    """
    server = MotoServer(emulator=True, workdir=REPO, log_dir=tmp_path / "task-logs").start()
    base = Settings(spark_jars_dir=str(REPO / ".jars"), notebooks_dir=str(REPO / "notebooks"))
    try:
        return server, template.deploy(server.settings(base), edit=edit)
    except BaseException:
        server.stop()
        raise
