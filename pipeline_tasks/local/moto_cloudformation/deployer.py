"""The deployer's credentials and clients: how the completions call the services' APIs.

The service APIs are called as the template's deployer would call them: through boto3,
on this server (``MOTO_PORT``), with the local stack's administrator credentials.
"""

from __future__ import annotations

import os
from typing import Any

#: The local stack's administrator credentials (the deployer's; never real ones).
ADMIN_KEY_ID = "testing"
ADMIN_SECRET = "testing"


def client(service: str, region: str) -> Any:
    """A boto3 client of this server, with the deployer's credentials."""
    import boto3

    return boto3.client(
        service,
        region_name=region,
        endpoint_url=f"http://127.0.0.1:{os.environ['MOTO_PORT']}",
        aws_access_key_id=ADMIN_KEY_ID,
        aws_secret_access_key=ADMIN_SECRET,
    )
