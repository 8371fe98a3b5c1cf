"""What a batch may carry through Step Functions: its move plan within the state payload quota.

Step Functions carries at most 256 KiB (262,144 bytes of UTF-8 JSON) as a state's input or
output; a Lambda result above it fails the state with ``States.DataLimitExceeded``. moto
carries any size, so the limit is ours to keep. The one large thing in an execution's state
is the move plan Read-Validation-Result returns (``steps.files.move_plan``): an entry per
file, whose size grows with its key, its rejection reason and the uploads it superseded.

This module owns the limit and the budget: the orchestrator stops adding files to a batch
once the largest plan entries they could have (``entry_bytes``) fill ``MOVE_PLAN_BUDGET``
(the other files stay queued for the next batch), and Read-Validation-Result checks the
plan it returns (``check_fits``), failing with a clear error rather than AWS's.
"""

from __future__ import annotations

import json
from typing import Any

from pipeline_tasks.documents import BatchValidation, RejectedFile
from pipeline_tasks.errors import StepFailed
from pipeline_tasks.settings import Settings
from pipeline_tasks.steps import files

#: Step Functions' quota on a state's input or output, in bytes of UTF-8 JSON.
STATE_PAYLOAD_LIMIT = 262_144
#: What a batch's move plan may take of it, as estimated when the batch is drained: the rest of
#: the execution's state (ids, counts, task results, an error) and one message past the budget fit beside it.
MOVE_PLAN_BUDGET = 190_000
#: A plan's size beyond which Read-Validation-Result fails: the rest of the state fits beside it.
MOVE_PLAN_LIMIT = 240_000
#: S3's longest key, in bytes of UTF-8.
S3_KEY_BYTES = 1024
#: Characters of 1, 2 and 3 bytes that a plan expands the most (percent-encoding, JSON escapes).
_EXPANDING = ("\u65e5", "\u00e9", "#", '"', "\\", "\x01")
#: The longest rejection reason a plan carries (``keys.metadata_text``'s limit).
_REASON = "r" * 400
#: A version id as long as S3's (32 characters).
_VERSION = "v" * 32


def size(document: Any) -> int:
    """Bytes of ``document`` as Step Functions counts them: UTF-8 JSON."""
    return len(json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode())


def entry_bytes(settings: Settings, key: str) -> int:
    """The most a file of ``key`` can take in a move plan: rejected with the longest reason, one superseded upload.

    More superseded uploads of one name (the same export written again and again before a
    batch) are rare; ``check_fits`` catches a plan they push past the limit.
    """
    validation = BatchValidation(invalid_files=(RejectedFile(key, None, _REASON, _VERSION),))
    plan = files.move_plan(settings, validation, older={key: [_VERSION]})
    return size(plan["invalid_files"][0]) + 1  # and the comma between entries


def largest_entry_bytes(settings: Settings) -> int:
    """The most any file can take in a move plan: a key as long as S3 allows (1,024 bytes).

    Of the characters that expand the most in the plan: percent-encoded in the copy source
    and metadata (three characters a byte), escaped in JSON (a quote, a control character).
    """
    room = S3_KEY_BYTES - len(settings.input_prefix.encode())
    return max(
        entry_bytes(settings, settings.input_prefix + char * (room // len(char.encode()))) for char in _EXPANDING
    )


def check_fits(plan: dict[str, Any], execution_id: str) -> dict[str, Any]:
    """``plan`` when Step Functions can carry it; else StepFailed, naming the sizes and what to do."""
    found = size(plan)
    if found > MOVE_PLAN_LIMIT:
        count = len(plan.get("valid_files", [])) + len(plan.get("invalid_files", []))
        raise StepFailed(
            f"the move plan of {execution_id} ({count} file(s)) is {found:,} bytes, more than the "
            f"{MOVE_PLAN_LIMIT:,} a Step Functions state can carry beside the rest of the execution "
            f"(quota {STATE_PAYLOAD_LIMIT:,}): its files stay in input/; move some of them (or their older "
            "uploads) out of input/ and run `ecom-pipeline rerun` on the batch"
        )
    return plan
