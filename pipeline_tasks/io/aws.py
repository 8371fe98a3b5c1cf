"""AWS connections: the boto3 client and resource of any service, configured from Settings.

Every AWS call of the pipeline (S3, DynamoDB, SQS, SNS, Step Functions…) goes through
``client`` or ``resource``, so the endpoint (moto locally), region, credentials and
retry policy are set in one place.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from pipeline_tasks.settings import Settings

_RETRIES = Config(retries={"max_attempts": 8, "mode": "adaptive"})


def client(settings: Settings, service: str) -> Any:
    """A boto3 client for ``service`` configured from Settings (endpoint, region, keys)."""
    return boto3.client(service, **_connection(settings))


def resource(settings: Settings, service: str) -> Any:
    """A boto3 resource for ``service``, configured as ``client`` configures clients."""
    return boto3.resource(service, **_connection(settings))


def _connection(settings: Settings) -> dict[str, Any]:
    return {
        "region_name": settings.region,
        "endpoint_url": settings.aws_endpoint_url,
        "aws_access_key_id": settings.aws_access_key_id,
        "aws_secret_access_key": settings.aws_secret_access_key,
        "aws_session_token": settings.aws_session_token,
        "config": _RETRIES,
    }
