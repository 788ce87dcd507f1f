"""A tenant's large_file_config, and the decisions it makes (pure: no I/O, no clock).

An attachment whose fetched, decoded content is over `max_size_mb` is refused (the message
fails), sent with a warning, or stored and replaced by a download link in the body that works
for `file_ttl_days`. The link points at the proxy itself (GET /files/{token}), not at S3: a
presigned URL signed with a Lambda role's temporary credentials dies with that session, hours
later, and links must live for days.

Expiry is kept twice, so the file and its link go together: the link's item carries its
`expires_at` (DynamoDB TTL removes it; the API also checks it, TTL deletion can lag by days),
and the object sits under a prefix per lifetime, `large-files/ttl-<days>d/`, that the bucket's
lifecycle rule for that prefix expires after the same number of days. S3 lifecycle rules go
by prefix, hence one prefix (and one rule) per possible `file_ttl_days`.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mailproxy.domain.errors import FieldProblem, InvalidRequest
from mailproxy.domain.s3_uri import is_s3_uri, split_s3_uri

MIB = 1024 * 1024
DEFAULT_MAX_SIZE_MB = 10.0
DEFAULT_FILE_TTL_DAYS = 30
# One S3 lifecycle rule per possible lifetime (a bucket holds at most 1,000 rules).
MAX_FILE_TTL_DAYS = 365
# Beyond this nothing a mail server or the fetchers accept is ever "large": a typo, not a limit.
MAX_SIZE_MB_LIMIT = 100_000
# Where rewritten attachments go in the payload bucket (and, under a tenant's storage_url
# prefix, in its own bucket).
LARGE_FILES_PREFIX = "large-files"
ACTIONS = ("warn", "reject", "rewrite")
Action = Literal["warn", "reject", "rewrite"]

# S3 bucket names: 3..63 lowercase letters, digits, dots and hyphens, letters or digits at the ends.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9!_.*'()-]+$")


def _storage_url_problem(url: str) -> str | None:
    if not is_s3_uri(url):
        return "must be an s3://bucket or s3://bucket/prefix location"
    bucket, prefix = split_s3_uri(url)
    if not _BUCKET.match(bucket) or ".." in bucket:
        return f"{bucket!r} is not an S3 bucket name"
    parts = prefix.rstrip("/").split("/") if prefix.rstrip("/") else []
    for part in parts:
        if part in ("", ".", "..") or not _PREFIX_PART.match(part):
            return (
                "the prefix may hold letters, digits and !_.*'()- between single '/', "
                "and no '.' or '..' segment"
            )
    return None


class LargeFileConfig(BaseModel):
    """large_file_config as stored: every field has its value (defaults filled in)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    enabled: bool = False
    # In MB of 1,048,576 bytes, as the attachment caps elsewhere are counted.
    max_size_mb: float = Field(
        default=DEFAULT_MAX_SIZE_MB, gt=0, le=MAX_SIZE_MB_LIMIT, allow_inf_nan=False
    )
    storage_url: str | None = Field(default=None, max_length=1024)
    action: Action = "warn"
    file_ttl_days: int = Field(default=DEFAULT_FILE_TTL_DAYS, ge=1, le=MAX_FILE_TTL_DAYS)

    @field_validator("storage_url")
    @classmethod
    def _s3_location(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = _storage_url_problem(value)
        if problem:
            raise ValueError(problem)
        return value.rstrip("/")

    @property
    def max_size_bytes(self) -> int:
        return int(self.max_size_mb * MIB)


class LargeFileConfigPatch(BaseModel):
    """large_file_config in PUT /tenant/{id}: the fields given change, the others stay; a
    field given as null goes back to its default (storage_url: none)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    enabled: bool | None = None
    max_size_mb: float | None = Field(default=None, gt=0, le=MAX_SIZE_MB_LIMIT, allow_inf_nan=False)
    storage_url: str | None = Field(default=None, max_length=1024)
    action: Action | None = None
    file_ttl_days: int | None = Field(default=None, ge=1, le=MAX_FILE_TTL_DAYS)


def patched_config(current: LargeFileConfig | None, patch: LargeFileConfigPatch) -> LargeFileConfig:
    """The config after a partial update, validated whole; InvalidRequest (naming
    large_file_config.<field>) when the result is not a valid config."""
    merged = current.model_dump() if current is not None else {}
    for name, value in patch.model_dump(exclude_unset=True).items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    try:
        return LargeFileConfig.model_validate(merged)
    except ValidationError as error:
        raise InvalidRequest(
            [
                FieldProblem(("body", "large_file_config", *item["loc"]), item["msg"], item["type"])
                for item in error.errors()
            ]
        ) from None


# -- what is over ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSize:
    """One attachment as the policy sees it: its delivered name and decoded size."""

    filename: str
    size: int


def over_limit(files: list[FileSize], config: LargeFileConfig | None) -> list[int]:
    """Positions of the files the config calls large (none when it is off or absent)."""
    if config is None or not config.enabled:
        return []
    limit = config.max_size_bytes
    return [index for index, file in enumerate(files) if file.size > limit]


def human_size(size: int) -> str:
    """Bytes as a person reads them, in the units of max_size_mb (1 MB = 1,048,576 bytes)."""
    if size >= MIB:
        return f"{size / MIB:.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size} bytes"


def _limit_text(config: LargeFileConfig) -> str:
    return f"{config.max_size_mb:g} MB"


def rejection(file: FileSize, config: LargeFileConfig) -> str:
    """The permanent error of a message refused for a large attachment."""
    return (
        f"Attachment {file.filename} is {human_size(file.size)} ({file.size} bytes), over the "
        f"tenant's large-file limit of {_limit_text(config)} (large_file_config.action reject)"
    )


# -- where a rewritten file goes ---------------------------------------------------------------


@dataclass(frozen=True)
class StorageLocation:
    bucket: str
    # Ends with "/": objects of this lifetime go under it.
    prefix: str


def ttl_prefix(days: int) -> str:
    """The payload bucket's prefix for objects that live `days` days (one lifecycle rule each)."""
    return f"{LARGE_FILES_PREFIX}/ttl-{days}d/"


def storage_location(
    config: LargeFileConfig, payload_bucket: str | None, allowed_buckets: frozenset[str]
) -> StorageLocation | None:
    """The tenant's storage_url when its bucket is on the deployment's S3 allow-list (the one
    s3:// attachments are read from), else the payload bucket; None when neither exists."""
    if config.storage_url:
        bucket, prefix = split_s3_uri(config.storage_url)
        if bucket in allowed_buckets:
            base = f"{prefix}/" if prefix else ""
            return StorageLocation(bucket, f"{base}{ttl_prefix(config.file_ttl_days)}")
    if payload_bucket is None:
        return None
    return StorageLocation(payload_bucket, ttl_prefix(config.file_ttl_days))


def object_key(location: StorageLocation, tenant_id: str, object_id: str) -> str:
    # No filename in the key: the download names the file (Content-Disposition), and a key
    # holds nothing a tenant chose but its id (a safe alphabet).
    return f"{location.prefix}{tenant_id}/{object_id}"


def expires_at(now: float, config: LargeFileConfig) -> float:
    return now + config.file_ttl_days * 86_400


# -- the link and the note ---------------------------------------------------------------------


def token_hash(token: str) -> str:
    """The key a download token is stored under: the token itself is never stored."""
    return hashlib.sha256(token.encode()).hexdigest()


# secrets.token_urlsafe(32) gives 43 characters of this alphabet.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


def plausible_token(token: str) -> bool:
    """Whether a path segment could be a token at all (anything else is not looked up)."""
    return bool(_TOKEN.match(token))


@dataclass(frozen=True)
class FileLink:
    """What a download token opens: one stored object, until expires_at (epoch seconds)."""

    bucket: str
    key: str
    filename: str
    content_type: str
    size: int
    tenant_id: str
    message_id: str
    created_at: float
    expires_at: float


def download_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/files/{token}"


@dataclass(frozen=True)
class DownloadLink:
    filename: str
    size: int
    url: str


@dataclass(frozen=True)
class BodyNote:
    """The same note for a plain text body and for an html one."""

    text: str
    html: str


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def download_note(links: list[DownloadLink], until: float) -> BodyNote:
    """What the body gains when files were taken out: each file, its size and its link, and
    until when the links work."""
    heading = (
        f"{'This attachment was' if len(links) == 1 else 'These attachments were'} too large "
        f"to send with this message. Download until {_utc(until)}:"
    )
    text_lines = [f"- {link.filename} ({human_size(link.size)}): {link.url}" for link in links]
    items = "".join(
        f'<li><a href="{html.escape(link.url, quote=True)}">{html.escape(link.filename)}</a>'
        f" ({html.escape(human_size(link.size))})</li>"
        for link in links
    )
    return BodyNote(
        text="\n".join(["", "", "--", heading, *text_lines, ""]),
        html=f"<hr><p>{html.escape(heading)}</p><ul>{items}</ul>",
    )


_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def with_note(body: str, content_type: str | None, note: BodyNote) -> str:
    """The body with the note at its end (inside an html document's <body>, when it has one)."""
    if content_type != "html":
        return body.rstrip("\n") + note.text
    ends = list(_BODY_END.finditer(body))
    if not ends:
        return body + note.html
    at = ends[-1].start()
    return body[:at] + note.html + body[at:]


def content_disposition(filename: str) -> str:
    """`attachment` with the file's name, for any browser: an ASCII fallback and the UTF-8
    name (RFC 6266, RFC 8187)."""
    from urllib.parse import quote

    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
