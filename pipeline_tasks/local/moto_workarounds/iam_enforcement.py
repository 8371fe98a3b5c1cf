"""Workarounds 7, 8, 10 (the gate) and 11: IAM enforced on every request, as AWS would.

The administrator user that owns the local stack's key (7), SigV4 over an empty payload
(8), moto's authorization gate replaced by one that authorizes what ``iam_actions``
names and checks the roles handed to services (10), DeleteObjects' per-key check (10),
and a missing object answered 403 without ``s3:ListBucket`` (11).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlparse

from pipeline_tasks.local.moto_workarounds.iam_actions import required_permissions
from pipeline_tasks.local.moto_workarounds.iam_requests import (
    ALLOWED,
    RequestFacts,
    _denial,
    _request_facts,
    authorization_verdict,
    denial_message,
)
from pipeline_tasks.local.moto_workarounds.roles import RoleNotAssumableError, RoleSessions, _check_trust

log = logging.getLogger(__name__)


#: The IAM user that owns the local stack's credentials under enforcement (7).
ADMIN_USER = "local-admin"
#: The credentials the local stack's clients sign with (``pipeline_tasks.local.stack``); never real ones.
ADMIN_KEY_ID = "testing"
ADMIN_SECRET = "testing"
_ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def _enforce_iam() -> None:
    from moto import settings as moto_settings
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    backend = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_user(region_name="us-east-1", user_name=ADMIN_USER)
    backend.put_user_policy(ADMIN_USER, "allow-all", json.dumps(_ALLOW_ALL))
    key = backend.create_access_key(ADMIN_USER)
    # moto generates the key's id and secret; the local stack's clients sign with the fixed ones.
    del backend.access_keys[key.physical_resource_id]
    key.access_key_id, key.secret_access_key = ADMIN_KEY_ID, ADMIN_SECRET
    backend.access_keys[key.physical_resource_id] = key
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # type: ignore[assignment]
    log.info("IAM enforced: %s signs as the IAM user %s", ADMIN_KEY_ID, ADMIN_USER)


def _sign_bodiless_requests() -> None:
    from moto.iam.access_control import IAMRequestBase

    original = IAMRequestBase._create_aws_request

    def create_aws_request(self: Any) -> Any:
        request = original(self)
        # moto's parameters stand for a form body it has parsed away; any other empty body is empty.
        form = str(self._headers.get("Content-Type", "")).startswith("application/x-www-form-urlencoded")
        if not self._body and not form:
            request.data = b""  # SigV4 hashes the payload sent: none
        return request

    IAMRequestBase._create_aws_request = create_aws_request  # type: ignore[method-assign]


def _check_handed_roles(facts: RequestFacts) -> None:
    """A state machine's or function's role must trust its service when it is created, as AWS checks then."""
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.core.exceptions import JsonRESTError

    if facts.service == "states" and facts.operation in ("CreateStateMachine", "UpdateStateMachine"):
        role, service = facts.param("roleArn"), "states.amazonaws.com"
    elif facts.service == "lambda" and facts.operation in ("CreateFunction", "UpdateFunctionConfiguration"):
        role, service = facts.param("Role"), "lambda.amazonaws.com"
    else:
        return
    if not role:
        return
    try:
        _check_trust(str(role), service, str(role).split(":")[4], facts.partition)
    except (RoleNotAssumableError, IndexError) as error:
        if facts.service == "lambda":
            raise InvalidParameterValueException(
                "The role defined for the function cannot be assumed by Lambda."
            ) from error
        denial = JsonRESTError("AccessDeniedException", str(error))
        denial.code = 403
        raise denial from error


def _authorize_as_aws(roles: RoleSessions) -> None:
    _gate_requests(roles)
    _authorize_deleted_keys()


def _gate_requests(roles: RoleSessions) -> None:
    """moto's authorization gate, authorizing what AWS authorizes (10) and the roles handed to services."""
    from moto import settings as moto_settings
    from moto.core.authorization import ActionAuthenticatorMixin

    def authenticate_and_authorize(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        # moto's gate, unchanged: nothing is checked before INITIAL_NO_AUTH_ACTION_COUNT requests.
        if ActionAuthenticatorMixin.request_count < moto_settings.INITIAL_NO_AUTH_ACTION_COUNT:
            ActionAuthenticatorMixin.request_count += 1
            return
        if self.headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
            return
        query = urlparse(self.uri).query
        iam_request = iam_request_cls(
            account_id=self.current_account,
            method=self.method,
            path=self.raw_path + (f"?{query}" if query else ""),
            data=self.data,
            body=self.raw_body,
            headers=self.headers,
            action=self._get_action(),
        )
        iam_request.check_signature()
        self.local_iam_request = iam_request  # DeleteObjects' keys and a missing key's answer (11) read it
        facts = _request_facts(self, iam_request)
        for action, target in required_permissions(facts, resource):
            verdict = authorization_verdict(iam_request, action, target)
            if verdict != ALLOWED:
                message = denial_message(iam_request._access_key.arn, action, target, verdict)
                log.info("denied: %s", message)
                raise _denial(facts.service, message)
        if roles.check_trust:
            _check_handed_roles(facts)

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate_and_authorize  # type: ignore[method-assign]


def _authorize_deleted_keys() -> None:
    """DeleteObjects: each key authorized for its own action (10), a key denied an entry of the answer."""
    from moto.s3.models import FakeBucket
    from moto.s3.responses import S3Response

    # DeleteObjects: moto asks the bucket's policy about each key, in the request's order;
    # the caller's identity policies are asked here too, for the key's own action.
    pending = threading.local()
    original_delete_keys = S3Response._bucket_response_delete_keys
    original_permission = FakeBucket.get_permission

    def delete_keys(self: Any, bucket_name: str, authenticated: bool = True) -> Any:
        iam_request = getattr(self, "local_iam_request", None)
        if iam_request is None or not authenticated:
            return original_delete_keys(self, bucket_name, authenticated)
        import xmltodict

        objects = xmltodict.parse(self.body, strip_whitespace=False)["Delete"].get("Object", [])
        objects = objects if isinstance(objects, list) else [objects]
        pending.keys = deque((o["Key"], o.get("VersionId")) for o in objects)
        pending.iam_request = iam_request
        try:
            return original_delete_keys(self, bucket_name, authenticated)
        finally:
            pending.keys = None

    def get_permission(self: Any, action: str, resource: str) -> Any:
        from moto.iam.access_control import PermissionResult

        keys = getattr(pending, "keys", None)
        if not keys or action != "s3:DeleteObject":
            return original_permission(self, action, resource)
        key, version = keys.popleft()
        if not resource.endswith(f":::{self.name}/{key}"):
            raise RuntimeError(f"DeleteObjects asked about {resource}, expected the key {key!r}: review workaround 10")
        needed = "s3:DeleteObjectVersion" if version else "s3:DeleteObject"
        if authorization_verdict(pending.iam_request, needed, resource) != ALLOWED:
            return PermissionResult.DENIED
        return original_permission(self, needed, resource)

    S3Response._bucket_response_delete_keys = delete_keys  # type: ignore[method-assign]
    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


# ------------------------------------------------------- IAM: 11, a missing object is 403 without s3:ListBucket

#: Object GETs that are not GetObject (the rule is GetObject's and HeadObject's).
_NOT_GET_OBJECT = frozenset({"uploadId", "tagging", "acl", "attributes", "retention", "legal-hold", "torrent"})


def _answer_missing_keys_as_aws() -> None:
    from moto.s3.exceptions import S3ClientError
    from moto.s3.responses import S3Response

    original = S3Response._key_response

    def hides_absence(self: Any, request: Any, full_url: str) -> bool:
        iam_request = getattr(self, "local_iam_request", None)
        query = parse_qs(urlparse(full_url).query, keep_blank_values=True)
        if iam_request is None or request.method not in ("GET", "HEAD") or _NOT_GET_OBJECT & set(query):
            return False
        partition = iam_request._access_key.partition
        bucket = f"arn:{partition}:s3:::{self.parse_bucket_name_from_url(request, full_url)}"
        return authorization_verdict(iam_request, "s3:ListBucket", bucket) != ALLOWED

    def key_response(self: Any, request: Any, full_url: str) -> Any:
        try:
            answer = original(self, request, full_url)
        except S3ClientError as error:
            if error.code in ("NoSuchKey", "NoSuchVersion") and hides_absence(self, request, full_url):
                raise _denial("s3", "Access Denied") from None
            raise
        if isinstance(answer, tuple) and answer[0] == 404 and hides_absence(self, request, full_url):
            return 403, {}, ""
        return answer

    S3Response._key_response = key_response  # type: ignore[method-assign]
