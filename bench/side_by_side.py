"""This proxy's local mode and genro-mail-proxy 0.6.10 (the project it replaces: SQLite +
asyncio, FastAPI), under the same workload, on the same machine, one after the other.

Goal: this proxy should beat genro-mail-proxy 0.6.10 end to end (messages/s).

The workload and the figures are bench/local_e2e.py's, and its `run()` drives both sides
unchanged: an SMTP server that waits 20 ms before its greeting (a WAN hop), one account
pointing at it, N messages posted 50 per add-messages call over HTTP, then a wait until the
server has received every one. For genro-mail-proxy, `run()`'s start/stop hooks are swapped for
ones that start it instead of local mode; nothing else differs.

Printed per side: enqueue ms per message (p50, p95 over the calls), end-to-end messages/s (first
post to last message received), peak RSS of the server process, CPU ms per message (its user +
system time over the run, from /proc), and how many messages arrived more than once or never
(by their X-Genro-Mail-ID header, which both add; both must be 0). Then the ratio of messages/s,
this proxy over genro-mail-proxy. Exit status 1 if either side lost or duplicated a message.

genro-mail-proxy runs from a venv of its own, .bench/genro-0.6.10 (made, with pip, on first use;
never this project's .venv), as its docs start it: `uvicorn mail_proxy.server:app`, with a fresh
SQLite database (GMP_DB_PATH) and an admin token (GMP_API_TOKEN), and its shipped defaults.
As published, 0.6.10 cannot start (its wheel lacks `mail_proxy.entities.instance`): the bench
writes a stand-in for that one module into that venv, see INSTANCE_SHIM.

Run: .venv/bin/python bench/side_by_side.py [N]     (N = 1,000 unless given)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bench import local_e2e  # noqa: E402  (sets the rest of sys.path as local mode needs)
from bench.local_e2e import Figures  # noqa: E402
from tests.support.local_mode import TOKEN, LocalMode, stop_local_mode  # noqa: E402
from tests.support.smtp_servers import free_port  # noqa: E402

GENRO_VERSION = "0.6.10"
GENRO_VENV = ROOT / ".bench" / f"genro-{GENRO_VERSION}"
TENANT = "bench"  # the tenant local_e2e.run() puts its account and messages in
CONSOLE_TAIL_LINES = 30


# genro-mail-proxy 0.6.9 and 0.6.10, wheel and sdist alike, lack the package
# `mail_proxy.entities.instance` that `mail_proxy.entities` imports (their .gitignore's `instance/`
# kept it out of the build), so as published they cannot start. This stand-in, our own and the
# least that lets `mail_proxy.server` start, is written into their venv: the one-row instance
# table it reads its bounce settings from at startup (bounce detection off), used by nothing on
# the path of a message.
INSTANCE_SHIM = {
    "__init__.py": """\
\"\"\"Stand-in written by bench/side_by_side.py: missing from genro-mail-proxy 0.6.10's wheel.\"\"\"

from .table import InstanceTable

__all__ = ["InstanceTable"]
""",
    "table.py": """\
\"\"\"Stand-in written by bench/side_by_side.py: missing from genro-mail-proxy 0.6.10's wheel.
The instance settings, one row (id 1): those server.py reads and writes at startup.\"\"\"

from __future__ import annotations

from typing import Any

from ...sql import Integer, String, Table

BOUNCE = ("imap_host", "imap_port", "imap_user", "imap_password")


class InstanceTable(Table):
    name = "instance"

    def configure(self) -> None:
        c = self.columns
        c.column("id", Integer, primary_key=True)
        c.column("bounce_enabled", Integer, default=0)
        for key in BOUNCE:
            c.column(f"bounce_{key}", Integer if key == "imap_port" else String)

    async def get_instance(self) -> dict[str, Any] | None:
        return await self.select_one(where={"id": 1})

    async def ensure_instance(self) -> dict[str, Any]:
        row = await self.get_instance()
        if row is None:
            await self.insert({"id": 1})
            row = await self.get_instance()
        assert row is not None
        return row

    async def update_instance(self, updates: dict[str, Any]) -> None:
        await self.ensure_instance()
        await self.update(updates, where={"id": 1})

    async def get_bounce_config(self) -> dict[str, Any]:
        row = await self.ensure_instance()
        return {"enabled": bool(row.get("bounce_enabled"))} | {
            key: row.get(f"bounce_{key}") for key in BOUNCE
        }

    async def set_bounce_config(self, *, enabled: bool | None = None, **config: Any) -> None:
        updates = {f"bounce_{key}": value for key, value in config.items() if value is not None}
        if enabled is not None:
            updates["bounce_enabled"] = int(enabled)
        if updates:
            await self.update_instance(updates)
""",
}


def genro_python() -> Path:
    """The Python of genro-mail-proxy's own venv, set up first if missing or incomplete."""
    python = GENRO_VENV / "bin" / "python"
    if _probe(python, _VERSION) != GENRO_VERSION:
        print(f"setting up genro-mail-proxy {GENRO_VERSION} in {GENRO_VENV} ...", flush=True)
        # The interpreter running this bench (local mode's too): both sides on the same Python.
        subprocess.run([sys.executable, "-m", "venv", str(GENRO_VENV)], check=True)
        # Kept out of `git status`, as venvs made by Python 3.13+ keep themselves.
        (GENRO_VENV / ".gitignore").write_text("*\n")
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"genro-mail-proxy=={GENRO_VERSION}",
                "uvicorn",
            ],
            check=True,
        )
        if (found := _probe(python, _VERSION)) != GENRO_VERSION:
            raise SystemExit(
                f"{GENRO_VENV}: genro-mail-proxy {found} installed, not {GENRO_VERSION}"
            )
    if (installed := _probe(python, _PACKAGE)) is None:
        raise SystemExit(f"{GENRO_VENV}: no mail_proxy package")
    package = Path(installed) / "entities" / "instance"
    if not (package / "__init__.py").exists():
        print(f"genro-mail-proxy {GENRO_VERSION} lacks {package}: writing a stand-in", flush=True)
        package.mkdir(exist_ok=True)
        for name, text in INSTANCE_SHIM.items():
            (package / name).write_text(text)
    if _probe(python, _STARTS) != "ok":
        raise SystemExit(f"{GENRO_VENV}: mail_proxy.mailproxy_db does not import")
    return python


