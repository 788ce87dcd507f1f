"""A tenant's large_file_config applied to a message's fetched attachments, before the MIME
message is built: refuse the message, let it go with a warning, or store the large files and
put download links in the body instead (README, "Large attachments")."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailproxy.domain.errors import DeliveryError, StorageFailure
from mailproxy.domain.large_files import (
    BodyNote,
    DownloadLink,
    FileLink,
    FileSize,
    LargeFileConfig,
    download_note,
    download_url,
    expires_at,
    object_key,
    over_limit,
    rejection,
    storage_location,
    token_hash,
)
from mailproxy.service.ports import FileLinkStore, FileVault

if TYPE_CHECKING:
    from mailproxy.delivery.mime import FetchedAttachment

# A fresh token colliding with a stored one means a broken random source; never loop on it.
_TOKEN_ATTEMPTS = 3


def _new_token() -> str:
    return secrets.token_urlsafe(32)


def _new_object_id() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True)
class LargeFileSetup:
    """What rewriting needs in this deployment. `vault` is called for the FileVault only when
    a file is stored (most messages never need an S3 client)."""

    vault: Callable[[], FileVault] | None = None
    links: FileLinkStore | None = None
    payload_bucket: str | None = None
    # The deployment's S3 allow-list (s3:// attachments); a storage_url elsewhere is not used.
    allowed_buckets: frozenset[str] = frozenset()
    public_base_url: str | None = None
    new_token: Callable[[], str] = field(default=_new_token)
    new_object_id: Callable[[], str] = field(default=_new_object_id)


@dataclass(frozen=True)
class LargeFileAction:
    """One large attachment and what was done with it, for the log (never the token)."""

    action: str
    filename: str
    size: int
    max_size_mb: float
    bucket: str | None = None
    key: str | None = None
    expires_at: float | None = None

    def as_log_keys(self) -> dict[str, object]:
        keys: dict[str, object] = {
            "large_file_action": self.action,
            "attachment": self.filename,
            "size_bytes": self.size,
            "max_size_mb": self.max_size_mb,
            "bucket": self.bucket,
            "key": self.key,
            "link_expires_at": int(self.expires_at) if self.expires_at is not None else None,
        }
        return {name: value for name, value in keys.items() if value is not None}


@dataclass(frozen=True)
class Applied:
    """The attachments that go in the mail, the note the body gains, and what was done."""

    attachments: list[FetchedAttachment]
    note: BodyNote | None = None
    actions: list[LargeFileAction] = field(default_factory=list)


def apply_large_file_config(
    tenant_id: str,
    message_id: str,
    attachments: list[FetchedAttachment],
    config: LargeFileConfig | None,
    setup: LargeFileSetup,
    now: float,
) -> Applied:
    """Raises DeliveryError: permanent for a refused message (or one that cannot be rewritten
    in this deployment), temporary when storing a file failed."""
    # Imported here: the sender's context imports this module at cold start, and the message
    # model is among its heaviest modules.
    from mailproxy.domain.message import delivered_filename

    files = [FileSize(delivered_filename(a.filename), len(a.content)) for a in attachments]
    over = over_limit(files, config)
    if not over or config is None:
        return Applied(attachments)
    if config.action == "reject":
        raise DeliveryError(rejection(files[over[0]], config), temporary=False)
    if config.action == "warn":
        return Applied(
            attachments,
            actions=[
                LargeFileAction("warn", files[i].filename, files[i].size, config.max_size_mb)
                for i in over
            ],
        )
    return _rewrite(tenant_id, message_id, attachments, files, over, config, setup, now)


def _rewrite(
    tenant_id: str,
    message_id: str,
    attachments: list[FetchedAttachment],
    files: list[FileSize],
    over: list[int],
    config: LargeFileConfig,
    setup: LargeFileSetup,
    now: float,
) -> Applied:
    from mailproxy.delivery.mime import mime_type_of

    location = storage_location(config, setup.payload_bucket, setup.allowed_buckets)
    if location is None or setup.vault is None or setup.links is None:
        raise _cannot_rewrite(files[over[0]], "no bucket to store it in")
    if not setup.public_base_url:
        raise _cannot_rewrite(
            files[over[0]], "the proxy's public URL (MAILPROXY_PUBLIC_BASE_URL) is not set"
        )
    vault = setup.vault()
    until = expires_at(now, config)
    links: list[DownloadLink] = []
    actions: list[LargeFileAction] = []
    for index in over:
        file, attachment = files[index], attachments[index]
        key = object_key(location, tenant_id, setup.new_object_id())
        content_type = mime_type_of(attachment)
        try:
            vault.put(location.bucket, key, attachment.content, content_type, file.filename)
            link = FileLink(
                bucket=location.bucket,
                key=key,
                filename=file.filename,
                content_type=content_type,
                size=file.size,
                tenant_id=tenant_id,
                message_id=message_id,
                created_at=now,
                expires_at=until,
            )
            token = _store_link(link, setup)
        except StorageFailure as failure:
            # Temporary: the next attempt stores it again (under a new key and token).
            raise DeliveryError(
                f"Large attachment storage failed for {file.filename}: {failure.detail}",
                temporary=True,
            ) from None
        url = download_url(setup.public_base_url, token)
        links.append(DownloadLink(file.filename, file.size, url))
        actions.append(
            LargeFileAction(
                "rewrite",
                file.filename,
                file.size,
                config.max_size_mb,
                bucket=location.bucket,
                key=key,
                expires_at=until,
            )
        )
    taken = set(over)
    kept = [attachment for i, attachment in enumerate(attachments) if i not in taken]
    return Applied(kept, download_note(links, until), actions)


def _store_link(link: FileLink, setup: LargeFileSetup) -> str:
    assert setup.links is not None
    for _ in range(_TOKEN_ATTEMPTS):
        token = setup.new_token()
        if setup.links.put_file_link(token_hash(token), link):
            return token
    raise StorageFailure("no unused download token could be made")


def _cannot_rewrite(file: FileSize, why: str) -> DeliveryError:
    return DeliveryError(
        f"Attachment {file.filename} is over the tenant's large-file limit and "
        f"large_file_config.action is rewrite, but this deployment cannot store it: {why}",
        temporary=False,
    )
