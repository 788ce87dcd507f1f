"""Cost per million delivered messages, measured on the happy path and priced at list prices.

Target: at most $5 per million messages (SES alone charges $100 per million).

N messages (default 1,000; `--messages N`) go 50 per request through the real api and sender
handlers on moto, to one account with one rate-limit window and a KMS-sealed SMTP password,
delivered to a local SMTP server (AUTH; it waits 50 ms before each greeting, its only delay
knob: a pooled connection pays it once per sender environment). bench/aws_calls.py's botocore
hooks count every AWS call; further hooks here read each call's request and response, so what
is priced is what was sent:
- DynamoDB on demand: write units from the size of each item written (the larger of before
  and after, read back from moto outside the count), doubled in transactions, plus the writes
  of the GSIs (infra/resources.py) the item enters, leaves or changes in; read units from the
  items returned (4 KB units, eventually consistent half, transactional double);
- SQS: requests per 64 KB of payload, the event source mapping's receive and delete batches
  included (the local poller does what it does: one receive per 10 records, one delete batch);
- Lambda: each handler invocation timed (moto's work inside it too, with local mode's patches
  of infra/local/moto_patches.py so that it does not grow with the table; an upper bound), billed
  per ms at the memory sizes of infra/constructs on arm64, plus requests;
- API Gateway HTTP API requests in 512 KB units; KMS Decrypt and S3 calls as counted;
- CloudWatch Logs ingestion: the bytes the handlers write to stdout/stderr (log lines at the
  deployed level, INFO, and EMF metrics) plus Lambda's START/END/REPORT lines.

Run: .venv/bin/python bench/cost.py [--messages N]
"""

from __future__ import annotations

import argparse
import io
import logging
import math
import os
import re
import sys
import time
import warnings
from collections import Counter, defaultdict
from typing import Any

import aws_calls
from aws_calls import ROOT, Module, account_for, counted, drain, hook_every_client, submit

TARGET = 5.0  # $ per million messages
SMTP_REPLY_DELAY = 0.05  # seconds, before each greeting (SmtpServer has no per-reply delay)
SMTP_CREDENTIALS = ("bench", "bench-password")

# List prices, us-east-1, as of 2026-12 (on-demand DynamoDB as halved in 2024-11), beyond
# any free tier, in dollars per unit named.
PRICES_AS_OF = "2026-12 list prices, us-east-1"
PRICES = {
    "dynamodb_wru": 0.625 / 1e6,  # per write request unit (on demand)
    "dynamodb_rru": 0.125 / 1e6,  # per read request unit (on demand)
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB chunk of a request
    "lambda_gb_second_arm64": 0.0000133334,
    "lambda_request": 0.20 / 1e6,
    "apigw_http_request": 1.00 / 1e6,  # HTTP API, first 300 M a month, per 512 KB unit
    "kms_request": 0.03 / 1e4,
    "s3_put": 0.005 / 1e3,  # PUT, COPY, POST, LIST
    "s3_get": 0.0004 / 1e3,  # GET and the rest
    "logs_ingested_gb": 0.50,  # CloudWatch Logs standard ingestion, first 10 TB
}
# Lambda's own START, END and REPORT lines per invocation (about 70 + 55 + 150 bytes).
PLATFORM_LOG_BYTES = 275

KB, SQS_CHUNK, APIGW_UNIT = 1024, 64 * 1024, 512 * 1024

dynamo_units: Counter[str] = Counter()  # "wru", "wru_gsi", "rru"
wru_by_table: Counter[str] = Counter()  # "<handler>: <table>", GSIs included
sqs_requests: Counter[str] = Counter()  # billed 64 KB chunks per operation
durations: defaultdict[str, list[float]] = defaultdict(list)
log_bytes: Counter[str] = Counter()
api_units = 0
_active: list[str] = []  # the handler whose output is being counted (never threads of ours)


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it: attribute names plus values (UTF-8 bytes)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return _number_size(data)
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "NS":
        return sum(_number_size(n) for n in data)
    if kind == "BS":
        return sum(len(b) for b in data)
    # A list or map: 3 bytes, plus 1 per element, plus its elements (and a map's names).
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in data)
    return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in data.items())


def _number_size(text: str) -> int:
    digits = len(text.lstrip("-").replace(".", "").strip("0")) or 1
    return (digits + 1) // 2 + 1  # 1 byte per 2 significant digits, plus 1