_VERSION = "import importlib.metadata as m, uvicorn; print(m.version('genro-mail-proxy'))"
_PACKAGE = "import mail_proxy, os; print(os.path.dirname(mail_proxy.__file__))"
_STARTS = "import mail_proxy.mailproxy_db, uvicorn; print('ok')"


def _probe(python: Path, code: str) -> str | None:
    """What `code` prints, run by `python`; None if it fails or `python` is not there."""
    if not python.exists():
        return None
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


class GenroProxy(LocalMode):
    """genro-mail-proxy over HTTP, in the shape of the harness's LocalMode (same X-API-Token
    dialect, same `call`), so local_e2e.run() drives it as it drives local mode."""

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        if method == "POST" and path == "/account" and isinstance(body, dict):
            # Its /account leaves TLS to the port when unset (465: TLS, else plain); the
            # bench's server is plain, so say so rather than rely on the guess.
            body = {"use_tls": False} | body
        return super().call(method, path, body, token)


class GenroSide:
    """Start and stop hooks for local_e2e.run(), starting genro-mail-proxy in a subprocess."""

    def __init__(self, python: Path) -> None:
        self.python = python
        self.console = ""  # what it printed, once stopped
        self._state: Path | None = None

    def start(self, extra_env: dict[str, str]) -> LocalMode:
        # extra_env is local mode's (its sink port): nothing genro-mail-proxy reads.
        self._state = Path(tempfile.mkdtemp(prefix="genro-bench-"))
        port = free_port()
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("GMP_") and key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
        } | {
            "GMP_DB_PATH": str(self._state / "mail_service.db"),
            "GMP_API_TOKEN": TOKEN,
            "PYTHONUNBUFFERED": "1",
        }
        process = subprocess.Popen(
            [
                str(self.python),
                "-m",
                "uvicorn",
                "mail_proxy.server:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=self._state,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        genro = GenroProxy(f"http://127.0.0.1:{port}", TOKEN, 0, process)
        genro.read_console()

        def healthy() -> bool:
            if process.poll() is not None:
                raise SystemExit(f"genro-mail-proxy exited early:\n{genro.output()}")
            try:
                return genro.call("GET", "/health")[0] == 200
            except OSError:  # not listening yet
                return False

        try:
            genro.wait_until(healthy, timeout=90, what="genro-mail-proxy to answer /health")
            # Accounts and messages belong to a tenant that must exist first.
            status, body = genro.call("POST", "/tenant", {"id": TENANT, "name": TENANT})
            if status != 200 or not body.get("ok"):
                raise SystemExit(f"genro-mail-proxy POST /tenant answered {status}: {body}")
        except BaseException:
            self.stop(genro)
            raise
        return genro

    def stop(self, genro: LocalMode) -> tuple[int, str]:
        try:
            code, self.console = stop_local_mode(genro)
        finally:
            if self._state is not None:
                shutil.rmtree(self._state, ignore_errors=True)
        return code, self.console


def run_genro(python: Path, count: int) -> Figures:
    side = GenroSide(python)
    with (
        mock.patch.object(local_e2e, "start_local_mode", side.start),
        mock.patch.object(local_e2e, "stop_local_mode", side.stop),
    ):
        figures = local_e2e.run(count)
    if figures.missing or figures.duplicates:
        tail = "".join(side.console.splitlines(keepends=True)[-CONSOLE_TAIL_LINES:])
        print(f"genro-mail-proxy's console, last lines:\n{tail}", flush=True)
    return figures


def describe(label: str, figures: Figures) -> str:
    return (
        f"{label:<24} N={figures.count:>6}: enqueue {figures.enqueue_ms_p50:.2f} ms/message "
        f"p50, {figures.enqueue_ms_p95:.2f} p95 · {figures.messages_per_second:.0f} messages/s "
        f"end to end · peak RSS {figures.peak_rss_mib:.0f} MiB · "
        f"CPU {figures.cpu_ms_per_message:.1f} ms/message · "
        f"{figures.duplicates} duplicates, {figures.missing} missing"
    )


def main() -> int:
    if len(sys.argv) > 2:
        raise SystemExit("usage: side_by_side.py [N]")
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
    python = genro_python()  # before either run, so setting it up is timed by neither

    local = local_e2e.run(count)
    print(describe("local mode", local), flush=True)
    genro = run_genro(python, count)
    print(describe(f"genro-mail-proxy {GENRO_VERSION}", genro), flush=True)

    ratio = (
        local.messages_per_second / genro.messages_per_second
        if genro.messages_per_second
        else float("inf")
    )
    verdict = "beats" if ratio > 1 else "does not beat"
    print(
        f"messages/s end to end, local mode / genro-mail-proxy {GENRO_VERSION}: {ratio:.2f} "
        f"(goal > 1: local mode {verdict} it)"
    )
    ok = all(f.duplicates == 0 and f.missing == 0 for f in (local, genro))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
