"""The states an execution of statemachine/pipeline.asl.json enters, in order (for the end-to-end tests)."""

#: Every execution enters these first: validation and the handling of invalid files.
FLOW = ["ValidationTask", "CheckValidationExit", "ReadValidationResult", "HandleInvalidFiles", "AnyValidFiles"]

#: A batch with valid files that succeeds.
PROCESSED = [
    *FLOW,
    "StagingTask",
    "CheckStagingExit",
    "TransformationTask",
    "CheckTransformationExit",
    "ArchiveValidFiles",
    "NotifySuccess",
]

#: A batch whose task fails: the state machine notifies the failure and stops.
FAILED_AT_VALIDATION = ["ValidationTask", "CheckValidationExit", "FailureNotice", "NotifyFailure", "PipelineFailed"]
FAILED_AT_STAGING = [*FLOW, "StagingTask", "CheckStagingExit", "FailureNotice", "NotifyFailure", "PipelineFailed"]
FAILED_AT_TRANSFORM = [
    *FLOW,
    "StagingTask",
    "CheckStagingExit",
    "TransformationTask",
    "CheckTransformationExit",
    "FailureNotice",
    "NotifyFailure",
    "PipelineFailed",
]