class _Keys:
    """Primary keys and GSIs per physical table name, from infra/resources.py."""

    def __init__(self, physical: dict[str, str]) -> None:
        from infra.resources import TABLES

        self.specs = {physical[key]: spec for key, spec in TABLES.items()}

    def key_of(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        spec = self.specs[table]
        names = [spec.partition_key] + ([spec.sort_key] if spec.sort_key else [])
        return {name: item[name] for name in names}

    def index_writes(
        self, table: str, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> int:
        """Write units a change costs the table's GSIs (all project every attribute)."""
        units = 0
        for index in self.specs[table].indexes:
            names = [index.partition_key] + ([index.sort_key] if index.sort_key else [])

            def entry(
                item: dict[str, Any] | None, names: list[str] = names
            ) -> tuple[Any, ...] | None:
                if item is None or any(name not in item for name in names):
                    return None  # sparse: not in this index
                return tuple(str(item[name]) for name in names)

            old, new = entry(before), entry(after)
            if old is not None and (new != old or after is None):
                units += _write_units(item_size(before or {}))  # removed (or moved)
            if new is not None and (new != old or before != after):
                units += _write_units(item_size(after or {}))  # added, moved or changed
        return units


def _write_units(size: int) -> int:
    return max(1, math.ceil(size / KB))


def _read_units(size: int) -> int:
    return max(1, math.ceil(size / (4 * KB)))


class _DynamoMeter:
    """Capacity units per call, from its parameters, its response and the items it changed
    (read back before and after through a client the counting hooks are not on)."""

    def __init__(self, peek: Any, keys: _Keys) -> None:
        self.peek = peek
        self.keys = keys

    def _writes(
        self, operation: str, params: dict[str, Any]
    ) -> list[tuple[str, dict[str, Any], bool]]:
        if operation == "PutItem":
            return [
                (params["TableName"], self.keys.key_of(params["TableName"], params["Item"]), False)
            ]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(params["TableName"], params["Key"], False)]
        writes = []
        if operation == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        writes.append(
                            (table, self.keys.key_of(table, request["PutRequest"]["Item"]), False)
                        )
                    else:
                        writes.append((table, request["DeleteRequest"]["Key"], False))
        if operation == "TransactWriteItems":
            for action in params["TransactItems"]:
                ((_, spec),) = action.items()
                key = spec.get("Key") or self.keys.key_of(spec["TableName"], spec["Item"])
                writes.append((spec["TableName"], key, True))
        return writes

    def _item(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.peek.get_item(
            TableName=table, Key=key, ConsistentRead=True
        ).get("Item")
        return item

    def before(
        self, event_name: str, params: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        if aws_calls.current_handler():
            writes = self._writes(event_name.rsplit(".", 1)[-1], params)
            context["bench"] = (params, [(w, self._item(w[0], w[1])) for w in writes])

    def after(
        self, event_name: str, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        if "bench" not in context:
            return
        params, befores = context.pop("bench")
        for (table, key, transactional), before in befores:
            after = self._item(table, key)
            size = max(item_size(before or {}), item_size(after or {}))
            # A ConditionCheck is taken as a transactional write of the item it checks.
            units = _write_units(size) * (2 if transactional else 1)
            gsi = self.keys.index_writes(table, before, after)
            dynamo_units["wru"] += units
            dynamo_units["wru_gsi"] += gsi
            logical = self.keys.specs[table].logical_name
            wru_by_table[f"{aws_calls.current_handler()}: {logical}"] += units + gsi
        dynamo_units["rru"] += _read_cost(event_name.rsplit(".", 1)[-1], params, parsed)


def _read_cost(operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> float:
    def factor(consistent: bool | None) -> float:
        return 1.0 if consistent else 0.5

    if operation == "GetItem":
        return _read_units(item_size(parsed.get("Item", {}))) * factor(params.get("ConsistentRead"))
    if operation in ("Query", "Scan"):
        # Billed on the total read, rounded up once (a GSI is only eventually consistent).
        total = sum(item_size(item) for item in parsed.get("Items", []))
        return _read_units(total) * factor(params.get("ConsistentRead"))
    if operation == "BatchGetItem":
        units = 0.0
        for table, request in params["RequestItems"].items():
            found = parsed.get("Responses", {}).get(table, [])
            missing = len(request["Keys"]) - len(found)
            # Each item rounded up on its own; a key with no item still costs one unit.
            each = sum(_read_units(item_size(item)) for item in found) + max(0, missing)
            units += each * factor(request.get("ConsistentRead"))
        return units
    if operation == "TransactGetItems":
        return sum(
            2 * _read_units(item_size(r.get("Item", {}))) for r in parsed.get("Responses", [])
        )
    return 0.0


def _sqs_payload(entry: dict[str, Any]) -> int:
    attributes = entry.get("MessageAttributes") or {}
    return len(entry.get("MessageBody", entry.get("Body", "")).encode()) + sum(
        len(name)
        + len(value.get("DataType", ""))
        + len(str(value.get("StringValue", value.get("BinaryValue", ""))))
        for name, value in attributes.items()
    )


def _sqs_after(event_name: str, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    owner = aws_calls.current_handler()
    params = context.pop("bench_sqs", None)
    if not owner or params is None:
        return
    operation = event_name.rsplit(".", 1)[-1]
    if operation == "GetQueueAttributes":
        return  # the local poller looking up its queue's ARN: a mapping knows it
    if operation == "SendMessage":
        payload = _sqs_payload(params)
    elif operation == "SendMessageBatch":
        payload = sum(_sqs_payload(entry) for entry in params["Entries"])
    elif operation == "ReceiveMessage":
        payload = sum(_sqs_payload(message) for message in parsed.get("Messages", []))
    else:
        payload = 0
    sqs_requests[f"{owner}: {operation}"] += max(1, math.ceil(payload / SQS_CHUNK))


def _sqs_before(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context["bench_sqs"] = params


class _Tally(io.TextIOBase):
    """stdout/stderr: what a handler writes is counted (as CloudWatch Logs would ingest it)
    and dropped; anything else goes through."""

    def __init__(self, through: Any) -> None:
        self.through = through

    def write(self, text: str) -> int:
        if _active:
            log_bytes[_active[-1]] += len(text.encode())
        else:
            self.through.write(text)
        return len(text)

    def flush(self) -> None:
        self.through.flush()


def timed(name: str, handler: Any) -> Any:
    """`handler`, counted as aws_calls counts it, timed, and its output measured."""
    inner = counted(name, handler)

    def invoke(event: dict[str, Any], context: Any) -> Any:
        global api_units
        if name == "api":
            api_units += max(1, math.ceil(len((event.get("body") or "").encode()) / APIGW_UNIT))
        _active.append(name)
        start = time.perf_counter()
        try:
            return inner(event, context)
        finally:
            durations[name].append(time.perf_counter() - start)
            _active.pop()

    return invoke


def memory_mb(function: str) -> int:
    """The function's memory size, read from its construct (so the bench follows a change)."""
    source = (ROOT / "infra" / "constructs" / f"{function}.py").read_text()
    found = re.search(r"memory_size=(\d+)", source)
    return int(found.group(1)) if found else 512  # MailProxyFunction's default


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=1000)
    messages = parser.parse_args().messages

    aws_calls.set_up_environment("INFO")  # the deployed level: infra sets none, Powertools: INFO
    sys.stdout, sys.stderr = _Tally(sys.stdout), _Tally(sys.stderr)  # before any logger exists

    import boto3
    from moto import mock_aws

    from infra.local import moto_patches
    from infra.local.events import load_handler
    from infra.local.pollers import poll_once
    from infra.local.provision import provision
    from mailproxy import runtime
    from tests.support.handlers import ApiClient
    from tests.support.smtp_servers import SmtpServer

    # Local mode's patches: moto's cost would otherwise grow with every item stored (a
    # transaction deep-copies its tables), and the handlers' durations with it.
    moto_patches.install()
    # AUTH without TLS on 127.0.0.1 is the point here: aiosmtpd's warnings about it are noise.
    warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    peek = boto3.client("dynamodb")  # created before the hooks: its reads are not counted
    meter: list[_DynamoMeter] = []  # once the tables exist

    # A provide-client-params hook that returns anything replaces the call's parameters.
    def before(**kwargs: Any) -> None:
        if meter:
            meter[0].before(**kwargs)

    def after(**kwargs: Any) -> None:
        if meter:
            meter[0].after(**kwargs)

    hook_every_client(
        ("provide-client-params.dynamodb.*", before),
        ("after-call.dynamodb.*", after),
        ("provide-client-params.sqs.*", _sqs_before),
        ("after-call.sqs.*", _sqs_after),
    )

    def mapping(sqs: Any, queue_url: str, handler: Any) -> int:
        # The event source mapping's receive and delete calls, counted as its own.
        poll = counted("event source mapping", lambda url, h: poll_once(sqs, url, h))
        return int(poll(queue_url, handler))

    from tests.support.moto_serial import one_request_at_a_time

    with (
        mock_aws(),
        one_request_at_a_time(),
        SmtpServer(credentials=SMTP_CREDENTIALS, greeting_delay=SMTP_REPLY_DELAY) as smtp,
    ):
        names = provision(boto3.Session())
        os.environ["MAILPROXY_RESOURCES"] = names.to_json()
        runtime.reset()
        meter.append(_DynamoMeter(peek, _Keys(names.tables)))
        api = ApiClient(Module(timed("api", load_handler("api").lambda_handler)), "bench-token")
        sender = timed("sender", load_handler("sender").lambda_handler)
        user, password = SMTP_CREDENTIALS
        account = account_for(smtp, user=user, password=password)
        assert api.call("POST", "/account", account)[0] == 200
        # The account set-up is not part of a message's cost.
        for tally in (aws_calls.calls, dynamo_units, wru_by_table, sqs_requests, log_bytes):
            tally.clear()
        durations.clear()
        global api_units
        api_units = 0
        submit(api, messages)
        drain(boto3.client("sqs"), names.queues["medium"], sender, poll=mapping)
        delivered = len(smtp.received)
        assert delivered == messages, delivered

    sys.stdout, sys.stderr = sys.stdout.through, sys.stderr.through  # type: ignore[attr-defined]
    _report(messages)
    return 0


def _report(delivered: int) -> None:
    per_million = 1e6 / delivered
    calls = aws_calls.calls
    print(f"{delivered} messages, 50 per request, one rate-limit window; {PRICES_AS_OF}\n")
    print(f"{'calls':>7}  {'per message':>11}  operation")
    for name, count in sorted(calls.items(), key=lambda item: (-item[1], item[0])):
        print(f"{count:>7}  {count / delivered:>11.3f}  {name}")
    for name, count in sorted(sqs_requests.items()):
        if name.startswith("event source mapping"):
            print(f"{count:>7}  {count / delivered:>11.3f}  {name} (billed requests)")
    print(f"\n{'WRU':>7}  {'per message':>11}  table written")
    for name, units in sorted(wru_by_table.items(), key=lambda item: (-item[1], item[0])):
        print(f"{units:>7}  {units / delivered:>11.3f}  {name}")
    print()

    def count_of(operation: str) -> int:
        return sum(n for name, n in calls.items() if name.endswith(operation))

    lines: list[tuple[str, float, str]] = []
    wru = dynamo_units["wru"] + dynamo_units["wru_gsi"]
    lines.append(
        (
            "dynamodb writes",
            wru * PRICES["dynamodb_wru"],
            f"{wru / delivered:.2f} WRU/message, "
            f"{dynamo_units['wru_gsi'] / delivered:.2f} of them GSI",
        )
    )
    lines.append(
        (
            "dynamodb reads",
            dynamo_units["rru"] * PRICES["dynamodb_rru"],
            f"{dynamo_units['rru'] / delivered:.2f} RRU/message",
        )
    )
    sqs_total = sum(sqs_requests.values())
    lines.append(
        (
            "sqs",
            sqs_total * PRICES["sqs_request"],
            f"{sqs_total / delivered:.3f} billed requests/message, mapping included",
        )
    )
    for function in ("api", "sender"):
        runs = durations[function]
        gb = memory_mb(function) / 1024
        # Billed per invocation, rounded up to the millisecond.
        gb_seconds = sum(math.ceil(seconds * 1000) / 1000 for seconds in runs) * gb
        lines.append(
            (
                f"lambda {function}",
                gb_seconds * PRICES["lambda_gb_second_arm64"]
                + len(runs) * PRICES["lambda_request"],
                f"{len(runs)} invocations, {1000 * sum(runs) / max(1, len(runs)):.0f} ms mean "
                f"at {memory_mb(function)} MB arm64",
            )
        )
    lines.append(
        (
            "api gateway",
            api_units * PRICES["apigw_http_request"],
            f"{api_units} HTTP API requests (512 KB units)",
        )
    )
    kms = count_of("kms.Decrypt")
    lines.append(
        ("kms", kms * PRICES["kms_request"], f"{kms} Decrypt calls (cached per warm environment)")
    )
    s3_puts, s3_gets = count_of("s3.PutObject"), count_of("s3.GetObject")
    lines.append(
        (
            "s3",
            s3_puts * PRICES["s3_put"] + s3_gets * PRICES["s3_get"],
            f"{s3_puts} PUT, {s3_gets} GET (no payload over 100 KB in this run)",
        )
    )
    invocations = sum(len(runs) for runs in durations.values())
    ingested = sum(log_bytes.values()) + invocations * PLATFORM_LOG_BYTES
    lines.append(
        (
            "cloudwatch logs",
            ingested / 1e9 * PRICES["logs_ingested_gb"],
            f"{ingested / delivered:.0f} bytes/message: "
            + ", ".join(f"{k} {v} B" for k, v in sorted(log_bytes.items()))
            + f", Lambda's lines {invocations * PLATFORM_LOG_BYTES} B",
        )
    )

    for name, dollars, detail in lines:
        print(f"{name + ':':<17} ${dollars * per_million:>8.4f} per million messages  ({detail})")
    total = sum(dollars for _, dollars, _ in lines) * per_million
    top = max(lines, key=lambda line: line[1])
    print(f"total: ${total:.2f} per million messages")
    verdict = "met" if total <= TARGET else "NOT met"
    print(
        f"target <= ${TARGET:.0f}: {verdict}; dominated by {top[0]} "
        f"({100 * top[1] * per_million / total:.0f}%)"
    )


if __name__ == "__main__":
    sys.exit(main())
