"""Local mode as a user starts it (`python -m infra.local`), in a subprocess, over HTTP: for
the e2e tests and the benchmarks (the e2e fixture is in tests/e2e/conftest.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.smtp_servers import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "e2e-admin-token"


@dataclass
class LocalMode:
    url: str
    token: str
    sink_port: int
    process: subprocess.Popen[str]
    # What local mode printed so far: read as it comes, as a terminal would, so a full pipe
    # never blocks a sender writing its outcome line.
    lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def read_console(self) -> None:
        stream = self.process.stdout
        assert stream is not None

        def read() -> None:
            for line in stream:
                self.lines.append(line)

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()

    def output(self, timeout: float = 10) -> str:
        """The console so far; once the process ended, all of it."""
        if self._reader is not None and self.process.poll() is not None:
            self._reader.join(timeout)
        return "".join(self.lines)

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        request.add_header("X-API-Token", token if token is not None else self.token)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def wait_until(self, predicate: Any, timeout: float = 60, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(0.2)
        # What local mode said last is what explains a wait that never ended.
        console = "".join(self.lines[-40:])
        raise AssertionError(f"timed out waiting for {what}; local mode's last lines:\n{console}")


def local_mode_env(extra_env: dict[str, str]) -> dict[str, str]:
    """The environment local mode starts with in these tests: this one's, less anything that
    would point it at another AWS, with a fresh state folder unless one is given."""
    env = (
        os.environ
        | {
            "MAILPROXY_ADMIN_TOKEN": TOKEN,
            "PYTHONUNBUFFERED": "1",
            "MAILPROXY_STATE_DIR": tempfile.mkdtemp(prefix="mailproxy-e2e-"),
        }
        | extra_env
    )
    for key in (
        "AWS_ENDPOINT_URL",
        "MAILPROXY_RESOURCES",
        "AWS_PROFILE",
        "MAILPROXY_PUBLIC_BASE_URL",
    ):
        env.pop(key, None)
    return env


def start_local_mode(extra_env: dict[str, str]) -> LocalMode:
    """Local mode in a subprocess; a state folder of its own unless MAILPROXY_STATE_DIR is
    given (a fresh temporary one, so two runs never share state)."""
    port = free_port()
    env = local_mode_env({"MAILPROXY_PORT": str(port)} | extra_env)
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    local = LocalMode(
        f"http://127.0.0.1:{port}", TOKEN, int(extra_env.get("MAILPROXY_SINK_PORT", "0")), process
    )
    local.read_console()

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"local mode exited early:\n{local.output()}")
        try:
            with urllib.request.urlopen(local.url + "/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    local.wait_until(healthy, timeout=90, what="local mode to answer /health")
    return local


def stop_local_mode(local: LocalMode) -> tuple[int, str]:
    local.process.send_signal(signal.SIGTERM)
    try:
        local.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        local.process.send_signal(signal.SIGUSR1)  # every thread's stack, into the output
        time.sleep(2)
        local.process.kill()
        local.process.wait()
        raise AssertionError(f"local mode did not stop on SIGTERM:\n{local.output()}") from None
    return local.process.returncode, local.output()


@contextmanager
def local_mode_running(
    extra_env: dict[str, str] | None = None, *, clean_log: bool = False
) -> Iterator[LocalMode]:
    """Local mode with its own SMTP sink turned off (tests bring their own servers), stopped
    at the end, which it must do cleanly; with clean_log, having logged no traceback."""
    local = start_local_mode({"MAILPROXY_SINK_PORT": "0"} | (extra_env or {}))
    try:
        yield local
    finally:
        code, output = stop_local_mode(local)
        assert code == 0, output
        if clean_log:
            assert "Traceback" not in output, output
