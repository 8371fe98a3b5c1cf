"""The exception hierarchy; each kind maps to a distinct process exit code."""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error this package raises on purpose.

    Its message is what ``ecom-pipeline`` prints after ``error:``, on one line: it says
    what went wrong and what to do, without the exception's type.
    """

    exit_code = 1
    #: The ``s3://`` URI of the executed notebook that shows this failure, once archived.
    notebook_uri: str | None = None


class ConfigurationError(PipelineError):
    """Settings or the environment are wrong (a missing jar folder, a bad endpoint)."""

    exit_code = 2


class InvalidFile(PipelineError):
    """A file breaks the file-level rules of the contract (§2)."""

    exit_code = 3


class StepFailed(PipelineError):
    """A pipeline step could not finish; its inputs are left in place for a re-run."""

    exit_code = 4


class StackError(PipelineError):
    """The local emulated AWS could not be started or reached."""

    exit_code = 5


class KernelDied(StepFailed):
    """The notebook's kernel died mid-run, most often killed for lack of memory."""

    exit_code = 6


class CellTimeout(StepFailed):
    """A notebook cell ran longer than the per-cell timeout."""

    exit_code = 7


class KernelStartTimeout(StepFailed):
    """The notebook's kernel did not start (or answer) within the start timeout."""

    exit_code = 8


class ArchiveFailed(PipelineError):
    """The executed notebook could not be archived to S3 (the step itself may have succeeded)."""

    exit_code = 9


def by_name() -> dict[str, type[PipelineError]]:
    """Our exception classes by name, to map an error raised inside a notebook kernel."""
    found: dict[str, type[PipelineError]] = {}
    pending: list[type[PipelineError]] = [PipelineError]
    while pending:
        kind = pending.pop()
        found[kind.__name__] = kind
        pending.extend(kind.__subclasses__())
    return found
