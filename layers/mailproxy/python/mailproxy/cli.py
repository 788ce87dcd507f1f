"""`mailproxy`: an operator's command line for local mode and a deployed stack alike.

Connection: `--url` (env MAILPROXY_URL, default http://127.0.0.1:8000) or `--stack NAME` (the
"ApiUrl" output of that CloudFormation stack), and `--token` (env MAILPROXY_TOKEN, then
MAILPROXY_ADMIN_TOKEN). The token is sent in `X-API-Token` and never printed.

Exit codes: 0 ok, 1 API or AWS error (the status and detail are printed), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import requests

from mailproxy.domain.priority import Priority
from mailproxy.timeouts import CLI_AWS_CONNECT_SECONDS, CLI_AWS_READ_SECONDS, CLI_HTTP_SECONDS

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_QUEUE_PREFIX = "mailproxy"
STATUSES = ("pending", "scheduled", "deferred", "sending", "sent", "error")
LAST_ERRORS = 3
EXIT_OK, EXIT_API_ERROR, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A failure to report in one line with exit code 1."""


class ApiError(CliError):
    def __init__(self, status: int, detail: Any) -> None:
        self.status = status
        self.detail = detail
        text = detail if isinstance(detail, str) else json.dumps(detail)
        super().__init__(f"HTTP {status}: {text}")


