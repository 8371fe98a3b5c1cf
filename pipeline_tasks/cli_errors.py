"""What the ``ecom-pipeline`` command prints for an error: one line and an exit code.

``translate`` turns the exceptions the libraries raise (botocore's missing credentials,
unreachable endpoint, refused request or missing bucket; a file that is not there) into
``PipelineError`` subclasses whose message says what to do; ``cli.main`` calls it at one
place. botocore is never imported here: its exceptions are recognised by class name,
so the command starts fast.
"""

from __future__ import annotations

from pipeline_tasks.errors import ConfigurationError, PipelineError

#: What to do when no AWS is reachable or authorised: the local stack, or the variables to set.
HOW_TO_CONNECT = (
    "run `ecom-pipeline local up` for a local stack in this folder, or set AWS_PROFILE "
    "(or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and AWS_DEFAULT_REGION for AWS, "
    "or PIPELINE_AWS_ENDPOINT_URL for another endpoint"
)

_NO_CREDENTIALS = {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}
_UNREACHABLE = {"EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ReadTimeoutError"}
_REFUSED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
}
_MISSING = {
    "NoSuchBucket",
    "ResourceNotFoundException",
    "StateMachineDoesNotExist",
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
}

#: botocore exceptions that are configuration problems when a notebook cell raises them (by name).
CONFIGURATION_NAMES = _NO_CREDENTIALS | _UNREACHABLE | {"NoRegionError"}


def _names(error: BaseException) -> set[str]:
    return {kind.__name__ for kind in type(error).__mro__}


def translate(error: BaseException) -> PipelineError | None:
    """``error`` as a PipelineError with a one-line, actionable message; None when it is not one we know."""
    if isinstance(error, PipelineError):
        return error
    names = _names(error)
    if names & _NO_CREDENTIALS:
        return ConfigurationError(f"no AWS credentials found: {HOW_TO_CONNECT}")
    if "NoRegionError" in names:
        return ConfigurationError("no AWS region set: set AWS_DEFAULT_REGION (or run `ecom-pipeline local up`)")
    if names & _UNREACHABLE:
        return ConfigurationError(
            f"cannot connect to {_endpoint(error)}: is the local stack running (`ecom-pipeline local up`)? "
            "Otherwise check PIPELINE_AWS_ENDPOINT_URL (unset it for AWS) and AWS_DEFAULT_REGION"
        )
    if "ClientError" in names:
        return _client_error(error)
    if isinstance(error, IsADirectoryError):
        return PipelineError(f"{error.filename} is a folder, not a file")
    if isinstance(error, FileNotFoundError):
        return PipelineError(f"no such file: {error.filename}")
    if isinstance(error, PermissionError):
        return PipelineError(f"permission denied: {error.filename}")
    return None


def _endpoint(error: BaseException) -> str:
    """The scheme and host of the URL botocore could not reach."""
    from urllib.parse import urlsplit

    url = str(getattr(error, "kwargs", {}).get("endpoint_url") or "")
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else "the AWS endpoint"


def _client_error(error: BaseException) -> PipelineError:
    """An AWS service's refusal: ``ClientError`` carries the error code and the operation."""
    details = getattr(error, "response", {}).get("Error", {})
    code, message = str(details.get("Code", "")), str(details.get("Message", "")).strip()
    operation = getattr(error, "operation_name", "a request")
    if code in _REFUSED:
        return ConfigurationError(
            f"AWS refused {operation} ({code}{': ' + message if message else ''}): "
            f"check the credentials and their permissions; {HOW_TO_CONNECT}"
        )
    if code in _MISSING:
        bucket = details.get("BucketName")
        what = f"bucket {bucket}" if bucket else (message or "a resource the pipeline uses")
        return ConfigurationError(
            f"{operation}: {code} ({what}): is the stack deployed (PIPELINE_* settings) or "
            "the local one running (`ecom-pipeline local up`)?"
        )
    return PipelineError(f"AWS {operation} failed: {code}{': ' + message if message else ''}")


def one_line(error: BaseException) -> str:
    """The error as ``ecom-pipeline`` prints it: ``error: …`` on one line."""
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, PipelineError) and error.notebook_uri:
        text += f" (executed notebook: {error.notebook_uri})"
    return f"error: {text}"


def unexpected(error: BaseException) -> str:
    """The one line for an exception no translation knows: a bug, most likely."""
    return f"error: unexpected {type(error).__name__}: {' '.join(str(error).split())} (--debug shows the traceback)"
