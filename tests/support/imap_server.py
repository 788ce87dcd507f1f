"""A real IMAP server on 127.0.0.1 for the bounce reader's tests: pymap (its in-memory dict
backend) in a subprocess, with a trustme certificate, one login, STARTTLS on its own port and
implicit TLS on a second port (a TLS front in a thread, piping to pymap: pymap itself speaks
STARTTLS only). Helpers APPEND raw mail, list a folder, and rebuild a folder (a new
UIDVALIDITY), all through a client session of its own."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import trustme

from mailproxy.delivery.imap_mailbox import ImapSettings, Security
from tests.support.smtp_servers import free_port

USER = "bounces@proxy.test"
PASSWORD = "imap-secret"
_APPENDUID = re.compile(rb"APPENDUID \d+ (\d+)")
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")


class ImapServer:
    def __init__(self, workdir: Path) -> None:
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self._cert = workdir / "imap-cert.pem"
        self._key = workdir / "imap-key.pem"
        cert.private_key_pem.write_to_path(str(self._key))
        cert.cert_chain_pems[0].write_to_path(str(self._cert))
        self.starttls_port = free_port()
        self._log = workdir / "pymap.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._front: _TlsFront | None = None

    @property
    def tls_port(self) -> int:
        assert self._front is not None
        return self._front.port

    def start(self) -> None:
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from pymap.main import main; main()",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.starttls_port),
                    "--cert",
                    str(self._cert),
                    "--key",
                    str(self._key),
                    "--no-service",
                    "admin",
                    "dict",
                    "--demo-user",
                    USER,
                    "--demo-password",
                    PASSWORD,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.starttls_port), 0.5).close()
                break
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pymap did not start: {self._log.read_text()}") from None
                time.sleep(0.1)
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
        self._front = _TlsFront(server_context, self.starttls_port)
        self._front.start()

    def stop(self) -> None:
        if self._front is not None:
            self._front.stop()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def client_context(self) -> ssl.SSLContext:
        """A verifying context that trusts this server's CA (and nothing else)."""
        context = ssl.create_default_context(cafile=None, capath=None, cadata=None)
        context.load_verify_locations(cadata=self.ca.cert_pem.bytes().decode())
        return context

    def settings(
        self, folder: str = "Bounces", security: Security = "starttls", **extra: object
    ) -> ImapSettings:
        port = self.tls_port if security == "ssl" else self.starttls_port
        return ImapSettings(
            host="127.0.0.1",
            port=port,
            user=USER,
            password=PASSWORD,
            folder=folder,
            security=security,
            timeout_seconds=10,
            **extra,  # type: ignore[arg-type]
        )

    @contextlib.contextmanager
    def session(self) -> Iterator[imaplib.IMAP4]:
        imap = imaplib.IMAP4("127.0.0.1", self.starttls_port, timeout=10)
        try:
            imap.starttls(self.client_context())
            imap.login(USER, PASSWORD)
            yield imap
        finally:
            with contextlib.suppress(Exception):
                imap.logout()

    def create(self, folder: str) -> None:
        with self.session() as imap:
            imap.create(f'"{folder}"')  # NO when it exists: fine

    def append(self, folder: str, raw: bytes, flags: str | None = None) -> int:
        """Delivers raw mail into the folder (created if need be); returns its UID."""
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        with self.session() as imap:
            imap.create(f'"{folder}"')
            typ, data = imap.append(f'"{folder}"', flags, None, raw)
            assert typ == "OK", data
            found = _APPENDUID.search(b" ".join(d for d in data if isinstance(d, bytes)))
            assert found, data
            return int(found.group(1))

    def uids(self, folder: str) -> list[int]:
        with self.session() as imap:
            typ, data = imap.select(f'"{folder}"')
            assert typ == "OK", data
            typ, data = imap.uid("SEARCH", "ALL")
            return sorted(int(n) for chunk in data if chunk for n in chunk.split())

    def flags(self, folder: str, uid: int) -> set[str]:
        with self.session() as imap:
            imap.select(f'"{folder}"')
            _, data = imap.uid("FETCH", str(uid), "(FLAGS)")
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode()
            found = re.search(r"FLAGS \(([^)]*)\)", text)
            return set(found.group(1).split()) if found else set()

    def uidvalidity(self, folder: str) -> int:
        with self.session() as imap:
            typ, data = imap.status(f'"{folder}"', "(UIDVALIDITY)")
            assert typ == "OK", data
            found = _UIDVALIDITY.search(data[0] if isinstance(data[0], bytes) else b"")
            assert found, data
            return int(found.group(1))

    def rebuild(self, folder: str, messages: list[bytes]) -> None:
        """Deletes and recreates the folder with these messages: a new UIDVALIDITY (as when a
        server loses its index, or an administrator restores the mailbox)."""
        before = self.uidvalidity(folder)
        with self.session() as imap:
            imap.delete(f'"{folder}"')
        # UIDVALIDITY is often derived from the clock: make sure it moves.
        while True:
            self.create(folder)
            if self.uidvalidity(folder) != before:
                break
            with self.session() as imap:
                imap.delete(f'"{folder}"')
            time.sleep(1)
        for raw in messages:
            self.append(folder, raw)


class _TlsFront:
    """Implicit TLS on a port of its own, each connection piped in clear to pymap."""

    def __init__(self, context: ssl.SSLContext, backend_port: int) -> None:
        self.context = context
        self.backend_port = backend_port
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(10), "the TLS front did not start"

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._pipe, "127.0.0.1", self.port, ssl=self.context)
        )
        self._ready.set()
        self._loop.run_forever()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        back_reader, back_writer = await asyncio.open_connection("127.0.0.1", self.backend_port)

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        await asyncio.gather(copy(reader, back_writer), copy(back_reader, writer))
