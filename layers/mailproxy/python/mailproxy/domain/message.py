"""The message a client submits, validated as the HTTP contract (SPEC.md) describes it.

Everything that ends up in a header of the sent email (addresses, subject, custom headers,
ids, attachment names) is refused when it holds a line break or another control character: a
client must not be able to add headers or split the message (header injection). Every refusal
is a pydantic error located at the field at fault, which the API answers with a 422. The
numbers are in `mailproxy.domain.limits`.
"""

from __future__ import annotations

import ipaddress
import re
import string
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    SerializationInfo,
    StringConstraints,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError, PydanticKnownError

from mailproxy.domain.limits import (
    MAX_ADDRESS_LENGTH,
    MAX_ATTACHMENTS,
    MAX_BATCH_CODE_LENGTH,
    MAX_BODY_BYTES,
    MAX_DOMAIN_LABEL_LENGTH,
    MAX_DOMAIN_LENGTH,
    MAX_FILENAME_LENGTH,
    MAX_HEADER_NAME_LENGTH,
    MAX_HEADER_VALUE_LENGTH,
    MAX_HEADERS,
    MAX_ID_LENGTH,
    MAX_INLINE_ATTACHMENT_LENGTH,
    MAX_LOCAL_PART_LENGTH,
    MAX_MAILBOX_LENGTH,
    MAX_MIME_TYPE_LENGTH,
    MAX_RECIPIENTS,
    MAX_STORAGE_PATH_LENGTH,
    MAX_SUBJECT_LENGTH,
)
from mailproxy.domain.limits import (
    # Re-exported: service.submission imports it from this module.
    MAX_MESSAGES_PER_REQUEST as MAX_MESSAGES_PER_REQUEST,
)
from mailproxy.domain.priority import Priority
from mailproxy.domain.s3_uri import is_s3_uri, s3_uri
from mailproxy.domain.tenant import TenantId

# Serialization context flag: write secrets in the clear (for storage, never for display).
REVEAL_SECRETS = "reveal_secrets"

# -- header injection -----------------------------------------------------------------------------

# C0 controls but TAB, DEL, and the line breaks str.splitlines() honours (NEL, LS, PS): a line
# break in a header value would start a new header; the others have no place in a header.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")


def _no_control_characters(value: str) -> str:
    if _CONTROL_CHARACTERS.search(value):
        raise PydanticCustomError(
            "header_injection",
            "line breaks and other control characters (CR, LF, NUL...) are not allowed here: "
            "the value goes into an email header (header injection)",
        )
    return value


# Text written into a header: its length is checked first (cheap), then its characters.
_NO_CONTROL_CHARACTERS = AfterValidator(_no_control_characters)
MessageKey = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH), _NO_CONTROL_CHARACTERS
]
SubjectText = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_SUBJECT_LENGTH), _NO_CONTROL_CHARACTERS
]
BatchCode = Annotated[
    str, StringConstraints(max_length=MAX_BATCH_CODE_LENGTH), _NO_CONTROL_CHARACTERS
]
# A custom header's value, and message_id: one header line.
HeaderValue = Annotated[
    str, StringConstraints(max_length=MAX_HEADER_VALUE_LENGTH), _NO_CONTROL_CHARACTERS
]
MimeType = Annotated[
    str, StringConstraints(max_length=MAX_MIME_TYPE_LENGTH), _NO_CONTROL_CHARACTERS
]
FileName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_FILENAME_LENGTH), _NO_CONTROL_CHARACTERS
]

# -- addresses ------------------------------------------------------------------------------------

# Hand-written rather than email-validator, measured (2.4.0; check_deliverability=False,
# allow_smtputf8, allow_domain_literal, allow_display_name, strict, globally_deliverable=False,
# test_environment): it refuses addresses the proxy accepts and its tests keep accepting
# (test_message_hardening.GOOD_ADDRESSES): x@localhost (a single-label domain, no option
# allows it), "Jane Q. Public <j@x.test>" and "Zoë Müller <z@x.test>" (a dot, non-ASCII, in
# an unquoted display name). It also costs ~10x per address (~105 us against ~10 us here),
# and its import ~17 ms of CPU more at the api handler's cold start (mostly compiling
# rfc_constants' regular expressions): 1.47 to ~1.6 times boto3, past bench/cold_start.py's
# target of 1.5. All that for the ~100 lines below.

_ATEXT = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~")
_LABEL_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-")
# Characters an unquoted display name cannot hold (RFC 5322 specials but "."; "." is obs-phrase).
_DISPLAY_NAME_SPECIALS = frozenset('"<>@,;:\\[]()')


