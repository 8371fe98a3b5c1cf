"""The bucket's layout: every key and prefix the pipeline reads or writes, in one place.

The prefixes themselves are Settings fields (an environment can move them); this
module owns the names below them. ``docs/architecture.md`` ("The bucket") lists the
same keys for a reader.

======================================  ===================================================
``input/…``                             files waiting for a batch (``Settings.input_prefix``)
``archive/…``, ``rejected/…``           where a processed file moves (``steps.files``)
``results/{execution_id}.json``         the validation result (``result_key``)
``manifests/{execution_id}.json``       the batch an execution was started with
``reports/{execution_id}/{step}.json``  the stage and transform reports (``report_key``)
``runs/{execution_id}/{name}``          executed notebooks and run records (``run_key``)
``state/orchestrator.lock``             the orchestrator's lock (``lock_key``)
``state/kpi_checkpoint.json``           the transform's checkpoint (``checkpoint_key``)
``state/published_kpis.parquet``        the record of the published KPIs (``record_key``)
``state/pins/{digest}/{version_id}``    an execution's claim on a file version
``staging/{dataset}``                   the Delta tables (``Settings.table_uri``)
======================================  ===================================================
"""

from __future__ import annotations

import hashlib

from pipeline_tasks.settings import Settings


def input_key(settings: Settings, name: str) -> str:
    """The key an uploaded file named ``name`` lands at."""
    return settings.input_prefix + name


def result_key(settings: Settings, execution_id: str) -> str:
    """The validation result of an execution."""
    return f"{settings.results_prefix}{execution_id}.json"


def manifest_key(settings: Settings, execution_id: str) -> str:
    """The batch (file keys and versions) an execution was started with."""
    return f"{settings.manifests_prefix}{execution_id}.json"


def rerun_manifests_prefix(settings: Settings, execution_id: str) -> str:
    """The prefix of every rerun manifest of ``execution_id`` (``{id}-rerun-{n}``)."""
    return f"{settings.manifests_prefix}{execution_id}-rerun-"


def report_key(settings: Settings, execution_id: str, step: str) -> str:
    """A step's report (``stage``, ``transform``)."""
    return f"{settings.reports_prefix}{execution_id}/{step}.json"


def run_prefix(settings: Settings, execution_id: str) -> str:
    """The folder of an execution's archived notebooks and run records."""
    return f"{settings.runs_prefix}{execution_id}/"


def run_key(settings: Settings, execution_id: str, name: str) -> str:
    """An archived run file: ``runs/{execution_id}/{name}``."""
    return run_prefix(settings, execution_id) + name


def lock_key(settings: Settings) -> str:
    """The orchestrator's lock: one run at a time drains the queue."""
    return f"{settings.state_prefix}orchestrator.lock"


def checkpoint_key(settings: Settings) -> str:
    """The transform's checkpoint: the Delta versions its KPIs are up to date with."""
    return f"{settings.state_prefix}kpi_checkpoint.json"


def record_key(settings: Settings) -> str:
    """The record of the KPI items published to DynamoDB (``io.published``)."""
    return f"{settings.state_prefix}published_kpis.parquet"


def pin_marker_key(settings: Settings, key: str, version_id: str) -> str:
    """Where the mark that an execution pinned this version of ``key`` lives (any key length fits)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{settings.state_prefix}pins/{digest}/{version_id}"
