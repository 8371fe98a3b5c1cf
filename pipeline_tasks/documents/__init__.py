"""The JSON documents the steps leave in the bucket, as frozen dataclasses.

This package owns the shape of four documents, a module each (their keys: ``layout``):

- ``BatchValidation``: the validation result ``results/{execution_id}.json``
  (``steps.validate``), one ``ValidFile`` or ``RejectedFile`` per input file;
- ``StageReport``: ``reports/{execution_id}/stage.json`` (``steps.stage``), a
  ``FileFunnel`` per staged file and a ``MergeSummary`` per staged table;
- ``TransformReport``: ``reports/{execution_id}/transform.json``
  (``steps.transform``), a ``KpiTableWrites`` per KPI table;
- ``RunRecord``: ``runs/{execution_id}/{notebook}.json`` (``notebooks``).

The steps return these documents (``validate.run``, ``stage.run``, ``transform.run``)
and write their JSON. Each has ``to_json()``, the document as written, and
``from_json(document)``. Other components read the JSON (the state machine through
the Read-Validation-Result Lambda, reviewers' notebooks), so ``to_json`` gives
exactly the keys written before these classes existed. ``from_json`` reads a
document as tolerantly as the readers did before it: a key the document lacks (one
written by an older version, or a hand-built one) takes its field's default, and
keys beyond these are ignored. ``of`` takes either a document or its JSON.

Only the standard library here: the Lambda functions import this package.
"""

from pipeline_tasks.documents.base import Document
from pipeline_tasks.documents.run_record import RunRecord
from pipeline_tasks.documents.stage_report import (
    MERGE_COUNTS,
    FileFunnel,
    MergeSummary,
    QuarantineWrite,
    StageReport,
)
from pipeline_tasks.documents.transform_report import KpiTableWrites, TransformReport
from pipeline_tasks.documents.validation import BatchValidation, RejectedFile, ValidFile

__all__ = [
    "MERGE_COUNTS",
    "BatchValidation",
    "Document",
    "FileFunnel",
    "KpiTableWrites",
    "MergeSummary",
    "QuarantineWrite",
    "RejectedFile",
    "RunRecord",
    "StageReport",
    "TransformReport",
    "ValidFile",
]