def _invalid_address(reason: str) -> PydanticCustomError:
    return PydanticCustomError(
        "invalid_address",
        "not an email address (expected addr-spec or Display Name <addr-spec>): {reason}",
        {"reason": reason},
    )


def _is_utf8_text(character: str) -> bool:
    """A non-ASCII character allowed in an internationalised address (RFC 6531/6532)."""
    return ord(character) > 127 and unicodedata.category(character)[0] not in "CZ"


def _octets(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _check_local_part(local: str) -> None:
    if _octets(local) > MAX_LOCAL_PART_LENGTH:
        raise _invalid_address(
            f"the part before the @ is longer than {MAX_LOCAL_PART_LENGTH} bytes"
        )
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise _invalid_address(
            "the part before the @ cannot start or end with a dot, or hold two dots in a row"
        )
    for character in local:
        if character != "." and character not in _ATEXT and not _is_utf8_text(character):
            raise _invalid_address(f"{character!r} is not allowed before the @")


def _check_domain_literal(domain: str) -> None:
    literal = domain[1:-1]
    try:
        if literal[:5].lower() == "ipv6:":
            ipaddress.IPv6Address(literal[5:])
        else:
            ipaddress.IPv4Address(literal)
    except ValueError:
        raise _invalid_address(
            "a domain in [brackets] must be an IPv4 address or IPv6:<address>"
        ) from None


def _check_domain(domain: str) -> None:
    if _octets(domain) > MAX_DOMAIN_LENGTH:
        raise _invalid_address(f"the domain is longer than {MAX_DOMAIN_LENGTH} bytes")
    if domain.startswith("[") and domain.endswith("]"):
        _check_domain_literal(domain)
        return
    for label in domain.split("."):
        if not label:
            raise _invalid_address("the domain has an empty label (a stray dot)")
        if _octets(label) > MAX_DOMAIN_LABEL_LENGTH:
            raise _invalid_address(f"a domain label is longer than {MAX_DOMAIN_LABEL_LENGTH} bytes")
        if label.startswith("-") or label.endswith("-"):
            raise _invalid_address("a domain label cannot start or end with a hyphen")
        for character in label:
            if character not in _LABEL_CHARACTERS and not _is_utf8_text(character):
                raise _invalid_address(f"{character!r} is not allowed in the domain")


def check_addr_spec(address: str) -> str:
    """`local@domain`, as RFC 5321 takes it in MAIL FROM and RCPT TO: a dot-atom local part
    (UTF-8 allowed, quoted local parts not) and a host name or an address literal."""
    if not address:
        raise _invalid_address("the address is empty")
    if any(character.isspace() for character in address):
        raise _invalid_address("whitespace inside the address")
    if _octets(address) > MAX_ADDRESS_LENGTH:
        raise _invalid_address(f"the address is longer than {MAX_ADDRESS_LENGTH} bytes")
    if address.count("@") != 1:
        reason = "no @" if "@" not in address else "more than one @"
        raise _invalid_address(f"{reason} in the address")
    local, _, domain = address.partition("@")
    if not local:
        raise _invalid_address("nothing before the @")
    if not domain:
        raise _invalid_address("no domain after the @")
    _check_local_part(local)
    _check_domain(domain)
    return address


def _closing_quote(text: str) -> int:
    """Where the quoted string that opens `text` ends; backslash escapes the next character."""
    escaped = False
    for index, character in enumerate(text[1:], start=1):
        if escaped:
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == '"':
            return index
    raise _invalid_address("the quoted display name has no closing quote")


def parse_mailbox(text: str) -> tuple[str, str]:
    """(display name, addr-spec) of `addr-spec` or `Display Name <addr-spec>`.

    Written here rather than with email.utils.parseaddr or email.headerregistry: those accept
    what a header parser can recover from (and their leniency changes between Python patch
    releases), while a submission should be refused when it is not an address.
    """
    mailbox = text.strip(" \t")
    if "<" not in mailbox and ">" not in mailbox:
        return "", check_addr_spec(mailbox)
    if mailbox.startswith('"'):
        end = _closing_quote(mailbox)
        display, rest = mailbox[: end + 1], mailbox[end + 1 :].lstrip(" \t")
    else:
        opening = mailbox.find("<")
        if opening < 0:
            raise _invalid_address("'>' without '<'")
        display, rest = mailbox[:opening].rstrip(" \t"), mailbox[opening:]
        specials = sorted(set(display) & _DISPLAY_NAME_SPECIALS)
        if specials:
            raise _invalid_address(
                f"the display name holds {''.join(specials)!r}: put it in double quotes"
            )
    if not rest.startswith("<"):
        raise _invalid_address("expected <addr-spec> after the quoted display name")
    if not rest.endswith(">"):
        raise _invalid_address("'<' without '>', or text after the '>'")
    address = rest[1:-1]
    if "<" in address or ">" in address:
        raise _invalid_address("unbalanced angle brackets")
    return display, check_addr_spec(address)


def _mailbox(value: str) -> str:
    """An address as it goes into From, To, Cc or Reply-To; kept as given, spaces trimmed."""
    _no_control_characters(value)
    parse_mailbox(value)
    return value.strip(" \t")


def _envelope_address(value: str) -> str:
    """The envelope sender (MAIL FROM): `a@b` or `<a@b>`, stored as `a@b`."""
    _no_control_characters(value)
    display, address = parse_mailbox(value)
    if display:
        raise PydanticCustomError(
            "invalid_address",
            "the return path is the envelope sender (MAIL FROM): a bare address such as "
            "bounces@example.com, without a display name",
        )
    return address


Mailbox = Annotated[str, StringConstraints(max_length=MAX_MAILBOX_LENGTH), AfterValidator(_mailbox)]
EnvelopeAddress = Annotated[
    str, StringConstraints(max_length=MAX_MAILBOX_LENGTH), AfterValidator(_envelope_address)
]


def split_addresses(text: str) -> list[str]:
    """`a@x, "Doe, J" <j@x>` -> two addresses: a comma inside double quotes does not split."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for character in text:
        if escaped:
            escaped = False
        elif quoted and character == "\\":
            escaped = True
        elif character == '"':
            quoted = not quoted
        elif character == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(character)
    parts.append("".join(current))
    return parts


def _address_list(value: Any) -> Any:
    """Accept a list or a comma-separated string; blanks are dropped.

    Only spaces and tabs are trimmed: a line break anywhere is refused, never silently removed.
    """
    if isinstance(value, str):
        return [part.strip(" \t") for part in split_addresses(value) if part.strip(" \t")]
    if isinstance(value, list):
        return [item.strip(" \t") if isinstance(item, str) else item for item in value]
    return value


AddressList = Annotated[
    list[Mailbox], BeforeValidator(_address_list), Field(max_length=MAX_RECIPIENTS)
]
PriorityValue = int | str

# -- custom headers -------------------------------------------------------------------------------

# Written by the proxy, or given by a field the proxy builds the message from: a custom header
# that set one would forge the proxy's own headers, duplicate a field or break the MIME
# structure. Every other well-formed header goes through (Sender, X-Priority, List-Unsubscribe,
# List-Id, Precedence, ...); Reply-To is taken as the reply_to field (see Message).
RESERVED_HEADER_NAMES = frozenset(
    name.lower()
    for name in (
        "From",
        "To",
        "Cc",
        "Bcc",
        "Subject",
        "Message-ID",
        "X-Genro-Mail-ID",
        "Return-Path",
        "Date",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Content-Disposition",
    )
)
# RFC 5322 2.2: a field name is printable US-ASCII (33..126) but the colon.
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")


def _header_name(name: str) -> str:
    if not _FIELD_NAME.fullmatch(name):
        raise PydanticCustomError(
            "header_name",
            "not a header field name: printable US-ASCII characters only, "
            "no space, no colon (RFC 5322)",
        )
    if name.lower() in RESERVED_HEADER_NAMES:
        raise PydanticCustomError(
            "reserved_header",
            "{name} is written by the proxy or set by a message field, not by headers",
            {"name": name},
        )
    return name


HeaderName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_HEADER_NAME_LENGTH),
    AfterValidator(_header_name),
]


def parse_priority(value: PriorityValue | None) -> Priority | None:
    return None if value is None else Priority.parse(value)


class AttachmentAuth(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    method: Literal["none", "bearer", "basic"] = "none"
    token: SecretStr | None = None
    user: str | None = None
    password: SecretStr | None = None

    @field_serializer("token", "password")
    def _reveal_for_storage(self, value: SecretStr | None, info: SerializationInfo) -> str | None:
        # Kept for the sender, which needs the credentials; masked anywhere else.
        if value is None:
            return None
        if info.context and info.context.get(REVEAL_SECRETS):
            return value.get_secret_value()
        return str(value)


def _plain_filename(filename: str) -> str:
    if "/" in filename or "\\" in filename or filename in {".", ".."}:
        raise PydanticCustomError(
            "filename_is_a_path",
            "a filename is a name, not a path: no '/' or '\\', and not '.' or '..'",
        )
    return filename


_NOT_VALIDATED = object()


def _s3_location(value: Any) -> str:
    """{"bucket", "key"} as the s3://bucket/key storage_path (the S3 allow-list applies)."""
    if not isinstance(value, dict) or set(value) != {"bucket", "key"}:
        raise PydanticCustomError("s3_location", 's3 is {"bucket": ..., "key": ...}')
    bucket, key = value["bucket"], value["key"]
    if not isinstance(bucket, str) or not _S3_BUCKET.fullmatch(bucket):
        raise PydanticCustomError("s3_location", "s3.bucket is not an S3 bucket name")
    if not isinstance(key, str) or not key or len(key) > MAX_STORAGE_PATH_LENGTH:
        raise PydanticCustomError("s3_location", "s3.key is a non-empty object key")
    return s3_uri(bucket, key)


# S3's bucket naming rules, in short: 3 to 63 lowercase letters, digits, dots and hyphens.
_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


class Attachment(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    filename: Annotated[FileName, AfterValidator(_plain_filename)]
    # Declared before storage_path, whose limit depends on it (fields validate in this order).
    fetch_mode: Literal["base64", "http_url", "endpoint", "s3"] | None = None
    storage_path: str = Field(min_length=1)
    mime_type: MimeType | None = None
    content_md5: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{32}$")
    auth: AttachmentAuth | None = None

    @model_validator(mode="before")
    @classmethod
    def _architecture_page_shapes(cls, data: Any) -> Any:
        """The original proxy's architecture page writes attachments as {filename, content}
        (base64), {filename, url} and {filename, s3: {bucket, key}}: each is the 0.6 API's
        storage_path with its fetch_mode, so every guard of that form applies to it too."""
        if not isinstance(data, dict):
            return data
        given = [key for key in ("content", "url", "s3", "storage_path") if key in data]
        if len(given) > 1:
            raise PydanticCustomError(
                "attachment_sources",
                "an attachment gives one of content, url, s3 or storage_path, not {given}",
                {"given": ", ".join(given)},
            )
        if not given or given[0] == "storage_path":
            return data
        source = given[0]
        data = dict(data)
        value = data.pop(source)
        mode = {"content": "base64", "url": "http_url", "s3": "s3"}[source]
        if data.get("fetch_mode", mode) != mode:
            raise PydanticCustomError(
                "attachment_sources",
                "{source} is fetched as {mode}, not as fetch_mode {fetch_mode}",
                {"source": source, "mode": mode, "fetch_mode": data["fetch_mode"]},
            )
        if source == "s3":
            value = _s3_location(value)
        return {**data, "fetch_mode": mode, "storage_path": value}

    @field_validator("storage_path")
    @classmethod
    def _storage_path_fits_its_mode(cls, path: str, info: ValidationInfo) -> str:
        # A fetch_mode that failed its own validation is absent from info.data: it is reported
        # already, so only the largest limit applies here.
        fetch_mode = info.data.get("fetch_mode", _NOT_VALIDATED)
        if fetch_mode is None and path.startswith("/"):
            raise PydanticCustomError(
                "local_file",
                "local file paths are not served by this proxy: use base64:, http(s)://, "
                "s3:// or an endpoint storage_path",
            )
        inline = fetch_mode == "base64" or (
            fetch_mode in (None, _NOT_VALIDATED) and path.startswith("base64:")
        )
        if inline or fetch_mode is _NOT_VALIDATED:
            if len(path.removeprefix("base64:")) > MAX_INLINE_ATTACHMENT_LENGTH:
                raise PydanticCustomError(
                    "attachment_too_large",
                    "inline (base64) content is at most {max_length} characters of base64 "
                    "text: larger files go by URL, S3 or endpoint",
                    {"max_length": MAX_INLINE_ATTACHMENT_LENGTH},
                )
        elif len(path) > MAX_STORAGE_PATH_LENGTH:
            raise PydanticKnownError("string_too_long", {"max_length": MAX_STORAGE_PATH_LENGTH})
        return path

    @property
    def resolved_fetch_mode(self) -> str:
        if self.fetch_mode:
            return self.fetch_mode
        path = self.storage_path
        if path.startswith("base64:"):
            return "base64"
        if path.startswith(("http://", "https://")):
            return "http_url"
        if is_s3_uri(path):
            return "s3"
        return "endpoint"


_MD5_MARKER = re.compile(r"_?\{MD5:[0-9a-fA-F]{32}\}")


def delivered_filename(filename: str) -> str:
    """`report_{MD5:<hash>}.pdf` is delivered as `report.pdf`: the marker is a cache key."""
    return _MD5_MARKER.sub("", filename)


class Message(BaseModel):
    """One message of POST /commands/add-messages; unknown top-level fields are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)

    id: MessageKey
    tenant_id: TenantId | None = None
    account_id: MessageKey | None = None
    from_addr: Mailbox = Field(
        min_length=1,
        validation_alias=AliasChoices("from", "from_addr"),
        serialization_alias="from",
    )
    to: AddressList = Field(min_length=1)
    cc: AddressList | None = None
    bcc: AddressList | None = None
    reply_to: Mailbox | None = None
    return_path: EnvelopeAddress | None = None
    subject: SubjectText
    body: str = ""
    content_type: Literal["plain", "html"] = "plain"
    headers: dict[HeaderName, HeaderValue] | None = Field(default=None, max_length=MAX_HEADERS)
    message_id: HeaderValue | None = None
    attachments: list[Attachment] | None = Field(default=None, max_length=MAX_ATTACHMENTS)
    priority: PriorityValue | None = None
    deferred_ts: float | None = None
    batch_code: BatchCode | None = None

    @field_validator("to", "cc", "bcc")
    @classmethod
    def _at_most_max_recipients(cls, value: list[str] | None, info: ValidationInfo) -> Any:
        """To, Cc and Bcc together: the error names the list where the total goes over."""
        if value is None:
            return value
        earlier = {"to": (), "cc": ("to",), "bcc": ("to", "cc")}[info.field_name or "to"]
        total = len(value) + sum(len(info.data.get(name) or []) for name in earlier)
        if total > MAX_RECIPIENTS:
            raise PydanticCustomError(
                "too_many_recipients",
                "at most {max_recipients} recipients per message (to, cc and bcc together), "
                "not {total}: send a mailing in several messages",
                {"max_recipients": MAX_RECIPIENTS, "total": total},
            )
        return value

    @field_validator("body")
    @classmethod
    def _body_fits(cls, body: str) -> str:
        # A character is 1 to 4 bytes in UTF-8: the length alone settles most bodies.
        if len(body) * 4 <= MAX_BODY_BYTES:
            return body
        if len(body) > MAX_BODY_BYTES or _octets(body) > MAX_BODY_BYTES:
            raise PydanticCustomError(
                "body_too_large",
                "the body is at most {max_bytes} bytes (UTF-8)",
                {"max_bytes": MAX_BODY_BYTES},
            )
        return body

    @model_validator(mode="before")
    @classmethod
    def _reply_to_from_headers(cls, data: Any) -> Any:
        """genro-mail-proxy's clients pass Reply-To among the headers: it becomes reply_to,
        validated as an address; the reply_to field wins when both are given."""
        if not isinstance(data, dict) or not isinstance(data.get("headers"), dict):
            return data
        headers = dict(data["headers"])
        given = [name for name in headers if isinstance(name, str) and name.lower() == "reply-to"]
        if not given:
            return data
        values = [headers.pop(name) for name in given]
        data = {**data, "headers": headers}
        if data.get("reply_to") is None and values[-1] is not None:
            data["reply_to"] = values[-1]
        return data

    @field_validator("headers", mode="before")
    @classmethod
    def _header_values_as_text(cls, value: Any) -> Any:
        """A value may be given as a number or a boolean: it is sent as its text; None drops it."""
        if isinstance(value, dict):
            return {
                key: item if isinstance(item, str) else str(item)
                for key, item in value.items()
                if item is not None
            }
        return value

    @field_validator("priority")
    @classmethod
    def _known_priority(cls, value: PriorityValue | None) -> PriorityValue | None:
        parse_priority(value)
        return value

    def effective_priority(self, default: Priority) -> Priority:
        # Not `or default`: Priority.IMMEDIATE is 0, which is falsy.
        parsed = parse_priority(self.priority)
        return default if parsed is None else parsed

    @property
    def recipients(self) -> list[str]:
        """Everyone in the envelope: To, Cc and Bcc."""
        return [*self.to, *(self.cc or []), *(self.bcc or [])]

    def as_submitted(self) -> dict[str, Any]:
        """The payload as stored for the sender: contract names, nulls left out."""
        return self.model_dump(
            mode="json", by_alias=True, exclude_none=True, context={REVEAL_SECRETS: True}
        )


class AddMessagesRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    messages: list[Message]
    default_priority: PriorityValue | None = None

    @field_validator("default_priority")
    @classmethod
    def _known_priority(cls, value: PriorityValue | None) -> PriorityValue | None:
        parse_priority(value)
        return value
