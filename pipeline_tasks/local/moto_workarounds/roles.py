"""Workaround 12: services act with their roles' credentials.

Temporary credentials of roles minted with moto's STS backend (``RoleSessions``), the
trust check a service's AssumeRole makes, and the patch that makes moto's Step Functions
interpreter sign with its state machine's role. Workarounds 2 and 3 mint their tasks' and
functions' credentials here too.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline_tasks.local.moto_workarounds.iam_policies import _CONTEXT, _listed, policy_document, statement_effect

#: Role session of the state machine's calls (12); Lambda's is the function name, ECS's the task id.
STATES_SESSION = "states-execution"


class RoleNotAssumableError(RuntimeError):
    """A service may not assume the role it was given (its trust policy does not name the service)."""


@dataclass(frozen=True)
class RoleCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str


class RoleSessions:
    """Temporary credentials of roles, minted with moto's STS backend as a service's AssumeRole would.

    Cached per role and session name while moto still knows them (a reset of moto forgets them).
    """

    def __init__(self, *, check_trust: bool) -> None:
        self.check_trust = check_trust
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], RoleCredentials] = {}

    def credentials(self, role_arn: str, session: str, service: str, region: str) -> RoleCredentials:
        """Credentials of ``role_arn`` for ``service`` (``lambda.amazonaws.com`` …).

        Raises:
            RoleNotAssumableError: Under enforcement, the role does not exist or does not trust the service.
        """
        from moto.sts.models import sts_backends

        parts = role_arn.split(":")
        if len(parts) < 6:
            raise RoleNotAssumableError(f"{service} cannot assume {role_arn!r}: not a role ARN")
        partition, account = parts[1], parts[4]
        backend = sts_backends[account][partition]
        with self._lock:
            cached = self._cache.get((role_arn, session))
            if cached is not None and backend.get_assumed_role_from_access_key(cached.access_key_id) is not None:
                return cached
            if self.check_trust:
                _check_trust(role_arn, service, account, partition)
            assumed = backend.assume_role(
                region_name=region,
                role_session_name=session,
                role_arn=role_arn,
                policy=None,  # type: ignore[arg-type]
                duration=43200,
                external_id=None,  # type: ignore[arg-type]
            )
            credentials = RoleCredentials(assumed.access_key_id, assumed.secret_access_key, assumed.session_token)
            self._cache[(role_arn, session)] = credentials
            return credentials


def trusts(policy: Mapping[str, Any], role_arn: str, service: str, context: Mapping[str, str]) -> bool:
    """Whether a role's trust policy lets ``service`` assume it (an Allow applies, no Deny does)."""
    effects = [
        statement_effect(statement, "sts:AssumeRole", role_arn, service, context)
        for statement in _listed(policy.get("Statement", []))
    ]
    return "Deny" not in effects and "Allow" in effects


def _check_trust(role_arn: str, service: str, account: str, partition: str) -> None:
    from moto.iam.models import iam_backends

    try:
        role = iam_backends[account][partition].get_role_by_arn(role_arn)
    except Exception:
        raise RoleNotAssumableError(f"{service} cannot assume {role_arn}: the role does not exist") from None
    # The service acts for this account (aws:SourceAccount); its resource's ARN is not known here.
    context = _CONTEXT | {"aws:SourceAccount": account}
    if not trusts(policy_document(role.assume_role_policy_document), role_arn, service, context):
        if service == "states.amazonaws.com":
            raise RoleNotAssumableError(
                "Neither the global service principal states.amazonaws.com, nor the regional one is authorized "
                f"to assume the provided role ({role_arn})."
            )
        raise RoleNotAssumableError(
            f"{role_arn} does not trust {service}: its trust policy does not let it assume the role"
        )


def _call_services_as_the_state_machine(roles: RoleSessions) -> None:
    import boto3
    from botocore.config import Config
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        role_arn = getattr(state_credentials, "role_arn", None)
        if not role_arn:
            return original(region=region, service=service, state_credentials=state_credentials)
        credentials = roles.credentials(role_arn, STATES_SESSION, "states.amazonaws.com", region)
        endpoint = {} if botocore_stubber.enabled else {"endpoint_url": f"http://localhost:{moto_server_port()}"}
        return boto3.client(
            service_name=service,
            region_name=region,
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            aws_session_token=credentials.session_token,
            config=Config(  # as moto's own client
                parameter_validation=False,
                retries={"max_attempts": 0, "total_max_attempts": 1},
                connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
            ),
            **endpoint,
        )

    # The services' modules import the function by name: rebind it in each one loaded, and at its source.
    boto_client.boto_client_for = boto_client_for
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.") and getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]
