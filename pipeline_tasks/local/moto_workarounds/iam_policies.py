"""Workaround 9: policies read as IAM reads them.

IAM's policy grammar as pure functions (wildcards, statements, principals, condition
operators, documents in moto's forms) and the patch that makes moto's ``IAMPolicy`` and
``IAMPolicyStatement`` use them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

#: What the emulator's plain HTTP on 127.0.0.1 stands in for: AWS's TLS endpoints (9).
_CONTEXT = {"aws:SecureTransport": "true"}
#: Keys a request may lack, so their absence is known (9); any other absent key is unknown here.
_MAY_BE_ABSENT = frozenset({"sts:externalid"})


def glob_matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcards: ``*`` any run of characters, ``?`` any one character, the rest literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def _listed(element: Any) -> list[Any]:
    return element if isinstance(element, list) else [element]


def statement_effect(
    statement: Mapping[str, Any],
    action: str,
    resource: str,
    principal: str | None = None,
    context: Mapping[str, str] | None = None,
) -> str | None:
    """What one policy statement says of a request: ``"Allow"``, ``"Deny"``, or None when it does not apply.

    Args:
        statement: The statement (``Effect``, ``Action``/``NotAction``, ``Resource``/``NotResource``,
            ``Principal``/``NotPrincipal``, ``Condition``).
        action: ``service:Operation``; matched case-insensitively.
        resource: The resource's ARN; ``*`` when it is not known (the statement's resource then
            does not matter: the request is matched on its action alone).
        principal: The caller (an ARN, or a service principal such as ``states.amazonaws.com``)
            when a trust or resource policy is read; None for an identity policy.
        context: The request's condition keys.
    """
    if "Action" in statement:
        if not any(glob_matches(p, action, ignore_case=True) for p in _listed(statement["Action"])):
            return None
    elif not (
        "NotAction" in statement
        and not any(glob_matches(p, action, ignore_case=True) for p in _listed(statement["NotAction"]))
    ):
        return None
    if not _principal_applies(statement, principal):
        return None
    if resource != "*":
        if "Resource" in statement and not any(glob_matches(p, resource) for p in _listed(statement["Resource"])):
            return None
        if "NotResource" in statement and any(glob_matches(p, resource) for p in _listed(statement["NotResource"])):
            return None
    holds = condition_holds(statement.get("Condition") or {}, context or {})
    if statement.get("Effect") == "Allow":
        return "Allow" if holds is True else None
    if statement.get("Effect") == "Deny":
        return "Deny" if holds is not False else None  # a condition we cannot evaluate denies
    return None


def _principal_applies(statement: Mapping[str, Any], principal: str | None) -> bool:
    if "Principal" not in statement and "NotPrincipal" not in statement:
        return True  # an identity policy's statement
    if principal is None:
        # A resource policy read without its caller (moto's own bucket-policy checks): as moto reads it.
        element = statement.get("Principal", statement.get("NotPrincipal"))
        return not (isinstance(element, str) and element != "*")
    if "Principal" in statement:
        return principal_matches(statement["Principal"], principal)
    return not principal_matches(statement["NotPrincipal"], principal)


def principal_matches(element: Any, principal: str) -> bool:
    """Whether a ``Principal`` element names the caller.

    An AWS principal names a caller by its ARN, its account (``123456789012`` or
    ``arn:aws:iam::123456789012:root``) or, for an assumed role's session, the role's ARN;
    a ``Service`` principal names a service (``lambda.amazonaws.com``).
    """
    if element == "*":
        return True
    if not isinstance(element, Mapping):
        return False
    if not principal.startswith("arn:"):
        return principal in _listed(element.get("Service", []))
    caller = principal.split(":")
    account = caller[4] if len(caller) > 5 else ""
    session = re.fullmatch(r"arn:[^:]+:sts::(\d{12}):assumed-role/([^/]+)/.+", principal)
    for name in _listed(element.get("AWS", [])):
        if name in ("*", principal, account) or re.fullmatch(rf"arn:[^:]+:iam::{account}:root", name):
            return True
        role = re.fullmatch(r"arn:[^:]+:iam::(\d{12}):role/(?:.*/)?([^/]+)", name)
        if session and role and role.groups() == session.groups():
            return True
    return False


_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    # name: (does the policy's value match the request's, is the operator negated)
    "StringEquals": (lambda expected, value: expected == value, False),
    "StringNotEquals": (lambda expected, value: expected == value, True),
    "StringEqualsIgnoreCase": (lambda expected, value: expected.lower() == value.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda expected, value: expected.lower() == value.lower(), True),
    "StringLike": (lambda expected, value: glob_matches(expected, value), False),
    "StringNotLike": (lambda expected, value: glob_matches(expected, value), True),
    "ArnEquals": (lambda expected, value: glob_matches(expected, value), False),
    "ArnLike": (lambda expected, value: glob_matches(expected, value), False),
    "ArnNotEquals": (lambda expected, value: glob_matches(expected, value), True),
    "ArnNotLike": (lambda expected, value: glob_matches(expected, value), True),
    "Bool": (lambda expected, value: expected.lower() == value.lower(), False),
}


def condition_holds(conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool | None:
    """Whether a statement's ``Condition`` holds: True, False, or None when it cannot be evaluated here.

    Every operator and every key must hold; a key's values are alternatives. A key absent
    from ``context`` is known to be absent only when a request may lack it (``sts:ExternalId``).
    """
    known = {key.lower(): value for key, value in context.items()}
    result: bool | None = True
    for operator, tests in conditions.items():
        for key, expected in tests.items():
            outcome = _condition(operator, key.lower(), [str(e) for e in _listed(expected)], known)
            if outcome is False:
                return False
            if outcome is None:
                result = None
    return result


def _condition(operator: str, key: str, expected: list[str], context: Mapping[str, str]) -> bool | None:
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    if qualifier not in ("", "ForAnyValue", "ForAllValues"):
        return None
    if key not in context and key not in _MAY_BE_ABSENT:
        return None  # a key this local stack does not know
    if name == "Null":  # "true": the key must be absent
        return any((e.lower() == "true") == (key not in context) for e in expected)
    if name not in _OPERATORS:
        return None
    test, negated = _OPERATORS[name]
    if key not in context:
        # IAM: an absent key matches no value; a negated operator, IfExists and ForAllValues then hold.
        return negated or if_exists or qualifier == "ForAllValues"
    matched = any(test(e, context[key]) for e in expected)
    return not matched if negated else matched


def policy_document(document: Any) -> dict[str, Any]:
    """A policy as data, whether moto holds it as a dict, JSON or URL-encoded JSON."""
    if isinstance(document, Mapping):
        return dict(document)
    text = str(document)
    try:
        return dict(json.loads(text))
    except json.JSONDecodeError:
        return dict(json.loads(unquote(text)))


def _read_policies_as_iam() -> None:
    from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult

    original_init = IAMPolicy.__init__

    def init(self: Any, policy: Any) -> None:
        # moto reads JSON text, a managed policy or a dict holding "policy_document"; a
        # CloudFormation role's inline policy is the document itself (a dict).
        if isinstance(policy, (str, Mapping)) and not (isinstance(policy, Mapping) and "policy_document" in policy):
            policy = json.dumps(policy_document(policy))
        original_init(self, policy)

    IAMPolicy.__init__ = init  # type: ignore[method-assign]

    results = {"Allow": PermissionResult.PERMITTED, "Deny": PermissionResult.DENIED, None: PermissionResult.NEUTRAL}

    def is_action_permitted(
        self: Any,
        action: str,
        resource: str = "*",
        principal: str | None = None,
        incoming_condition_values: dict[str, str] | None = None,
    ) -> Any:
        context = _CONTEXT | dict(incoming_condition_values or {})
        return results[statement_effect(self._statement, action, resource, principal, context)]

    IAMPolicyStatement.is_action_permitted = is_action_permitted  # type: ignore[method-assign]
