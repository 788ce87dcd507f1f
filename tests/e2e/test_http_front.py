"""Local mode's HTTP front as its clients see it: every request answered, keep-alive or not,
many clients at once, while mail is being delivered; oversized bodies refused with a 413 the
client can read; slow and silent clients bounded and harmless to everyone else."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

from infra.local.http_adapter import make_server
from tests.support.local_mode import LocalMode
from tests.support.smtp_servers import SmtpServer

CLIENTS = 50
REQUESTS_PER_CLIENT = 20
MESSAGES = 300
MESSAGES_PER_CALL = 50
TIMEOUT = 60  # seconds: a bound on a hung request, never a measured expectation
TOO_LARGE = {"detail": "Request body too large"}


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; a socket timeout fails the test."""
    sock.settimeout(TIMEOUT)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _split(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def _client(local: LocalMode, number: int, results: list[tuple[int, int, Any]]) -> None:
    close = number % 2 == 0
    session = requests.Session()
    token = {"X-API-Token": local.token}
    for n in range(REQUESTS_PER_CLIENT):
        path, headers, expected = [
            ("/health", {}, 200),
            ("/status", token, 200),
            ("/status", {"X-API-Token": "wrong"}, 401),
        ][n % 3]
        if close:
            headers = {**headers, "Connection": "close"}
        try:
            getter = requests.get if close else session.get
            response = getter(local.url + path, headers=headers, timeout=TIMEOUT)
            results.append((number, n, (response.status_code, expected)))
        except requests.RequestException as error:
            results.append((number, n, repr(error)))
    session.close()


def test_fifty_clients_with_and_without_keep_alive_are_all_answered_during_delivery(
    local_mode: LocalMode,
) -> None:
    with SmtpServer(greeting_delay=0.02) as smtp:
        # Local mode keeps its state across runs: ids of this run only.
        tenant = f"front-{uuid.uuid4().hex[:8]}"
        account = {"id": "front", "tenant_id": tenant, "host": "127.0.0.1", "port": smtp.port}
        assert local_mode.call("POST", "/account", account) == (200, {"ok": True})

        # Given mail being posted and delivered in the background
        posted: list[tuple[int, Any]] = []

        def post_messages() -> None:
            for start in range(0, MESSAGES, MESSAGES_PER_CALL):
                batch = [
                    {
                        "id": f"{tenant}-{n}",
                        "tenant_id": tenant,
                        "account_id": "front",
                        "from": "app@front.test",
                        "to": f"user{n}@example.test",
                        "subject": f"Message {n}",
                        "body": "Hello",
                    }
                    for n in range(start, start + MESSAGES_PER_CALL)
                ]
                posted.append(
                    local_mode.call("POST", "/commands/add-messages", {"messages": batch})
                )

        poster = threading.Thread(target=post_messages)
        poster.start()
        assert smtp.handler.wait_for(1, timeout=TIMEOUT), "no mail delivered"

        # When 50 clients, half closing each connection and half keeping theirs, call at once
        results: list[tuple[int, int, Any]] = []
        clients = [
            threading.Thread(target=_client, args=(local_mode, number, results))
            for number in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        poster.join()

        # Then every request got its answer, with the status it should
        assert len(results) == CLIENTS * REQUESTS_PER_CLIENT
        failures = [r for r in results if not isinstance(r[2], tuple) or r[2][0] != r[2][1]]
        assert failures == []
        assert [status for status, _ in posted] == [200] * (MESSAGES // MESSAGES_PER_CALL)
        assert sum(body["queued"] for _, body in posted) == MESSAGES


def test_an_oversized_body_gets_a_413_and_the_connection_is_closed(local_mode: LocalMode) -> None:
    url = local_mode.url + "/commands/add-messages"
    headers = {"X-API-Token": local_mode.token, "Content-Type": "application/json"}

    # A client still sending its body reads the answer
    response = requests.post(url, data=b"x" * (11 * 1024 * 1024), headers=headers, timeout=60)
    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert response.headers["Connection"] == "close"

    # So does one sending it chunked, with no length announced
    chunks = (b"x" * (1024 * 1024) for _ in range(11))
    response = requests.post(url, data=chunks, headers=headers, timeout=60)
    assert response.status_code == 413
    assert response.json() == TOO_LARGE

    # And the server closes the connection after the answer
    port = int(local_mode.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        length = 11 * 1024 * 1024
        sock.sendall(
            b"POST /commands/add-messages HTTP/1.1\r\nHost: local\r\n"
            + f"Content-Length: {length}\r\nX-API-Token: {local_mode.token}\r\n\r\n".encode()
        )
        sock.sendall(b"x" * length)
        status, answer_headers, body = _split(_read_until_closed(sock))
    assert status == 413
    assert answer_headers["connection"] == "close"
    assert json.loads(body) == TOO_LARGE

    # A body within the limit still reaches the API
    assert local_mode.call("GET", "/health") == (200, {"status": "ok"})


def test_silent_and_half_sent_requests_do_not_hold_up_other_clients(
    local_mode: LocalMode,
) -> None:
    port = int(local_mode.url.rsplit(":", 1)[1])
    stalled = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    try:
        for sock in stalled[::2]:
            sock.sendall(b"POST /account HTTP/1.1\r\nHost: local\r\nContent-Length: 100\r\n\r\n{")
        for _ in range(20):
            response = requests.get(local_mode.url + "/health", timeout=TIMEOUT)
            assert response.status_code == 200
    finally:
        for sock in stalled:
            sock.close()


def test_connection_close_is_answered_in_kind_and_the_socket_closed(local_mode: LocalMode) -> None:
    port = int(local_mode.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n")
        status, headers, body = _split(_read_until_closed(sock))
    assert status == 200
    assert headers["connection"] == "close"
    assert json.loads(body) == {"status": "ok"}

    # Without it, the connection stays open for the next request
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.settimeout(TIMEOUT)
        for _ in range(3):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: local\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(1)
            status, headers, _ = _split(head)
            assert status == 200
            assert "connection" not in headers
            assert sock.recv(int(headers["content-length"]), socket.MSG_WAITALL)


def _fixed_answer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "ok"}


@contextmanager
def _front(idle_timeout: float) -> Iterator[int]:
    front = make_server(0, _fixed_answer, lambda route: None, idle_timeout=idle_timeout)
    front.start()
    try:
        yield front.port
    finally:
        front.stop()


def test_an_idle_or_half_sent_connection_is_dropped_after_the_idle_timeout() -> None:
    # The front on its own, with a short idle timeout: the real one is 30 s.
    with _front(idle_timeout=0.5) as port:
        silent = socket.create_connection(("127.0.0.1", port))
        half = socket.create_connection(("127.0.0.1", port))
        half.sendall(b"GET /health HTTP/1.1\r\nHost: local\r\n")
        try:
            assert requests.get(f"http://127.0.0.1:{port}/health", timeout=TIMEOUT).text == "ok"
            assert _read_until_closed(silent) == b""
            assert _read_until_closed(half) == b""
        finally:
            silent.close()
            half.close()
