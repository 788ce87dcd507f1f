"""The bounce mailbox over IMAP (stdlib imaplib): one login per run, new mail in UID order,
and processed mail moved out of the folder.

Processed mail is MOVEd (RFC 6851) to `processed_folder` rather than flagged with a keyword:
many servers (Exchange, and pymap, the tests' server) keep no custom keywords (no \\* in
PERMANENTFLAGS), while MOVE or COPY+\\Deleted works on all of them; and what is moved out of the
folder cannot be read again even when the folder's UIDVALIDITY changes (SPEC.md: "moves
processed mail out of the way"). Without MOVE it is COPY, then \\Deleted, then UID EXPUNGE of
that one message (UIDPLUS); with no UIDPLUS the copy stays \\Deleted (a plain EXPUNGE would
remove other \\Deleted mail too) and reads skip \\Deleted mail.

Unmatched notifications stay in the folder, \\Seen (and $MailproxyUnmatched where the server
keeps keywords); the cursor keeps them from being read again, and after a UIDVALIDITY change
the keyword does where there is one.

Every step has the socket's timeout (connect, TLS, login, each command); every imaplib, socket
and TLS failure leaves as MailboxFailure.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from mailproxy.domain.bounces import MailboxCursor, MailboxMessage
from mailproxy.domain.errors import MailboxFailure

Security = Literal["ssl", "starttls", "plain"]
UNMATCHED_KEYWORD = "$MailproxyUnmatched"
# A DSN returning a message with large attachments is read up to this: the report and the
# returned headers come first.
MAX_MESSAGE_BYTES = 2 * 1024 * 1024
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_UID = re.compile(rb"\bUID (\d+)")


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    user: str
    password: str
    folder: str = "INBOX"
    # "ssl": implicit TLS (993); "starttls": upgrade a plain connection; "plain": no TLS
    # (only for a server on a trusted network: the password travels in clear).
    security: Security = "ssl"
    # Flat, so it needs no knowledge of the server's hierarchy delimiter.
    processed_folder: str = "Mailproxy-Processed"
    timeout_seconds: float = 30.0


class ImapMailbox:
    """One IMAP session: open (connect, TLS, login, select the folder), read, mark, close.

    `ssl_context`: a verifying one (certificate and host name) by default; tests pass one that
    trusts their own CA."""

    def __init__(self, settings: ImapSettings, ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self._ssl = ssl_context or ssl.create_default_context()
        self._imap: imaplib.IMAP4 | None = None
        self._uidvalidity: int | None = None
        self._capabilities: frozenset[str] = frozenset()
        self._keywords = False
        self._processed_folder_ready = False

    def __enter__(self) -> ImapMailbox:
        self.open()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def uidvalidity(self) -> int:
        if self._uidvalidity is None:
            raise MailboxFailure("the mailbox is not open")
        return self._uidvalidity

    def open(self) -> int:
        """Connects, logs in and selects the folder; returns its UIDVALIDITY."""
        s = self.settings
        with _translated(f"IMAP {s.host}:{s.port}"):
            if s.security == "ssl":
                imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    s.host, s.port, ssl_context=self._ssl, timeout=s.timeout_seconds
                )
            else:
                imap = imaplib.IMAP4(s.host, s.port, timeout=s.timeout_seconds)
            self._imap = imap
            if s.security == "starttls":
                # The wrapped socket keeps the plain one's timeout.
                imap.starttls(self._ssl)
            imap.login(s.user, s.password)
            # Servers list MOVE and UIDPLUS only once logged in; imaplib keeps the greeting's.
            typ, data = imap.capability()
            _ok(typ, data, "CAPABILITY")
            words = _joined(data).decode("ascii", "replace")
            self._capabilities = frozenset(words.upper().split()) | frozenset(
                c.upper() for c in imap.capabilities
            )
            typ, data = imap.select(_quoted(s.folder))
            _ok(typ, data, f"SELECT {s.folder}")
            responses = imap.untagged_responses
            # imaplib files "[UIDVALIDITY n]" under UIDVALIDITY; the OK lines are the fallback.
            digits = _joined(responses.get("UIDVALIDITY", [])).split()
            found = _UIDVALIDITY.search(_joined(responses.get("OK", [])))
            value = digits[-1] if digits else (found.group(1) if found else None)
            if value is None or not value.isdigit():
                raise MailboxFailure(f"SELECT {s.folder}: the server gave no UIDVALIDITY")
            self._uidvalidity = int(value)
            self._keywords = b"\\*" in _joined(responses.get("PERMANENTFLAGS", []))
        return self._uidvalidity

    def new_messages(self, cursor: MailboxCursor | None) -> Iterator[MailboxMessage]:
        """The folder's mail not yet handled, in UID order: above the cursor's UID while the
        UIDVALIDITY is the cursor's; else (a first run, or the folder was rebuilt) all of it
        but what is marked unmatched. Each is read when the caller asks for it."""
        for uid in self.new_uids(cursor):
            raw = self.fetch(uid)
            if raw is not None:
                yield MailboxMessage(uid, raw)

    def new_uids(self, cursor: MailboxCursor | None) -> list[int]:
        imap = self._session()
        criteria = ["UNDELETED"]
        same = cursor is not None and cursor.uidvalidity == self.uidvalidity
        if same:
            assert cursor is not None
            criteria += ["UID", f"{cursor.last_uid + 1}:*"]
        elif self._keywords:
            criteria += ["UNKEYWORD", UNMATCHED_KEYWORD]
        with _translated("UID SEARCH"):
            typ, data = imap.uid("SEARCH", *criteria)
            _ok(typ, data, "UID SEARCH")
        uids = sorted({int(n) for chunk in data if chunk for n in chunk.split()})
        # "N:*" always includes the highest UID, even below N.
        return [uid for uid in uids if not same or cursor is None or uid > cursor.last_uid]

    def fetch(self, uid: int) -> bytes | None:
        """The message's bytes (up to MAX_MESSAGE_BYTES), without setting \\Seen; None if it
        was expunged meanwhile."""
        imap = self._session()
        with _translated(f"UID FETCH {uid}"):
            typ, data = imap.uid("FETCH", str(uid), f"(BODY.PEEK[]<0.{MAX_MESSAGE_BYTES}>)")
            _ok(typ, data, f"UID FETCH {uid}")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2:
                found = _UID.search(item[0])
                if found is None or int(found.group(1)) == uid:
                    return bytes(item[1])
        return None

    def mark_processed(self, uid: int) -> None:
        """Moves the message out of the folder, to `processed_folder`."""
        imap = self._session()
        target = self._processed_folder()
        with _translated(f"moving UID {uid}"):
            if "MOVE" in self._capabilities:
                typ, data = imap.uid("MOVE", str(uid), target)
                _ok(typ, data, f"UID MOVE {uid}")
                return
            typ, data = imap.uid("COPY", str(uid), target)
            _ok(typ, data, f"UID COPY {uid}")
            typ, data = imap.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)")
            _ok(typ, data, f"UID STORE {uid}")
            if "UIDPLUS" in self._capabilities:
                typ, data = imap.uid("EXPUNGE", str(uid))
                _ok(typ, data, f"UID EXPUNGE {uid}")

    def mark_unmatched(self, uid: int) -> None:
        """Leaves the message in the folder, \\Seen, and keyword-marked where keywords stay."""
        flags = rf"(\Seen {UNMATCHED_KEYWORD})" if self._keywords else r"(\Seen)"
        with _translated(f"UID STORE {uid}"):
            typ, data = self._session().uid("STORE", str(uid), "+FLAGS.SILENT", flags)
            _ok(typ, data, f"UID STORE {uid}")

    def close(self) -> None:
        imap, self._imap = self._imap, None
        if imap is None:
            return
        # The session is over either way; the server drops it.
        with contextlib.suppress(imaplib.IMAP4.error, OSError, EOFError):
            imap.logout()

    def _session(self) -> imaplib.IMAP4:
        if self._imap is None:
            raise MailboxFailure("the mailbox is not open")
        return self._imap

    def _processed_folder(self) -> str:
        target = _quoted(self.settings.processed_folder)
        if not self._processed_folder_ready:
            with _translated(f"CREATE {self.settings.processed_folder}"):
                # NO [ALREADYEXISTS] is the usual answer after the first run.
                self._session().create(target)
            self._processed_folder_ready = True
        return target


def _quoted(folder: str) -> str:
    escaped = folder.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _joined(data: Sequence[object]) -> bytes:
    return b" ".join(d for d in data if isinstance(d, bytes))


def _ok(typ: str, data: Sequence[object], what: str) -> None:
    if typ != "OK":
        detail = _joined(data).decode("utf-8", "replace")
        raise MailboxFailure(f"{what}: {typ} {detail}".strip())


class _translated:
    """Turns imaplib's, the socket's and TLS's failures into MailboxFailure."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if error is None or isinstance(error, MailboxFailure):
            return
        if isinstance(error, TimeoutError):
            raise MailboxFailure(f"{self.what}: timed out") from error
        if isinstance(error, ssl.SSLError | ssl.CertificateError):
            raise MailboxFailure(f"{self.what}: TLS failed ({error})") from error
        if isinstance(error, imaplib.IMAP4.error | OSError | EOFError):
            raise MailboxFailure(f"{self.what}: {error}") from error
