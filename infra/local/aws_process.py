"""The embedded AWS emulation in a process of its own, so it runs beside the handlers.

moto evaluates every DynamoDB expression in Python, and under load that is more than half of
local mode's CPU; in the handlers' process it shared one interpreter lock with them, so local
mode used one core of two. Here the moto server, its backends, the saved state and DynamoDB's
TTL live in a child process, and the handlers' requests reach it over pipes.

The hop is a botocore `before-send` handler: the request is signed and built as for AWS, then its
method, URL, headers and body go down a pipe, and the child hands them to moto's dispatch, the
one `mock_aws` uses. A pipe costs tens of microseconds a request; loopback HTTP
(urllib3 on one side, werkzeug on the other) cost about a third of local mode's CPU.

The moto server stays up in the child for everything else: the user's aws CLI and scripts, and
S3, whose addressing is not one host per service.

The child ignores Ctrl-C and SIGTERM (they reach the whole process group): the parent stops it,
after the last save, and it exits by itself when the parent is gone (its control pipe closes).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

log = logging.getLogger("mailproxy.local")

# Services whose moto URL is https://{signing name}.{region}.amazonaws.com/; the rest (S3) go by
# HTTP to the child's server.
PIPED_SERVICES = frozenset(
    {"dynamodb", "sqs", "events", "scheduler", "monitoring", "logs", "kms", "secretsmanager"}
)
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")
# As many as local mode has threads that call AWS at once (HTTP workers, pollers, waves); a
# thread that finds none free waits for one.
PIPES = 32
# Every call has a timeout: a moto request takes milliseconds; a full-state save, seconds.
REQUEST_TIMEOUT_SECONDS = 60.0
CONTROL_TIMEOUT_SECONDS = 300.0
START_TIMEOUT_SECONDS = 120.0


class EmulationStopped(Exception):
    """The AWS emulation's process is gone or does not answer."""


@dataclass(frozen=True)
class Started:
    endpoint: str
    admin_token: str
    clock_offset_seconds: float
    restored: str | None  # what the saved state held, None when there was none


# -- the child ---------------------------------------------------------------------------------


def child_main() -> None:
    """The child's entry: argv holds the state folder, then the control and pipe sockets."""
    folder, control_fd, *pipe_fds = sys.argv[1:]
    _serve_emulation(folder, Connection(int(control_fd)), [Connection(int(fd)) for fd in pipe_fds])


