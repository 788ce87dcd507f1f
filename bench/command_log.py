"""What the command log adds to a state-changing call of the api Lambda (issue: "recording
never slows or fails the call it records").

On moto in this process: 300 POST /account upserts and 40 add-messages calls of 50 messages,
first with the command log recording, then with its recording step replaced by nothing (the
same handler, the same moto). Printed: ms per call each way, the difference, and the AWS calls
and bytes it adds per call. On AWS the added time is one PutItem round trip (a few ms); moto's
figure includes its own work for that PutItem.

Target: one write per call and no more than 5 ms added per call here.

Run: .venv/bin/python bench/command_log.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "layers" / "mailproxy" / "python")]

from aws_calls import calls, counted, hook_every_client, set_up_environment  # noqa: E402

UPSERTS = 300
SUBMISSIONS = 40
PER_REQUEST = 50
TARGET_ADDED_MS = 5.0


def _timed(api: Any, method: str, path: str, bodies: list[Any]) -> list[float]:
    spent = []
    for body in bodies:
        started = time.perf_counter()
        status, _ = api.call(method, path, body)
        spent.append((time.perf_counter() - started) * 1000)
        assert status == 200, status
    return spent


def main() -> int:
    set_up_environment()
    hook_every_client()

    import boto3
    from moto import mock_aws

    from infra.local import moto_patches
    from infra.local.events import load_handler
    from infra.local.provision import provision
    from mailproxy import runtime
    from tests.support.handlers import ApiClient
    from tests.support.moto_serial import one_request_at_a_time

    moto_patches.install()  # the emulation local mode runs on: cost per call, not per item
    with mock_aws(), one_request_at_a_time():
        names = provision(boto3.Session())
        os.environ["MAILPROXY_RESOURCES"] = names.to_json()
        runtime.reset()
        module = load_handler("api")
        api = ApiClient(module, "bench-token")
        handler = module.lambda_handler
        module.lambda_handler = counted("api", handler)
        account = {"id": "main", "tenant_id": "bench", "host": "127.0.0.1", "port": 2525}
        assert api.call("POST", "/account", account)[0] == 200

        def messages(round_: int, label: str) -> dict[str, Any]:
            return {
                "messages": [
                    {
                        "id": f"{label}-{round_}-{n}",
                        "tenant_id": "bench",
                        "account_id": "main",
                        "from": "app@bench.test",
                        "to": [f"user{n}@example.test"],
                        "subject": f"Message {n}",
                        "body": "Hello " * 40,
                        # Far in the future: nothing is queued for a sender, nothing sent.
                        "deferred_ts": 4_000_000_000,
                    }
                    for n in range(PER_REQUEST)
                ]
            }

        recording = module._record_command
        ways = {"recorded": recording, "not recorded": lambda *_: None}
        spent: dict[str, dict[str, list[float]]] = {w: {"upsert": [], "submit": []} for w in ways}
        puts: dict[str, int] = dict.fromkeys(ways, 0)
        # The two ways alternate call by call, so the store's growth weighs on both alike.
        for n in range(UPSERTS):
            for way, record in ways.items():
                module._record_command = record
                before = calls.get("api: dynamodb.PutItem", 0)
                body = account | {"limit_per_minute": n + 1}
                spent[way]["upsert"] += _timed(api, "POST", "/account", [body])
                puts[way] += calls.get("api: dynamodb.PutItem", 0) - before
        for n in range(SUBMISSIONS):
            for way, record in ways.items():
                module._record_command = record
                before = calls.get("api: dynamodb.PutItem", 0)
                body = messages(n, way.replace(" ", "-"))
                spent[way]["submit"] += _timed(api, "POST", "/commands/add-messages", [body])
                puts[way] += calls.get("api: dynamodb.PutItem", 0) - before
        figures = {
            way: {
                "upsert": statistics.median(spent[way]["upsert"]),
                "submit": statistics.median(spent[way]["submit"]),
                "puts": puts[way] / (UPSERTS + SUBMISSIONS),
            }
            for way in ways
        }
        module._record_command = recording
        table = boto3.resource("dynamodb").Table(names.tables["commands"])
        items = table.scan()["Items"]
        sizes = [len(bytes(item["payload_zlib"])) for item in items]

    on, off = figures["recorded"], figures["not recorded"]
    print(f"{UPSERTS} POST /account, {SUBMISSIONS} add-messages of {PER_REQUEST} (median ms)")
    print(f"{'':14}{'upsert':>9}{'submit':>9}")
    for label in ("recorded", "not recorded"):
        print(f"{label:14}{figures[label]['upsert']:9.2f}{figures[label]['submit']:9.2f}")
    added = max(on["upsert"] - off["upsert"], on["submit"] - off["submit"])
    print(
        f"added per call: {on['upsert'] - off['upsert']:.2f} ms (upsert), "
        f"{on['submit'] - off['submit']:.2f} ms (submit); "
        f"PutItem per call {on['puts'] - off['puts']:.2f} more"
    )
    print(
        f"stored payload: median {statistics.median(sizes):.0f} B, max {max(sizes)} B compressed "
        f"({len(items)} records)"
    )
    print(f"target: <= {TARGET_ADDED_MS:.0f} ms added per call (reached {added:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
