"""The local AWS: a moto server process with the local stack's workarounds applied.

``python -m pipeline_tasks.local.emulator -H 127.0.0.1 -p PORT`` takes moto's server
arguments. ``PIPELINE_LOCAL_WORKDIR`` is where task commands run (the repository),
``PIPELINE_LOCAL_LOG_DIR`` where their output goes. ``MOTO_PORT`` must be the port: the
functions, the tasks and the state machine call the services at
``http://127.0.0.1:$MOTO_PORT``. With ``PIPELINE_LOCAL_IAM=enforce`` every request is
authenticated and authorized as IAM would (``moto_workarounds`` 7-12); unset, nothing is
checked.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

#: ``enforce``: every request is checked against its caller's policies.
IAM_VARIABLE = "PIPELINE_LOCAL_IAM"


def enforces_iam(value: str | None) -> bool:
    """Whether ``PIPELINE_LOCAL_IAM`` asks for enforcement (``enforce``); any other value set is a mistake."""
    if value in (None, ""):
        return False
    if value == "enforce":
        return True
    raise SystemExit(f"{IAM_VARIABLE} must be 'enforce' or unset, not {value!r}")


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from pipeline_tasks.local import moto_cloudformation, moto_workarounds

    workdir = Path(os.environ.get("PIPELINE_LOCAL_WORKDIR", os.getcwd()))
    log_dir = Path(os.environ.get("PIPELINE_LOCAL_LOG_DIR", Path(tempfile.gettempdir()) / "ecom-pipeline-tasks"))
    endpoint = f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '5000')}"
    moto_workarounds.apply(
        workdir=workdir, log_dir=log_dir, endpoint=endpoint, enforce_iam=enforces_iam(os.environ.get(IAM_VARIABLE))
    )
    moto_cloudformation.apply()
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
