"""Workaround 10, the request side: what a request is, whether its caller may, and how a denial reads.

``RequestFacts`` (what the resolvers of ``iam_actions`` and ``iam_s3_actions`` read),
the verdict of moto's policies for an action and resource of our choosing, and AWS's
denial per service (its error code, protocol and message).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

#: Verdicts of an authorization (10).
ALLOWED, IMPLICIT_DENY, EXPLICIT_DENY = "allowed", "implicit deny", "explicit deny"
#: Error codes of a denial by service (signing name), and the services that answer in JSON (10).
_DENIAL_CODES = {
    "dynamodb": "AccessDeniedException",
    "states": "AccessDeniedException",
    "ecs": "AccessDeniedException",
    "lambda": "AccessDeniedException",
    "logs": "AccessDeniedException",
    "kms": "AccessDeniedException",
    "events": "AccessDeniedException",
    "ecr": "AccessDeniedException",
    "scheduler": "AccessDeniedException",
    "sqs": "AccessDenied",
    "sns": "AuthorizationError",
    "ec2": "UnauthorizedOperation",
}
_JSON_SERVICES = frozenset({"dynamodb", "states", "ecs", "lambda", "logs", "kms", "events", "ecr", "scheduler", "sqs"})


def authorization_verdict(iam_request: Any, action: str, resource: str) -> str:
    """``ALLOWED``, ``IMPLICIT_DENY`` or ``EXPLICIT_DENY`` for the caller of a moto IAM request.

    As moto's ``check_action_permitted`` decides (its caller's policies, and an AssumeRole's
    trust policy), for an action and resource of our choosing.
    """
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if action == "sts:GetCallerIdentity":  # needs no permission
        return ALLOWED
    iam_request._action = action  # what moto's trust check reads
    permitted = False
    for policy in iam_request._access_key.collect_policies():
        result = IAMPolicy(policy).is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return EXPLICIT_DENY
        permitted = permitted or result == PermissionResult.PERMITTED
    if permitted and iam_request._is_assuming_role_operation(resource):
        permitted = iam_request._check_role_trust_relationship(resource)
    return ALLOWED if permitted else IMPLICIT_DENY


def denial_message(caller: str, action: str, resource: str, verdict: str) -> str:
    """AWS's AccessDenied message (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html)."""
    on = f" on resource: {resource}" if resource != "*" else ""
    why = (
        "with an explicit deny in an identity-based policy"
        if verdict == EXPLICIT_DENY
        else f"because no identity-based policy allows the {action} action"
    )
    return f"User: {caller} is not authorized to perform: {action}{on} {why}"


def _denial(service: str, message: str) -> Exception:
    """The error a service answers a denied request with (its protocol's form, status 403)."""
    from moto.core.exceptions import AccessDeniedError, JsonRESTError
    from moto.s3.exceptions import S3AccessDeniedError

    if service == "s3":
        error: Any = S3AccessDeniedError()
        error.message = message
        error.args = (message,)
        return error  # type: ignore[no-any-return]
    code = _DENIAL_CODES.get(service, "AccessDenied")
    if service in _JSON_SERVICES:
        error = JsonRESTError(code, message)
        error.code = 403
        return error  # type: ignore[no-any-return]
    from xml.sax.saxutils import escape

    error = AccessDeniedError(user_arn="", action="")  # an HTTP 403 that moto's services answer with
    error.error_type, error.message = code, message
    # The query protocol's error document, with the RequestId a client reads (moto fills it in).
    error.description = (
        f"<?xml version='1.0' encoding='utf-8'?>\n<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
        f"<Message>{escape(message)}</Message></Error><RequestId>-</RequestId></ErrorResponse>"
    )
    return error  # type: ignore[no-any-return]


@dataclass(frozen=True)
class RequestFacts:
    """What the resolvers need to name a request's resources."""

    service: str
    operation: str
    region: str
    account: str
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    params: Mapping[str, Any]

    @property
    def partition(self) -> str:
        return (
            "aws-cn" if self.region.startswith("cn-") else "aws-us-gov" if self.region.startswith("us-gov-") else "aws"
        )

    def param(self, name: str) -> Any:
        if name in self.params:
            return self.params[name]
        values = self.query.get(name)
        return values[0] if values else None

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"


def _request_facts(response: Any, iam_request: Any) -> RequestFacts:
    parsed = urlparse(response.uri)
    params: dict[str, Any] = {}
    automated = getattr(response, "params", None)
    if isinstance(automated, Mapping):
        params.update(automated)
    if not params and iam_request._service in _JSON_SERVICES and response.raw_body:
        try:
            body = json.loads(response.raw_body)
            params = body if isinstance(body, dict) else {}
        except (ValueError, UnicodeDecodeError):
            params = {}
    query = parse_qs(parsed.query, keep_blank_values=True)
    for name, values in (getattr(response, "querystring", None) or {}).items():
        query.setdefault(name, values if isinstance(values, list) else [values])
    return RequestFacts(
        service=iam_request._service,
        operation=iam_request._action.split(":", 1)[1],
        region=iam_request._region,
        account=response.current_account,
        method=response.method,
        path=unquote(parsed.path),
        query=query,
        headers=response.headers,
        params=params,
    )
