"""`make run`: the whole proxy on this machine, with nothing to configure.

A moto server stands in for AWS, with the tables, queues and bucket of infra/resources.py; the
real api handler serves HTTP through an API Gateway event adapter; one poller per queue feeds
the real sender handler as an event source mapping would; an SMTP sink catches the mail.
The production code is the same as on AWS: boto3 finds moto through AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.resources import QUEUES, WAKEUPS_QUEUE

if TYPE_CHECKING:
    from infra.local.aws_process import AwsProcess
    from infra.local.state import LocalState

PORT_ENV = "MAILPROXY_PORT"
SINK_PORT_ENV = "MAILPROXY_SINK_PORT"
DEFAULT_PORT = 8000
DEFAULT_SINK_PORT = 1025
EMF_FILE = "metrics.emf.jsonl"  # in the state folder

log = logging.getLogger("mailproxy.local")
REPORTER_HANDLER = Path(__file__).resolve().parents[2] / "functions" / "reporter" / "handler.py"


class SimulatedCrash(BaseException):
    """A sender environment dying mid-send (BaseException: no handler code catches it)."""


_crashes = {"pending": 0}


# Execution environments per priority queue, at most its mapping's max_concurrency on AWS: while
# one waits on SMTP or on the emulation, the other works, which is what two cores can use.
SENDERS_PER_QUEUE = 2


def crash_next_send() -> None:
    """The next SMTP send kills its sender after the claim and before the outcome, as a
    Lambda timing out or running out of memory would."""
    from mailproxy import runtime

    pool = runtime.smtp_pool()
    if not getattr(pool, "_crash_wrapped", False):
        original = pool.send

        def send(*args: Any, **kwargs: Any) -> Any:
            if _crashes["pending"] > 0:
                _crashes["pending"] -= 1
                raise SimulatedCrash("sender killed by POST /local/faults/crash-next-send")
            return original(*args, **kwargs)

        pool.send = send  # type: ignore[method-assign]
        pool._crash_wrapped = True  # type: ignore[attr-defined]
    _crashes["pending"] += 1


def expire_objects_on_tick(_event: dict[str, Any], _context: Any) -> dict[str, int]:
    """S3's lifecycle expiration, which moto does not apply either (large files with their
    links, payloads after 8 days), by the same clock."""
    from infra.local.lifecycle import expire_objects
    from mailproxy import aws, runtime
    from mailproxy.config import current_settings

    buckets = current_settings().resources.buckets
    return {"expired": expire_objects(aws.client("s3"), buckets, runtime.clock())}


class StartupError(Exception):
    """Local mode cannot start; the message says why in one line."""


def _port_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > 65535:
        raise StartupError(f"{name}={raw!r} is not a port number")
    return int(raw)


def _ensure_free(port: int, what: str, env: str) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise StartupError(
                f"port {port} ({what}) is already in use: stop what holds it or set {env}"
            ) from None


@dataclass
class LocalProxy:
    port: int
    sink_port: int
    admin_token: str  # empty: the state folder's own, generated on its first start
    stop_event: threading.Event = field(default_factory=threading.Event)
    state: LocalState | None = None
    aws: AwsProcess = field(init=False)
    _stoppers: list[Callable[[], None]] = field(default_factory=list)

    def start(self) -> None:
        _ensure_free(self.port, "the API", PORT_ENV)
        if self.sink_port:
            _ensure_free(self.sink_port, "the SMTP sink", SINK_PORT_ENV)
        self._start_aws()
        from infra.local import console
        from infra.local.events import load_handler

        assert self.state is not None
        self.emf = console.emf_to_file(self.state.folder / EMF_FILE)
        self._stoppers.append(self.emf.close)
        self._start_ticker(load_handler)
        self._start_http(load_handler("api").lambda_handler)
        self._start_pollers(load_handler)
        console.show_outcomes()  # the handlers have configured their loggers by now

    def _start_aws(self) -> None:
        from infra.local.aws_process import AwsProcess
        from infra.local.state import LocalState, settle

        state = self.state = self.state or LocalState.from_env()
        # The child takes the state folder; one it cannot load stops the start, unchanged.
        aws = self.aws = AwsProcess(state.folder)
        self._stoppers.append(aws.stop)
        started = aws.wait_started()
        self.admin_token = self.admin_token or started.admin_token
        aws.install()
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": started.endpoint,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1",
                "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
                "MAILPROXY_ADMIN_TOKEN": self.admin_token,
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
        # The user's own servers (sync endpoint, attachment server) are on this machine.
        os.environ.setdefault("MAILPROXY_ALLOW_LOOPBACK_URLS", "1")
        # Download links of large files point at this API (unless set: a tunnel, say).
        os.environ.setdefault("MAILPROXY_PUBLIC_BASE_URL", f"http://127.0.0.1:{self.port}")
        import boto3

        from infra.local.provision import provision
        from mailproxy import runtime

        runtime.clock.offset_seconds = started.clock_offset_seconds
        if started.restored:
            log.info("state restored from %s: %s", state.folder, started.restored)
        names = provision(boto3.Session())  # keeps what the restored state holds
        os.environ["MAILPROXY_RESOURCES"] = names.to_json()
        runtime.reset()
        self.queue_urls = dict(names.queues)

        def save_state() -> None:
            # Runs after the HTTP front, the pollers and the ticker were told to stop; a
            # poller or tick still finishing its invocation is waited for, so the saved state
            # has no send half-recorded.
            running = settle(
                lambda: [
                    thread
                    for thread in threading.enumerate()
                    if thread.name == "ticker" or thread.name.startswith("poller-")
                ],
                timeout=20,
            )
            if running:
                log.warning("saving the state while %s still run", ", ".join(running))
            log.info("state saved in %s: %s", state.folder, aws.save(runtime.clock.offset_seconds))

        self._stoppers.append(save_state)  # runs before aws.stop, after every later part

        state.autosave(self.stop_event, save=lambda: aws.save(runtime.clock.offset_seconds))
        threading.Thread(target=self._watch_aws, name="aws-watch", daemon=True).start()

    def _watch_aws(self) -> None:
        """The emulation's process ending on its own takes local mode down with it, loudly."""
        code = self.aws.process.wait()
        if not self.stop_event.is_set():
            log.error("mailproxy: the AWS emulation's process ended (exit %s); stopping", code)
            os.kill(os.getpid(), signal.SIGTERM)

    def _start_http(self, api_handler: Callable[[dict[str, Any], Any], dict[str, Any]]) -> None:
        from infra.local.http_adapter import make_server

        sink_handler = None
        if self.sink_port:
            from infra.local.sink import start_sink

            controller, sink_handler = start_sink(self.sink_port)
            self._stoppers.append(controller.stop)

        def local_routes(route: str) -> tuple[int, Any] | None:
            clock_answer = self._clock_route(route)
            if clock_answer is not None:
                return clock_answer
            if sink_handler is None:
                return (404, {"detail": "The SMTP sink is off (MAILPROXY_SINK_PORT=0)"})
            if route == "GET /local/sink/messages":
                return (200, {"ok": True, "messages": sink_handler.messages()})
            if route == "DELETE /local/sink/messages":
                sink_handler.clear()
                return (200, {"ok": True})
            return None

        server = make_server(self.port, api_handler, local_routes)
        server.start()
        self._stoppers.append(server.stop)

    def _start_ticker(self, load_handler: Callable[[str], Any]) -> None:
        from infra.local.ticker import Ticker
        from mailproxy import runtime

        targets = {"mailproxy-scheduler": load_handler("scheduler").lambda_handler}
        if REPORTER_HANDLER.exists():
            targets["mailproxy-reporter"] = load_handler("reporter").lambda_handler
        # DynamoDB's TTL, which moto does not emulate: expired items are deleted each tick, by
        # the proxy's clock (the one that wrote their expiry), so memory holds what is live.
        targets["dynamodb-ttl"] = lambda _event, _context: {
            "expired": self.aws.expire(runtime.clock())
        }
        targets["s3-lifecycle"] = expire_objects_on_tick
        # The bounce reader last: a slow mailbox does not hold up the others' tick.
        bouncer = load_handler("bouncer").lambda_handler
        targets["mailproxy-bouncer"] = bouncer
        self._use_local_bounce_trigger(bouncer)
        self.ticker = Ticker(targets, runtime.clock, self.stop_event)
        self.ticker.start()

    def _use_local_bounce_trigger(self, bouncer: Callable[[dict[str, Any], Any], Any]) -> None:
        """POST /instance/reload-bounce: the bouncer's handler at once, in a thread (on AWS,
        an asynchronous invoke of its function)."""
        from infra.local.events import LambdaContext
        from mailproxy import runtime
        from mailproxy.bounce_trigger import ThreadBounceTrigger

        def run(event: dict[str, Any]) -> None:
            try:
                bouncer(event, LambdaContext(function_name="mailproxy-bouncer"))
            except Exception:
                log.exception("bounce reload failed")

        runtime.use_bounce_trigger(ThreadBounceTrigger(run))
        self._stoppers.append(lambda: runtime.use_bounce_trigger(None))

    def _start_pollers(self, load_handler: Callable[[str], Any]) -> None:
        import boto3

        from infra.local.pollers import QueuePoller

        sqs = boto3.client("sqs")
        concurrency = {spec.priority.label: spec.max_concurrency for spec in QUEUES.values()}
        pollers = [
            # A handler module of its own per poller: each is one execution environment.
            QueuePoller(sqs, url, load_handler("sender").lambda_handler, self.stop_event)
            for label, url in self.queue_urls.items()
            if label != WAKEUPS_QUEUE
            for _ in range(min(concurrency[label], SENDERS_PER_QUEUE))
        ]
        if REPORTER_HANDLER.exists():
            pollers.append(
                QueuePoller(
                    sqs,
                    self.queue_urls[WAKEUPS_QUEUE],
                    load_handler("reporter").lambda_handler,
                    self.stop_event,
                )
            )
        for poller in pollers:
            poller.start()

        def stop_pollers() -> None:
            self.stop_event.set()
            for poller in pollers:
                poller.join(timeout=5)

        self._stoppers.append(stop_pollers)

    def _clock_route(self, route: str) -> tuple[int, Any] | None:
        """GET /local/clock, POST /local/clock/advance/<seconds> (then a tick at once),
        POST /local/tick, POST /local/faults/crash-next-send."""
        from mailproxy import runtime

        method, _, path = route.partition(" ")
        if (method, path) == ("GET", "/local/clock"):
            return (200, {"now": runtime.clock(), "offset_seconds": runtime.clock.offset_seconds})
        if method == "POST" and path.startswith("/local/clock/advance/"):
            try:
                seconds = float(path.rsplit("/", 1)[1])
            except ValueError:
                return (422, {"detail": "seconds must be a number"})
            if seconds < 0:
                return (422, {"detail": "the clock only moves forward"})
            runtime.clock.offset_seconds += seconds
            return (200, {"now": runtime.clock(), "ticked": self.ticker.tick_now()})
        if (method, path) == ("POST", "/local/tick"):
            return (200, {"ticked": self.ticker.tick_now()})
        if (method, path) == ("POST", "/local/faults/crash-next-send"):
            crash_next_send()
            return (200, {"ok": True})
        return None

    def stop(self) -> None:
        self.stop_event.set()
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                stopper()
            except Exception:
                log.exception("stopping a part of local mode failed")

    def banner(self) -> str:
        from infra.local.state import state_dir

        url = f"http://127.0.0.1:{self.port}"
        lines = [
            "mailproxy local mode is running",
            f"  API          {url}",
            f"  admin token  {self.admin_token}",
            f"  state        {self.state.folder if self.state else state_dir()}"
            " (kept across restarts)",
        ]
        if getattr(self, "emf", None) is not None:
            lines.append(f"  metrics      {self.emf.path} (EMF documents, one a line)")
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            lines.append(f"  AWS (moto)   {endpoint} (aws --endpoint-url {endpoint} ...)")
        if self.sink_port:
            account = {
                "id": "sink",
                "tenant_id": "demo",
                "host": "127.0.0.1",
                "port": self.sink_port,
                "use_tls": False,
            }
            message = {
                "messages": [
                    {
                        "id": "hello-1",
                        "tenant_id": "demo",
                        "account_id": "sink",
                        "from": "app@example.com",
                        "to": ["you@example.com"],
                        "subject": "Hello from mailproxy",
                        "body": "It works.",
                    }
                ]
            }
            header = f"-H 'X-API-Token: {self.admin_token}' -H 'Content-Type: application/json'"
            lines += [
                f"  SMTP sink    127.0.0.1:{self.sink_port}"
                f" (received mail: GET {url}/local/sink/messages)",
                "",
                "Send a first message:",
                f"  curl -s {header} -d '{json.dumps(account)}' {url}/account",
                f"  curl -s {header} -d '{json.dumps(message)}' {url}/commands/add-messages",
                f"  curl -s {url}/local/sink/messages",
            ]
        lines += ["", "Ctrl-C stops every part."]
        return "\n".join(lines)