def _serve_emulation(folder: str, control: Connection, pipes: list[Connection]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("botocore", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from infra.local.run import StartupError

    try:
        emulation = _Emulation(Path(folder))
        started = emulation.start()
    except StartupError as error:
        control.send(("refused", str(error)))
        return
    for pipe in pipes:
        threading.Thread(target=emulation.serve, args=(pipe,), daemon=True).start()
    control.send(("started", started))
    try:
        while True:
            command, argument = control.recv()
            control.send(emulation.command(command, argument))
            if command == "stop":
                return
    except EOFError:  # the parent is gone, killed hard: so is what it had not saved
        return


class _Emulation:
    def __init__(self, folder: Path) -> None:
        from infra.local.state import LocalState

        self.state = LocalState(folder)

    def start(self) -> Started:
        from moto.core.botocore_stubber import BotocoreStubber

        from infra.local.aws_server import DYNAMODB_LOCK, LocalAwsServer
        from mailproxy import runtime

        self.dynamodb_lock = DYNAMODB_LOCK
        self.state.open()  # a folder that cannot be loaded stops the start here, unchanged
        admin_token = self.state.admin_token()
        self.server = LocalAwsServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()  # installs infra/local/moto_patches.py before it serves
        host, port = self.server.get_host_and_port()
        self.stubber = BotocoreStubber()  # its dispatch, not the global (disabled) instance
        restored = self.state.restore()  # before provisioning, which keeps what exists
        return Started(
            endpoint=f"http://{host}:{port}",
            admin_token=admin_token,
            clock_offset_seconds=runtime.clock.offset_seconds,
            restored=restored.describe() if restored else None,
        )

    def serve(self, pipe: Connection) -> None:
        from botocore.awsrequest import AWSPreparedRequest, HTTPHeaders

        while True:
            try:
                method, url, headers, body = pipe.recv()
            except (EOFError, OSError):
                return
            service = url.split("//", 1)[1].split(".", 1)[0]
            request_headers = HTTPHeaders()
            for key, value in headers:
                request_headers[key] = value
            request = AWSPreparedRequest(method, url, request_headers, body, False)
            try:
                # DynamoDB requests are served one at a time, as the server serves them.
                with self.dynamodb_lock if service == "dynamodb" else contextlib.nullcontext():
                    answer = self.stubber.process_request(request)
            except Exception as error:  # as moto's server answers what its dispatch raises
                log.exception("the AWS emulation failed on %s %s", method, url)
                answer = (500, {}, f"local AWS emulation error: {error!r}")
            if answer is not None:
                status, response_headers, response_body = answer
                answer = (status, dict(response_headers), response_body)
            try:
                pipe.send(answer)
            except (EOFError, OSError):
                return

    def command(self, command: str, argument: Any) -> Any:
        try:
            if command == "save":
                report = self.state.save(self.dynamodb_lock, clock_offset_seconds=argument)
                return ("ok", report.describe())
            if command == "expire":
                from infra.local.moto_patches import expire_everywhere

                with self.dynamodb_lock:
                    return ("ok", expire_everywhere(argument))
            if command == "stop":
                self.server.stop()
                self.state.close()
                return ("ok", None)
            return ("error", f"unknown command {command!r}")
        except Exception as error:
            log.exception("the AWS emulation failed to %s", command)
            return ("error", repr(error))


# -- the parent --------------------------------------------------------------------------------


class AwsProcess:
    """The child process, and the botocore handler that sends it this process's requests."""

    def __init__(self, folder: Path) -> None:
        # Started as a plain interpreter, not by multiprocessing: its spawn would add a
        # resource-tracker process (12 MiB) that nothing here needs.
        control, child_control = socket.socketpair()
        ends = [socket.socketpair() for _ in range(PIPES)]
        child_fds = [child_control.fileno(), *(child.fileno() for _, child in ends)]
        boot = (
            f"import sys; sys.path[:0] = {sys.path!r}; "
            "from infra.local.aws_process import child_main; child_main()"
        )
        self.process = subprocess.Popen(  # noqa: S603 (this interpreter, this module)
            [sys.executable, "-c", boot, str(folder), *map(str, child_fds)], pass_fds=child_fds
        )
        # Local mode ending without stopping it (a crash) still stops it, and waits for it.
        atexit.register(self.stop)
        child_control.close()
        self._control = Connection(control.detach())
        self._free: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        for parent_end, child_end in ends:
            child_end.close()
            self._free.put(Connection(parent_end.detach()))
        self._control_lock = threading.Lock()
        self._stopping = False
        self.endpoint = ""
        self.enabled = False

    def wait_started(self) -> Started:
        from infra.local.run import StartupError

        kind, value = self._receive(self._control, START_TIMEOUT_SECONDS)
        if kind == "refused":
            self.process.wait(10)
            raise StartupError(value)
        self.endpoint = value.endpoint
        return value

    def install(self) -> None:
        """Route this process's botocore sessions made from now on."""
        from botocore.handlers import BUILTIN_HANDLERS

        self.enabled = True
        # First among the before-send handlers, so moto's own stubber (if imported) never runs.
        BUILTIN_HANDLERS.insert(0, ("before-send", self))

    def uninstall(self) -> None:
        """Sessions made from now on go by HTTP; those made before no longer use the pipes."""
        from botocore.handlers import BUILTIN_HANDLERS

        self.enabled = False
        with contextlib.suppress(ValueError):
            BUILTIN_HANDLERS.remove(("before-send", self))

    def __call__(self, request: Any, **_: Any) -> Any:
        if not self.enabled or not request.url.startswith(self.endpoint + "/"):
            return None
        scope = _SCOPE.search(_header(request, "Authorization"))
        if scope is None or scope["service"] not in PIPED_SERVICES:
            return None
        body = request.body
        if body is not None and not isinstance(body, bytes | str):
            return None  # a stream: it goes by HTTP
        service, region = scope["service"], scope["region"]
        url = f"https://{service}.{region}.amazonaws.com{request.url[len(self.endpoint) :]}"
        headers = [(key, _text(value)) for key, value in request.headers.items()]
        with self._pipe() as pipe:
            try:
                pipe.send((request.method, url, headers, body))
                answer = self._receive(pipe, REQUEST_TIMEOUT_SECONDS)
            except (EmulationStopped, OSError) as error:
                pipe.close()  # an answer may still come: this pipe is out of step, drop it
                if isinstance(error, EmulationStopped):
                    raise
                raise self._gone() from None
        if answer is None:
            return None
        from botocore.awsrequest import AWSResponse

        status, response_headers, response_body = answer
        return AWSResponse(request.url, status, response_headers, _Raw(response_body))

    @contextlib.contextmanager
    def _pipe(self) -> Iterator[Connection]:
        try:
            pipe = self._free.get(timeout=REQUEST_TIMEOUT_SECONDS)
        except queue.Empty:
            raise EmulationStopped("no pipe to the AWS emulation came free") from None
        try:
            yield pipe
        finally:
            if not pipe.closed:
                self._free.put(pipe)

    def command(self, command: str, argument: Any = None) -> Any:
        with self._control_lock:
            try:
                self._control.send((command, argument))
            except (OSError, ValueError):
                raise self._gone() from None
            kind, value = self._receive(self._control, CONTROL_TIMEOUT_SECONDS)
        if kind != "ok":
            raise RuntimeError(f"the AWS emulation could not {command}: {value}")
        return value

    def save(self, clock_offset_seconds: float) -> str:
        return str(self.command("save", clock_offset_seconds))

    def expire(self, now: float) -> int:
        return int(self.command("expire", now))

    def stop(self) -> None:
        self.uninstall()
        if self.process.poll() is None and not self._stopping:
            self._stopping = True
            try:
                self.command("stop")
            except (EmulationStopped, RuntimeError) as error:
                log.warning("%s", error)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def _receive(self, pipe: Connection, timeout: float) -> Any:
        try:
            if not pipe.poll(timeout):
                raise EmulationStopped(f"the AWS emulation did not answer within {timeout:.0f} s")
            return pipe.recv()  # between this process and its own child: trusted
        except (EOFError, OSError):
            raise self._gone() from None

    def _gone(self) -> EmulationStopped:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(1)
        return EmulationStopped(f"the AWS emulation's process is gone (exit {self.process.poll()})")


class _Raw(io.BytesIO):
    """The raw response botocore reads a body from: moto's MockRawResponse, without moto."""

    def __init__(self, body: str | bytes) -> None:
        super().__init__(body.encode() if isinstance(body, str) else body)

    def stream(self, **_: Any) -> Iterator[bytes]:
        contents = self.read()
        while contents:
            yield contents
            contents = self.read()


def _header(request: Any, name: str) -> str:
    return _text(request.headers.get(name) or "")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
