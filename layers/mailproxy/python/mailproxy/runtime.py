"""The collaborators of this execution environment, built on first use and then reused.

Handlers ask here for the store, the queues or the SMTP pool; nothing is built at import,
and a warm environment builds each thing once.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import TYPE_CHECKING

from mailproxy import aws
from mailproxy.config import current_settings

if TYPE_CHECKING:
    from mailproxy.delivery.smtp_pool import SmtpPool
    from mailproxy.outbound_http import UrlPolicy
    from mailproxy.queueing import SqsQueues, Wakeups
    from mailproxy.secret_box import SecretBox
    from mailproxy.service.access import TenantKeys
    from mailproxy.service.submission import SubmissionPolicy
    from mailproxy.store.command_log import CommandLogRecords
    from mailproxy.store.dynamo import Store
    from mailproxy.store.file_objects import FileObjects

# The store (pynamodb, botocore) and the SMTP pool are imported where first built: a
# handler's import stays cheap, and a path that never needs them never pays for them.


@lru_cache(maxsize=1)
def store() -> Store:
    from mailproxy.store.dynamo import Store

    return Store(current_settings().resources, aws.client("s3"))


@lru_cache(maxsize=1)
def command_log() -> CommandLogRecords:
    from mailproxy.store.command_log import CommandLogRecords

    return CommandLogRecords(current_settings().resources.table("commands"))


@lru_cache(maxsize=1)
def file_objects() -> FileObjects:
    from mailproxy.store.file_objects import FileObjects

    return FileObjects(aws.client("s3"), aws.s3_presigner())


@lru_cache(maxsize=1)
def queues() -> SqsQueues:
    from mailproxy.queueing import SqsQueues

    return SqsQueues(current_settings().resources.queue_url, aws.client("sqs"))


@lru_cache(maxsize=1)
def wakeups() -> Wakeups:
    from mailproxy.queueing import Wakeups

    return Wakeups(current_settings().resources.queue_url("wakeups"), aws.client("sqs"))


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


@lru_cache(maxsize=1)
def secret_box() -> SecretBox:
    from mailproxy.secret_box import SecretBox

    return SecretBox(aws.client("kms"), current_settings().resources.key_id("secrets"))


@lru_cache(maxsize=1)
def tenant_keys() -> TenantKeys:
    from mailproxy.service.access import TenantKeys

    return TenantKeys(store(), time.monotonic)


@lru_cache(maxsize=1)
def url_policy() -> UrlPolicy:
    from mailproxy.outbound_http import UrlPolicy

    settings = current_settings()
    return UrlPolicy(
        allow_loopback=settings.allow_loopback_urls, allow_private=settings.allow_private_urls
    )


@lru_cache(maxsize=1)
def submission_policy() -> SubmissionPolicy:
    from mailproxy.service.submission import SubmissionPolicy

    return SubmissionPolicy(url_policy(), current_settings().s3_attachment_buckets)


class _Clock:
    """The environment's clock (a domain.clock.Clock, passed as `clock=` to what reads the
    time): the system's, which local mode may move forward (its tests see a message
    scheduled hours ahead leave without waiting for hours). On AWS nothing moves it."""

    def __init__(self) -> None:
        self.offset_seconds = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset_seconds


clock = _Clock()


_CACHED = (
    store,
    file_objects,
    queues,
    wakeups,
    smtp_pool,
    admin_token,
    secret_box,
    tenant_keys,
    url_policy,
    submission_policy,
    current_settings,
    aws.client,
    aws.s3_presigner,
)


def reset() -> None:
    """Forget everything built so far (tests and local mode point at new resources)."""
    from mailproxy.store.command_log import bound_model
    from mailproxy.store.models import bind_models

    for cached in _CACHED:
        cached.cache_clear()
    bind_models.cache_clear()
    bound_model.cache_clear()


# -- the bounce reader's wiring (issue 13) ----------------------------------------------------

if TYPE_CHECKING:
    from mailproxy.service.ports import BounceTrigger

# Set by local mode (infra/local/run.py): its trigger runs the bouncer's handler in a thread.
_local_bounce_trigger: BounceTrigger | None = None


def use_bounce_trigger(trigger: BounceTrigger | None) -> None:
    global _local_bounce_trigger
    _local_bounce_trigger = trigger


def bounce_trigger() -> BounceTrigger:
    """How the API wakes the bounce reader: local mode's, else an async invoke of the
    function named in MAILPROXY_BOUNCER_FUNCTION."""
    from mailproxy.config import ConfigurationError

    if _local_bounce_trigger is not None:
        return _local_bounce_trigger
    name = current_settings().bouncer_function
    if not name:
        raise ConfigurationError("MAILPROXY_BOUNCER_FUNCTION is not set")
    from mailproxy.bounce_trigger import LambdaBounceTrigger

    return LambdaBounceTrigger(aws.client("lambda"), name)


def bounce_mailbox_for(settings: InstanceSettings, password: str) -> MailboxOpener:
    """The bounce mailbox of these settings: bounce_imap_ssl true is implicit TLS (IMAPS, 993
    by default), false is STARTTLS, required (a server that does not offer it fails the run:
    the password never travels in clear). Certificates verified against the system's CAs."""
    from mailproxy.delivery.imap_mailbox import ImapMailbox, ImapSettings

    imap = ImapSettings(
        host=settings.bounce_imap_host or "",
        port=settings.bounce_imap_port,
        user=settings.bounce_imap_user or "",
        password=password,
        folder=settings.bounce_imap_folder,
        security="ssl" if settings.bounce_imap_ssl else "starttls",
    )
    return lambda: ImapMailbox(imap)


if TYPE_CHECKING:
    from mailproxy.domain.instance import InstanceSettings
    from mailproxy.service.ports import MailboxOpener


# How long a sender environment keeps the instance's bounce_return_path before reading it
# again: a change reaches every sender within this, at one read per environment and minute.
RETURN_PATH_TTL_SECONDS = 60.0


class _InstanceReturnPath:
    """The instance's bounce_return_path, cached per environment for a short time; read
    again for a new store (runtime.reset: tests and local mode point at new resources)."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._cached: tuple[object, str | None, float] | None = None

    def __call__(self) -> str | None:
        current = store()
        now = time.monotonic()
        with self._lock:
            cached = self._cached
        if cached is not None and cached[0] is current and now < cached[2]:
            return cached[1]
        stored = current.get_instance_settings()
        value = stored.settings.bounce_return_path if stored is not None else None
        with self._lock:
            self._cached = (current, value, now + RETURN_PATH_TTL_SECONDS)
        return value


instance_return_path = _InstanceReturnPath()
