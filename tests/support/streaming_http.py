"""A raw HTTP/1.1 server on 127.0.0.1 that answers every request with the same body, written in
pieces with a pause between them: a body that trickles in (each read gets a little, so no read
ever times out), or one without a Content-Length (its size shows only as it arrives).
Loopback only."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass


@dataclass(frozen=True)
class Streamed:
    body: bytes
    piece_bytes: int = 1
    pause_seconds: float = 0.05
    # False: no Content-Length, the end of the body is the end of the connection.
    content_length: bool = True


@contextmanager
def streaming_server(answer: Streamed) -> Iterator[int]:
    """The port of a server that sends `answer` to every connection, until the `with` ends."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)

    def serve(connection: socket.socket) -> None:
        with connection:
            connection.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                data = connection.recv(4096)
                if not data:
                    return
                request += data
            head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            if answer.content_length:
                head += f"Content-Length: {len(answer.body)}\r\n"
            head += "Connection: close\r\n\r\n"
            with suppress(OSError):
                connection.sendall(head.encode())
                for start in range(0, len(answer.body), answer.piece_bytes):
                    if stop.wait(answer.pause_seconds):
                        return
                    connection.sendall(answer.body[start : start + answer.piece_bytes])

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