class Api:
    """The proxy's HTTP API, every call with a timeout."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self._session = requests.Session()
        if token:
            self._session.headers["X-API-Token"] = token

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        try:
            response = self._session.request(
                method,
                self.url + path,
                params={k: v for k, v in (params or {}).items() if v is not None},
                json=body,
                timeout=CLI_HTTP_SECONDS,
            )
        except requests.RequestException as error:
            raise CliError(f"cannot reach {self.url}: {error}") from error
        try:
            payload = response.json() if response.content else None
        except ValueError:
            payload = None
        if not response.ok:
            detail = payload.get("detail", payload) if isinstance(payload, dict) else None
            raise ApiError(response.status_code, detail if detail is not None else response.text)
        return payload


# --- AWS --------------------------------------------------------------------------------


def _aws_client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CLI_AWS_CONNECT_SECONDS,
        read_timeout=CLI_AWS_READ_SECONDS,
        retries={"max_attempts": 2},
    )
    # boto3's stubs type client() per service name; here the name is data.
    factory: Any = boto3.client
    return factory(service, endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None, config=config)


def stack_api_url(stack: str) -> str:
    """The "ApiUrl" output of a CloudFormation stack."""
    try:
        stacks = _aws_client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except Exception as error:
        raise CliError(f"cannot read stack {stack!r}: {error}") from error
    for output in stacks[0].get("Outputs", []) if stacks else []:
        if output.get("OutputKey") == "ApiUrl":
            return str(output["OutputValue"])
    raise CliError(f"stack {stack!r} has no ApiUrl output")


def _queue_url(sqs: Any, name: str) -> str:
    return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])


def dlq_depths(prefix: str) -> dict[str, int | None]:
    """Messages in each priority's dead-letter queue (None: that queue does not exist).

    Raises on anything else (no credentials, no region, no endpoint)."""
    sqs = _aws_client("sqs")
    depths: dict[str, int | None] = {}
    for priority in Priority:
        try:
            url = _queue_url(sqs, f"{prefix}-{priority.label}-dlq")
        except sqs.exceptions.QueueDoesNotExist:
            depths[priority.label] = None
            continue
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        depths[priority.label] = int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
            attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
        )
    return depths


def redrive(prefix: str, label: str, limit: int | None) -> int:
    """Move up to `limit` messages (all when None) from `<prefix>-<label>-dlq` back to
    `<prefix>-<label>`: each is sent to the queue before it is deleted from the DLQ.

    A loop rather than SQS StartMessageMoveTask: the task moves a whole DLQ (it has a rate,
    MaxNumberOfMessagesPerSecond, but no count, so --max could not be kept) and runs after the
    call returns; and moto 5.2.5, which local mode and the tests run on, does not implement it.
    """
    sqs = _aws_client("sqs")
    source = _queue_url(sqs, f"{prefix}-{label}-dlq")
    target = _queue_url(sqs, f"{prefix}-{label}")
    moved = 0
    while limit is None or moved < limit:
        batch = 10 if limit is None else min(10, limit - moved)
        received = sqs.receive_message(
            QueueUrl=source,
            MaxNumberOfMessages=batch,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
            VisibilityTimeout=60,
        ).get("Messages", [])
        if not received:
            break
        for message in received:
            send: dict[str, Any] = {"QueueUrl": target, "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                send["MessageAttributes"] = message["MessageAttributes"]
            sqs.send_message(**send)
            sqs.delete_message(QueueUrl=source, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


# --- commands ---------------------------------------------------------------------------


def _ts(value: Any) -> str:
    if value is None:
        return ""
    try:
        return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OverflowError):
        return str(value)


def _priority_label(value: Any) -> str:
    try:
        return Priority.parse(value).label
    except (TypeError, ValueError):
        return str(value)


def _list_messages(
    api: Api, tenant: str | None, active: bool = False, limit: int | None = None
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"tenant_id": tenant, "limit": limit}
    if active:
        params["active_only"] = "true"
    answer = api.call("GET", "/messages", params=params)
    return list(answer.get("messages", [])) if isinstance(answer, dict) else []


def cmd_status(api: Api, args: argparse.Namespace) -> int:
    health = api.call("GET", "/health")
    status = api.call("GET", "/status")
    print(f"url: {api.url}")
    print(f"health: {health.get('status') if isinstance(health, dict) else health}")
    print(f"ok: {str(bool(status.get('ok'))).lower()}")
    print(f"active: {str(bool(status.get('active'))).lower()}")
    return EXIT_OK


def cmd_diagnose(api: Api, args: argparse.Namespace) -> int:
    records = _list_messages(api, args.tenant)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        key = (str(record.get("tenant_id", "?")), str(record.get("account_id") or "-"))
        groups[key].append(record)
    if not groups:
        print("no messages" + (f" for tenant {args.tenant}" if args.tenant else ""))
    for (tenant, account), group in sorted(groups.items()):
        counts = Counter(str(r.get("status", "unknown")) for r in group)
        names = list(STATUSES) + sorted(set(counts) - set(STATUSES))
        print(f"tenant {tenant} account {account}: {len(group)} message(s)")
        print("  " + " ".join(f"{name}={counts.get(name, 0)}" for name in names))
        errors = [r for r in group if r.get("error")]
        errors.sort(key=lambda r: float(r.get("error_ts") or 0), reverse=True)
        if errors:
            print("  last errors:")
            for record in errors[:LAST_ERRORS]:
                print(f"    {record.get('id')} at {_ts(record.get('error_ts'))}: {record['error']}")
    try:
        depths = dlq_depths(args.queue_prefix)
    except Exception:
        print("DLQ depth: unavailable (no AWS access)")
    else:
        shown = " ".join(
            f"{label}={'missing' if depth is None else depth}" for label, depth in depths.items()
        )
        print(f"DLQ depth: {shown}")
    return EXIT_OK


def cmd_send(api: Api, args: argparse.Namespace) -> int:
    message_id = f"cli-{time.time_ns() // 1_000_000}"
    message: dict[str, Any] = {
        "id": message_id,
        "tenant_id": args.tenant,
        "account_id": args.account,
        "from": args.from_addr,
        "to": args.to,
        "subject": args.subject,
        "body": args.body if args.body is not None else f"Test message {message_id}.",
    }
    if args.priority is not None:
        message["priority"] = args.priority
    answer = api.call("POST", "/commands/add-messages", body={"messages": [message]})
    print(f"id: {message_id}")
    print(json.dumps(answer, indent=2, sort_keys=True))
    return EXIT_OK


def _outcome(record: dict[str, Any]) -> str:
    if record.get("sent_ts") is not None:
        return f"sent {_ts(record['sent_ts'])}"
    if record.get("error"):
        text = str(record["error"])
        return f"error: {text[:60] + '...' if len(text) > 63 else text}"
    return ""


def cmd_messages(api: Api, args: argparse.Namespace) -> int:
    records = _list_messages(api, args.tenant, args.active, args.limit)
    if args.json:
        print(json.dumps(records, indent=2, sort_keys=True))
        return EXIT_OK
    header = ("ID", "STATUS", "PRIORITY", "ACCOUNT", "SENT/ERROR")
    rows = [
        (
            str(r.get("id", "")),
            str(r.get("status", "")),
            _priority_label(r.get("priority", "")),
            str(r.get("account_id") or ""),
            _outcome(r),
        )
        for r in records
    ]
    _print_table(header, rows)
    print(f"{len(rows)} message(s)")
    return EXIT_OK


def _print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Columns padded to their widest cell; the last column is left as long as it is."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        print("  ".join([*cells, row[-1]]).rstrip())


def _since(hours: float | None) -> int | None:
    return None if hours is None else int(time.time() - hours * 3600)


def cmd_commands(api: Api, args: argparse.Namespace) -> int:
    """The command log, newest first (or, with --export, oldest first as a replay needs)."""
    params = {"tenant_id": args.tenant, "since_ts": _since(args.since_hours)}
    if args.export:
        answer = api.call("GET", "/command-log/export", params=params)
        print(json.dumps(answer.get("commands", []), indent=2))
        return EXIT_OK
    params |= {"endpoint_filter": args.endpoint, "limit": args.limit}
    commands = api.call("GET", "/command-log", params=params).get("commands", [])
    if args.json:
        print(json.dumps(commands, indent=2, sort_keys=True))
        return EXIT_OK
    rows = [
        (
            _ts(c.get("command_ts")),
            str(c.get("response_status", "")),
            str(c.get("tenant_id") or "-"),
            str(c.get("endpoint", "")),
        )
        for c in commands
    ]
    _print_table(("TIME", "STATUS", "TENANT", "ENDPOINT"), rows)
    print(f"{len(rows)} command(s)")
    return EXIT_OK


def cmd_bounces(api: Api, args: argparse.Namespace) -> int:
    """Bounces recorded since --since-hours, per (tenant, account, type), then the latest."""
    since = _since(args.since_hours) or 0
    params = {"tenant_id": args.tenant, "include_history": "true"}
    records = api.call("GET", "/messages", params=params).get("messages", [])
    counts: Counter[tuple[str, str, str]] = Counter()
    latest: list[tuple[int, str, str, str]] = []
    for record in records:
        for event in record.get("history") or []:
            if event.get("event_type") != "bounce" or int(event.get("event_ts", 0)) < since:
                continue
            meta = event.get("metadata") or {}
            kind = str(meta.get("bounce_type", "?"))
            account = str(record.get("account_id") or "-")
            counts[(str(record.get("tenant_id", "")), account, kind)] += 1
            reason = f"{meta.get('bounce_code', '')} {meta.get('bounce_reason', '')}".strip()
            latest.append((int(event.get("event_ts", 0)), str(record.get("id", "")), kind, reason))
    rows = [(t, a, k, str(n)) for (t, a, k), n in sorted(counts.items())]
    _print_table(("TENANT", "ACCOUNT", "TYPE", "BOUNCES"), rows)
    print(f"{sum(counts.values())} bounce(s)")
    for ts, message_id, kind, reason in sorted(latest, reverse=True)[: args.limit]:
        print(f"  {_ts(ts)}  {message_id}  {kind}  {reason[:80]}")
    return EXIT_OK


def cmd_redrive_dlq(api: Api | None, args: argparse.Namespace) -> int:
    label = args.priority.label
    try:
        moved = redrive(args.queue_prefix, label, args.max)
    except Exception as error:
        raise CliError(f"redrive of {args.queue_prefix}-{label}-dlq failed: {error}") from error
    queue = f"{args.queue_prefix}-{label}"
    print(f"moved {moved} message(s) from {queue}-dlq to {queue}")
    return EXIT_OK


# --- parsing ----------------------------------------------------------------------------


def _priority(value: str) -> Priority:
    try:
        return Priority.parse(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def build_parser() -> argparse.ArgumentParser:
    # The connection options are accepted before and after the command name.
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help=f"API base URL (env MAILPROXY_URL, default {DEFAULT_URL})",
    )
    connection.add_argument(
        "--token",
        default=argparse.SUPPRESS,
        help="API token (env MAILPROXY_TOKEN or MAILPROXY_ADMIN_TOKEN)",
    )
    connection.add_argument(
        "--stack",
        default=argparse.SUPPRESS,
        help='read the API URL from this CloudFormation stack\'s "ApiUrl" output',
    )
    parser = argparse.ArgumentParser(
        prog="mailproxy", description="Operate a mail proxy.", parents=[connection]
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    status = commands.add_parser("status", parents=[connection], help="health and active flag")
    status.set_defaults(handler=cmd_status)

    diagnose = commands.add_parser(
        "diagnose", parents=[connection], help="message counts, last errors, DLQ depth"
    )
    diagnose.add_argument("--tenant", help="only this tenant (default: every tenant)")
    diagnose.add_argument("--queue-prefix", default=DEFAULT_QUEUE_PREFIX)
    diagnose.set_defaults(handler=cmd_diagnose)

    send = commands.add_parser("send", parents=[connection], help="queue one test message")
    send.add_argument("--tenant", required=True)
    send.add_argument("--account", required=True)
    send.add_argument("--to", required=True, help="recipient(s), comma-separated")
    send.add_argument("--subject", default="mailproxy test message")
    send.add_argument("--body")
    send.add_argument("--from", dest="from_addr", default="mailproxy-cli@example.com")
    send.add_argument("--priority", help="0..3 or immediate/high/medium/low")
    send.set_defaults(handler=cmd_send)

    messages = commands.add_parser("messages", parents=[connection], help="list messages")
    messages.add_argument("--tenant")
    messages.add_argument("--active", action="store_true", help="only messages not yet finished")
    messages.add_argument("--limit", type=_positive)
    messages.add_argument("--json", action="store_true", help="print the records as JSON")
    messages.set_defaults(handler=cmd_messages)

    command_log = commands.add_parser(
        "commands", parents=[connection], help="the command log: every state-changing call"
    )
    command_log.add_argument("--tenant")
    command_log.add_argument("--since-hours", type=float, help="only the last N hours")
    command_log.add_argument("--endpoint", help="only endpoints containing this text")
    command_log.add_argument("--limit", type=_positive, default=100)
    command_log.add_argument("--json", action="store_true", help="print the records as JSON")
    command_log.add_argument(
        "--export", action="store_true", help="oldest first, as a replay sends them (JSON)"
    )
    command_log.set_defaults(handler=cmd_commands)

    bounces = commands.add_parser(
        "bounces", parents=[connection], help="recent bounces per account and type"
    )
    bounces.add_argument("--tenant")
    bounces.add_argument("--since-hours", type=float, default=24.0)
    bounces.add_argument("--limit", type=_positive, default=10, help="latest bounces listed")
    bounces.set_defaults(handler=cmd_bounces)

    redrive_dlq = commands.add_parser(
        "redrive-dlq", parents=[connection], help="move a priority's DLQ back to its queue"
    )
    redrive_dlq.add_argument("--priority", required=True, type=_priority, help="label or 0..3")
    redrive_dlq.add_argument("--max", type=_positive, help="move at most N (default: all)")
    redrive_dlq.add_argument("--queue-prefix", default=DEFAULT_QUEUE_PREFIX)
    redrive_dlq.set_defaults(handler=cmd_redrive_dlq, needs_api=False)
    return parser


def _api(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Api:
    url = getattr(args, "url", None)
    stack = getattr(args, "stack", None)
    if url and stack:
        parser.error("give --url or --stack, not both")
    if stack:
        url = stack_api_url(stack)
    url = url or os.environ.get("MAILPROXY_URL") or DEFAULT_URL
    token = (
        getattr(args, "token", None)
        or os.environ.get("MAILPROXY_TOKEN")
        or os.environ.get("MAILPROXY_ADMIN_TOKEN")
    )
    return Api(url, token)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        handler: Callable[[Any, argparse.Namespace], int] = args.handler
        api = _api(parser, args) if getattr(args, "needs_api", True) else None
        return handler(api, args)
    except SystemExit as exit_:  # argparse: --help (0) and usage errors (2)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    except ApiError as error:
        print(f"error: HTTP {error.status}", file=sys.stderr)
        detail = error.detail if isinstance(error.detail, str) else json.dumps(error.detail)
        print(f"detail: {detail}", file=sys.stderr)
        return EXIT_API_ERROR
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_API_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
