"""A pool of SMTP connections, one pool per execution environment, reused across invocations.

A connection is checked out by one sender thread at a time (an SMTP session is not
thread-safe), retired once older than its account's ttl (counted from creation), checked with
NOOP when it sat idle, and replaced when a reused one turns out to be dead before the message
was handed over. Once DATA's final dot has gone out, a lost connection is never retried here:
the server may have taken the message, and the caller must decide (ambiguous delivery).

Several threads may send for one account at once, each on a connection of its own, up to the
account's `max_connections` connections in all (idle, in use or being opened): one more waits
until one is handed back or closed. The bound is per pool key (server, login, password,
tenant), the unit a provider counts sessions by.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mailproxy.delivery.smtp_errors import translate
from mailproxy.domain.account import Account, TlsMode
from mailproxy.domain.errors import AmbiguousDelivery, DeliveryError
from mailproxy.timeouts import (
    SMTP_CONNECT_SECONDS,
    SMTP_SEND_SECONDS,
    SMTP_WAIT_FOR_CONNECTION_SECONDS,
)

NOOP_AFTER_IDLE_SECONDS = 30.0

_LINE_END = re.compile(rb"\r\n|\n|\r(?!\n)")
_LEADING_DOT = re.compile(rb"(?m)^\.")

PoolKey = tuple[str | None, str, int, str | None, TlsMode, str]


@dataclass
class _Connection:
    smtp: smtplib.SMTP
    created_at: float
    last_used: float = field(default=0.0)


def pool_key(account: Account) -> PoolKey:
    """Connections are shared only where the session would be the same: the same server,
    TLS mode and login, for the same tenant, with the same password. Another tenant naming
    the same server and user never borrows a session authenticated with someone else's
    password, and a changed password takes effect on the next send."""
    password = account.password.get_secret_value() if account.password else ""
    fingerprint = hashlib.sha256(password.encode()).hexdigest()
    return (
        account.tenant_id,
        account.host,
        account.port,
        account.user,
        account.tls_mode,
        fingerprint,
    )


class SmtpPool:
    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        ssl_context: Callable[[], ssl.SSLContext] = ssl.create_default_context,
        connect_timeout: float = SMTP_CONNECT_SECONDS,
        send_timeout: float = SMTP_SEND_SECONDS,
        local_hostname: str | None = None,
        wait_timeout: float = SMTP_WAIT_FOR_CONNECTION_SECONDS,
    ) -> None:
        self._monotonic = monotonic
        self._ssl_context_factory = ssl_context
        self._ssl: ssl.SSLContext | None = None
        self._connect_timeout = connect_timeout
        self._send_timeout = send_timeout
        self._local_hostname = local_hostname
        self._wait_timeout = wait_timeout
        self._idle: dict[PoolKey, list[_Connection]] = {}
        # Per key: connections that exist or are being opened (idle ones included).
        self._open: dict[PoolKey, int] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a connection was handed back or closed
        self.connections_opened = 0

    def send(
        self, account: Account, envelope_from: str, recipients: list[str], message: bytes
    ) -> dict[str, str]:
        """Send one message; returns the refused recipients (when some were accepted).
        Raises DeliveryError (AmbiguousDelivery once the data was handed over)."""
        key = pool_key(account)
        reused = self._check_out(key, account)
        if reused is not None:
            try:
                return self._send_on(reused, key, account, envelope_from, recipients, message)
            except _StaleConnection:
                # Died before the message left (and was closed): a fresh connection may serve
                # it, once there is room for one.
                self._reserve(key, account)
        fresh = self._connect(key, account)
        try:
            return self._send_on(fresh, key, account, envelope_from, recipients, message)
        except _StaleConnection as error:
            raise DeliveryError(
                f"Connection lost before the message was sent: {error.__cause__ or error}",
                temporary=True,
                smtp_code=error.smtp_code,
            ) from error

    def close_all(self) -> None:
        """Close the idle connections (those in use are closed when handed back)."""
        with self._changed:
            idle, self._idle = self._idle, {}
            for key, connections in idle.items():
                self._open[key] -= len(connections)
            self._changed.notify_all()
        for connections in idle.values():
            for conn in connections:
                _quit_quietly(conn.smtp)

    def _send_on(
        self,
        conn: _Connection,
        key: PoolKey,
        account: Account,
        envelope_from: str,
        recipients: list[str],
        message: bytes,
    ) -> dict[str, str]:
        keep = False
        try:
            refused = _transaction(conn.smtp, envelope_from, recipients, message)
            keep = True
            return refused
        except DeliveryError as error:
            # After a refusal the session was reset and stays usable; after anything else
            # (a lost connection, a 421 "closing channel") it is not.
            keep = (
                error.smtp_code is not None
                and error.smtp_code != 421
                and not isinstance(error, AmbiguousDelivery)
            )
            raise
        finally:
            self._check_in(conn, key, account, keep)

    def _check_out(self, key: PoolKey, account: Account) -> _Connection | None:
        """An idle connection that still serves, or None with room reserved for a new one."""
        deadline = time.monotonic() + self._wait_timeout
        while True:
            with self._changed:
                while not (candidates := self._idle.get(key)):
                    if self._open.get(key, 0) < account.max_connections:
                        self._open[key] = self._open.get(key, 0) + 1
                        return None  # the room reserved is the caller's
                    self._wait(deadline, account)
                conn = candidates.pop()
            if self._still_serves(conn, account):
                return conn
            self._close(conn, key)

    def _reserve(self, key: PoolKey, account: Account) -> None:
        """Room for one more connection of this key, once there are fewer than
        max_connections."""
        deadline = time.monotonic() + self._wait_timeout
        with self._changed:
            while self._open.get(key, 0) >= account.max_connections:
                self._wait(deadline, account)
            self._open[key] = self._open.get(key, 0) + 1

    def _wait(self, deadline: float, account: Account) -> None:
        """Wait (the lock held) for a connection to be handed back or closed."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeliveryError(
                f"No SMTP connection to {account.host} free within {self._wait_timeout:g} s "
                f"(max_connections {account.max_connections})",
                temporary=True,
            )
        self._changed.wait(left)

    def _check_in(self, conn: _Connection, key: PoolKey, account: Account, keep: bool) -> None:
        now = self._monotonic()
        # A connection past its ttl is closed now, not left open until the next send for this
        # account (a ttl of 0 means no connection outlives its message); so is one beyond a
        # max_connections lowered meanwhile.
        with self._changed:
            if (
                keep
                and now - conn.created_at < account.ttl
                and self._open[key] <= account.max_connections
            ):
                conn.last_used = now
                self._idle.setdefault(key, []).append(conn)
                self._changed.notify_all()
                return
        self._close(conn, key)

    def _close(self, conn: _Connection, key: PoolKey) -> None:
        _quit_quietly(conn.smtp)
        with self._changed:
            self._open[key] -= 1
            self._changed.notify_all()

    def _still_serves(self, conn: _Connection, account: Account) -> bool:
        now = self._monotonic()
        if now - conn.created_at >= account.ttl:
            return False
        return now - conn.last_used < NOOP_AFTER_IDLE_SECONDS or _answers_noop(conn.smtp)

    def _ssl_context(self) -> ssl.SSLContext:
        # Built once: loading the trust store costs about 20 ms of CPU per context.
        with self._lock:
            if self._ssl is None:
                self._ssl = self._ssl_context_factory()
            return self._ssl

    def _connect(self, key: PoolKey, account: Account) -> _Connection:
        """A new connection, in the room the caller reserved (given back if it fails)."""
        try:
            smtp = self._open_smtp(account)
        except Exception as error:
            with self._changed:
                self._open[key] -= 1
                self._changed.notify_all()
            raise translate(error) from error
        now = self._monotonic()
        with self._lock:
            self.connections_opened += 1
        return _Connection(smtp, created_at=now, last_used=now)

    def _open_smtp(self, account: Account) -> smtplib.SMTP:
        mode = account.tls_mode
        smtp: smtplib.SMTP
        if mode is TlsMode.IMPLICIT:
            smtp = smtplib.SMTP_SSL(
                account.host,
                account.port,
                local_hostname=self._local_hostname,
                timeout=self._connect_timeout,
                context=self._ssl_context(),
            )
        else:
            smtp = smtplib.SMTP(
                account.host,
                account.port,
                local_hostname=self._local_hostname,
                timeout=self._connect_timeout,
            )
        try:
            if smtp.sock is not None:
                smtp.sock.settimeout(self._send_timeout)
            smtp.ehlo_or_helo_if_needed()
            if mode is TlsMode.STARTTLS:
                smtp.starttls(context=self._ssl_context())
                smtp.ehlo()
            if account.user and account.password:
                smtp.login(account.user, account.password.get_secret_value())
        except BaseException:
            _quit_quietly(smtp)
            raise
        return smtp