def limit_malloc_arenas() -> None:
    """Two glibc malloc arenas instead of up to eight a core: local mode runs dozens of threads,
    and an arena each left tens of MiB free but held (measured: 50 MiB less at 3,000
    messages, at the same speed, since CPython's small objects never reach malloc's locks)."""
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")  # for the processes started from here
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to limit
        ctypes.CDLL(None).mallopt(-8, 2)  # M_ARENA_MAX, for this one: read at start otherwise


def main() -> int:
    limit_malloc_arenas()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("botocore", "urllib3", "werkzeug", "mail.log", "pynamodb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Without one, the token kept in the state folder (made on the first start) is used.
    token = os.environ.get("MAILPROXY_ADMIN_TOKEN", "")
    try:
        proxy = LocalProxy(
            port=_port_from_env(PORT_ENV, DEFAULT_PORT),
            sink_port=_port_from_env(SINK_PORT_ENV, DEFAULT_SINK_PORT),
            admin_token=token,
        )
    except StartupError as error:
        print(f"mailproxy: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # `kill -USR1 <pid>` prints every thread's stack: what a stuck local mode is doing.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        proxy.start()
    except StartupError as error:
        proxy.stop()
        print(f"mailproxy: {error}", file=sys.stderr)
        return 2
    print(proxy.banner(), flush=True)
    stop.wait()
    print("mailproxy: stopping", file=sys.stderr, flush=True)
    proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
