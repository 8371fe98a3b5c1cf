"""The local AWS: a moto server process with the local stack's workarounds applied.

``python -m pipeline_tasks.local.emulator -H 127.0.0.1 -p PORT`` takes moto's server
arguments. ``PIPELINE_LOCAL_WORKDIR`` is where task commands run (the repository),
``PIPELINE_LOCAL_LOG_DIR`` where their output goes. ``MOTO_PORT`` must be the port.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from pipeline_tasks.local import moto_cloudformation, moto_workarounds

    workdir = Path(os.environ.get("PIPELINE_LOCAL_WORKDIR", os.getcwd()))
    log_dir = Path(os.environ.get("PIPELINE_LOCAL_LOG_DIR", Path(tempfile.gettempdir()) / "ecom-pipeline-tasks"))
    moto_workarounds.apply(workdir=workdir, log_dir=log_dir)
    moto_cloudformation.apply()
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
