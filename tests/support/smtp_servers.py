"""Real SMTP servers (aiosmtpd) on 127.0.0.1, recording what they receive, with the
behaviours of real servers: STARTTLS, implicit TLS, AUTH, refusals and dropped connections,
a slow greeting or a delay before every reply (a WAN hop), no greeting at all, a 421 in the
middle of a session, a connection lost or stalled right after the message data, and idle
connections dropped; and how many sessions they served at once."""

from __future__ import annotations

import asyncio
import email
import email.policy
import functools
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class RecordingHandler:
    """Accepts mail and keeps it; `rcpt_replies` and `data_reply` make it refuse instead."""

    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        with self.arrived:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
            self.arrived.notify_all()
        return "250 Message accepted"

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)


def _abort(transport: asyncio.BaseTransport | None) -> None:
    """Close at once: nothing buffered is sent, no TLS goodbye is waited for."""
    if isinstance(transport, asyncio.Transport):
        transport.abort()
    elif transport is not None:
        transport.close()


class _BehavingSMTP(SMTP):
    """aiosmtpd's SMTP session with the misbehaviours its SmtpServer asks for."""

    def __init__(self, owner: SmtpServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owner
        self._said_hello = False
        self._in_transaction = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        upgrade = self._original_transport is not None  # STARTTLS: the same connection
        super().connection_made(transport)
        if not upgrade:
            self._owner._live.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._owner._live.discard(self)
        self._end_transaction()
        super().connection_lost(error)

    def _start_transaction(self) -> None:
        if not self._in_transaction:
            self._in_transaction = True
            self._owner._in_transaction += 1
            self._owner.most_transactions_at_once = max(
                self._owner.most_transactions_at_once, self._owner._in_transaction
            )

    def _end_transaction(self) -> None:
        if self._in_transaction:
            self._in_transaction = False
            self._owner._in_transaction -= 1

    async def _handle_client(self) -> None:
        try:
            if self._owner.never_greet:
                await asyncio.Event().wait()  # until the client gives up (cancelled)
            if self._owner.greeting_delay:
                await asyncio.sleep(self._owner.greeting_delay)
        except asyncio.CancelledError:
            _abort(self.transport)  # the client left before the greeting: close our side too
            raise
        await super()._handle_client()

    async def push(self, status: Any) -> None:
        if self.transport is None or self.transport.is_closing():
            return  # a dropped connection answers nothing
        # Once per reply, before its last line (a multi-line reply travels as one).
        if self._owner.reply_delay and str(status)[3:4] != "-":
            await asyncio.sleep(self._owner.reply_delay)
            if self.transport is None or self.transport.is_closing():
                return
        await super().push(status)

    @functools.wraps(SMTP.smtp_EHLO)  # keeps its HELP syntax
    async def smtp_EHLO(self, hostname: str) -> None:
        self._count_hello()
        await super().smtp_EHLO(hostname)

    @functools.wraps(SMTP.smtp_HELO)  # keeps its HELP syntax
    async def smtp_HELO(self, hostname: str) -> None:
        self._count_hello()
        await super().smtp_HELO(hostname)

    @functools.wraps(SMTP.smtp_NOOP)  # keeps its HELP syntax
    async def smtp_NOOP(self, arg: str) -> None:
        self._owner.noops += 1
        await super().smtp_NOOP(arg)

    @functools.wraps(SMTP.smtp_QUIT)  # keeps its HELP syntax
    async def smtp_QUIT(self, arg: str) -> None:
        self._owner.quits += 1
        await super().smtp_QUIT(arg)

    @functools.wraps(SMTP.smtp_MAIL)  # keeps its HELP syntax
    async def smtp_MAIL(self, arg: str | None) -> None:
        if self._owner._take_421():
            await self.push("421 4.3.2 Service shutting down, closing transmission channel")
            assert self.transport is not None
            self.transport.close()
            return
        self._start_transaction()
        await super().smtp_MAIL(arg)

    @functools.wraps(SMTP.smtp_RSET)  # keeps its HELP syntax
    async def smtp_RSET(self, arg: str) -> None:
        self._end_transaction()
        await super().smtp_RSET(arg)

    @functools.wraps(SMTP.smtp_DATA)  # keeps its HELP syntax
    async def smtp_DATA(self, arg: str) -> None:
        await self._owner._gather_at_data()
        await super().smtp_DATA(arg)
        self._end_transaction()  # answered (or refused): the transaction is over

    async def _call_handler_hook(self, command: str, *args: Any) -> Any:
        status = await super()._call_handler_hook(command, *args)
        if command == "DATA" and self._owner.drop_after_data:
            # The message was taken (the handler has it), and the reply is never sent.
            _abort(self.transport)
        elif command == "DATA" and self._owner.stall_after_data:
            await asyncio.Event().wait()  # until the client gives up
        return status

    def _count_hello(self) -> None:
        # Once per TCP connection (EHLO again after STARTTLS is the same connection).
        if not self._said_hello:
            self._said_hello = True
            self._owner.connections += 1
            # Connections of clients only (not the controller's start-up probe).
            clients = sum(1 for session in self._owner._live if session._said_hello)
            self._owner.most_connections_at_once = max(
                self._owner.most_connections_at_once, clients
            )


class _Controller(Controller):
    def __init__(self, owner: SmtpServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owner

    def factory(self) -> SMTP:
        return _BehavingSMTP(self._owner, self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        if not (self._owner.never_greet or self._owner.greeting_delay or self._owner.reply_delay):
            super()._trigger_server()
            return
        # Accepting the connection is enough to build the session; waiting for a greeting
        # that is slow or never comes would only slow the start down.
        socket.create_connection((self.hostname, self.port), 1.0).close()


class SmtpServer:
    """An SMTP server on 127.0.0.1 (in a thread of its own while in a `with` block).

    Behaviours, each off by default:
    - `greeting_delay`: seconds before the 220 greeting of every connection (a WAN hop);
    - `reply_delay`: seconds before every reply, greeting included (a provider across the
      internet: each command costs a round trip);
    - `never_greet`: accepts the TCP connection but never says anything (a hung server);
    - `close_with_421_after`: once, when this many messages have been received, the next
      MAIL FROM is answered `421` and the connection is closed (a server shutting down);
    - `drop_after_data`: after the final "." of DATA the message is kept and the connection
      dropped, unanswered (did it arrive? the client cannot know);
    - `stall_after_data`: after the final "." of DATA the message is kept and never answered;
    - `implicit_tls`: TLS from the first byte with `tls_context` (else `tls_context` means
      STARTTLS, required);
    - `credentials`: AUTH required (taken without TLS too).

    What it saw: `received` (the handler's messages), `connections` (client connections
    that said EHLO/HELO), `noops`, `quits`, `most_connections_at_once` (client connections
    that said EHLO/HELO, open at the same time) and `most_transactions_at_once` (sessions
    between MAIL FROM and the answer to their data, or RSET, at the same time);
    `drop_connections()` drops every open client connection (an idle timeout or a restart
    on the server's side), and `hold_at_data(n)` makes transactions wait at DATA until n of
    them are there at once.
    """

    def __init__(
        self,
        handler: RecordingHandler | None = None,
        *,
        credentials: tuple[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        greeting_delay: float = 0.0,
        reply_delay: float = 0.0,
        never_greet: bool = False,
        close_with_421_after: int | None = None,
        drop_after_data: bool = False,
        stall_after_data: bool = False,
    ) -> None:
        self.handler = handler or RecordingHandler()
        self.port = free_port()
        self.greeting_delay = greeting_delay
        self.reply_delay = reply_delay
        self.never_greet = never_greet
        self.close_with_421_after = close_with_421_after
        self.drop_after_data = drop_after_data
        self.stall_after_data = stall_after_data
        self.connections = 0
        self.noops = 0
        self.quits = 0
        self.most_connections_at_once = 0
        self.most_transactions_at_once = 0
        self._in_transaction = 0
        self.gathered = threading.Event()
        self._live: set[_BehavingSMTP] = set()
        self._gather_parties = 0
        self._gather_timeout = 0.0
        self._at_data = 0
        server_kwargs: dict[str, Any] = {}
        if credentials is not None:
            user, password = credentials

            def authenticate(
                server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
            ) -> AuthResult:
                ok = isinstance(auth_data, LoginPassword) and (
                    auth_data.login.decode() == user and auth_data.password.decode() == password
                )
                # handled=False: aiosmtpd then answers 535 itself; with its default
                # (True) a failed AUTH gets no reply at all and the client hangs.
                return AuthResult(success=ok, handled=False)

            server_kwargs.update(
                authenticator=authenticate, auth_required=True, auth_require_tls=False
            )
        if tls_context is not None and not implicit_tls:
            server_kwargs.update(tls_context=tls_context, require_starttls=True)
        self.controller = _Controller(
            self,
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=tls_context if implicit_tls else None,
            **server_kwargs,
        )

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def drop_connections(self) -> None:
        """Drop every open client connection, without a word, and return once they are gone."""

        async def drop() -> None:
            for session in list(self._live):
                _abort(session.transport)
            while self._live:
                await asyncio.sleep(0.001)

        asyncio.run_coroutine_threadsafe(drop(), self.controller.loop).result(timeout=5)

    def hold_at_data(self, parties: int, timeout: float = 5.0) -> None:
        """From now on, a DATA command is answered only once `parties` transactions have
        reached DATA (then `gathered` is set), or after `timeout` seconds (it stays unset)."""
        self._gather_parties = parties
        self._gather_timeout = timeout
        self._at_data = 0
        self.gathered.clear()

    async def _gather_at_data(self) -> None:
        if not self._gather_parties:
            return
        self._at_data += 1
        deadline = time.monotonic() + self._gather_timeout
        while self._at_data < self._gather_parties and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        if self._at_data >= self._gather_parties:
            self.gathered.set()

    def _take_421(self) -> bool:
        after = self.close_with_421_after
        if after is None or len(self.handler.received) < after:
            return False
        self.close_with_421_after = None  # once
        return True

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
