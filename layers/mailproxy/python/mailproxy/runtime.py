"""The collaborators of this execution environment, built on first use and then reused.

Handlers ask here for the store, the queues or the SMTP pool; nothing is built at import,
and a warm environment builds each thing once.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from mailproxy import aws
from mailproxy.config import current_settings

if TYPE_CHECKING:
    from mailproxy.delivery.smtp_pool import SmtpPool
    from mailproxy.queueing import SqsQueues
    from mailproxy.store.dynamo import Store

# The store (pynamodb, botocore) and the SMTP pool are imported where first built: a
# handler's import stays cheap, and a path that never needs them never pays for them.


@lru_cache(maxsize=1)
def store() -> Store:
    from mailproxy.store.dynamo import Store

    return Store(current_settings().resources)


@lru_cache(maxsize=1)
def queues() -> SqsQueues:
    from mailproxy.queueing import SqsQueues

    return SqsQueues(current_settings().resources.queue_url, aws.client("sqs"))


@lru_cache(maxsize=1)
def smtp_pool() -> SmtpPool:
    from mailproxy.delivery.smtp_pool import SmtpPool

    return SmtpPool()


@lru_cache(maxsize=1)
def admin_token() -> str | None:
    settings = current_settings()
    if settings.admin_token:
        return settings.admin_token
    if settings.admin_token_secret_arn:
        response = aws.client("secretsmanager").get_secret_value(
            SecretId=settings.admin_token_secret_arn
        )
        return str(response["SecretString"])
    return None


def reset() -> None:
    """Forget everything built so far (tests and local mode point at new resources)."""
    for cached in (store, queues, smtp_pool, admin_token, current_settings, aws.client):
        cached.cache_clear()
