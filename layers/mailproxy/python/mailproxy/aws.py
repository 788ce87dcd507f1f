"""boto3 clients, built on first use and cached for the life of the execution environment."""

from __future__ import annotations

from functools import cache
from typing import Any

from mailproxy.timeouts import AWS_CONNECT_SECONDS, AWS_READ_SECONDS


@cache
def client(service: str) -> Any:
    # Imported here: boto3 costs a noticeable share of a cold start, and not every handler
    # path needs it.
    import boto3
    from botocore.config import Config

    # boto3's stubs type client() per service name; here the name is data.
    factory: Any = boto3.client
    return factory(
        service,
        config=Config(
            connect_timeout=AWS_CONNECT_SECONDS,
            read_timeout=AWS_READ_SECONDS,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


@cache
def s3_presigner() -> Any:
    """An S3 client for presigned URLs: SigV4, which botocore does not use for presigning by
    default (its SigV2 URLs are refused in newer regions and for KMS-encrypted objects)."""
    import boto3
    from botocore.config import Config

    factory: Any = boto3.client
    return factory(
        "s3",
        config=Config(
            signature_version="s3v4",
            connect_timeout=AWS_CONNECT_SECONDS,
            read_timeout=AWS_READ_SECONDS,
        ),
    )