class _StaleConnection(Exception):
    """The connection failed before anything of the message was handed over."""

    def __init__(self, smtp_code: int | None = None) -> None:
        super().__init__("connection closed by the server" if smtp_code else "connection lost")
        self.smtp_code = smtp_code


def _answers_noop(smtp: smtplib.SMTP) -> bool:
    try:
        return smtp.noop()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


def _quit_quietly(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _transaction(
    smtp: smtplib.SMTP, envelope_from: str, recipients: list[str], message: bytes
) -> dict[str, str]:
    """MAIL, RCPT, DATA by hand, so that a failure is known to be before or after the point
    where the server may have accepted the message."""
    try:
        code, reply = smtp.mail(envelope_from)
        if code == 421:
            raise _StaleConnection(code)
        if code != 250:
            _reset_quietly(smtp)
            raise smtplib.SMTPSenderRefused(code, reply, envelope_from)
        refused: dict[str, tuple[int, bytes]] = {}
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                refused[recipient] = (code, reply)
        if len(refused) == len(recipients):
            _reset_quietly(smtp)
            raise smtplib.SMTPRecipientsRefused(refused)
        smtp.putcmd("data")
        code, reply = smtp.getreply()
        if code != 354:
            _reset_quietly(smtp)
            raise smtplib.SMTPDataError(code, reply)
    except smtplib.SMTPServerDisconnected as error:
        raise _StaleConnection() from error
    except (ConnectionResetError, BrokenPipeError) as error:
        raise _StaleConnection() from error
    except smtplib.SMTPException as error:
        raise translate(error) from error
    except OSError as error:
        raise translate(error) from error
    try:
        smtp.send(_dot_stuffed(message))
    except (smtplib.SMTPServerDisconnected, OSError) as error:
        # The final dot never got out: the server cannot have accepted the message.
        raise DeliveryError(
            f"Connection lost while sending the message: {error}", temporary=True
        ) from error
    try:
        code, reply = smtp.getreply()
    except (smtplib.SMTPServerDisconnected, OSError) as error:
        raise AmbiguousDelivery(
            f"Connection lost after the message was sent, before the server answered: {error}"
        ) from error
    if code != 250:
        raise translate(smtplib.SMTPDataError(code, reply))
    return {
        recipient: f"{code} {reply.decode('utf-8', 'replace')}"
        for recipient, (code, reply) in refused.items()
    }


def _reset_quietly(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(smtplib.SMTPException, OSError):
        smtp.rset()


def _dot_stuffed(message: bytes) -> bytes:
    # As smtplib.SMTP.data does: CRLF line ends, leading dots doubled, then the final dot.
    data = _LINE_END.sub(b"\r\n", message)
    data = _LEADING_DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"
