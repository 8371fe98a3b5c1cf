"""The exception hierarchy; each kind maps to a distinct process exit code."""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = 1


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
