"""The BounceTrigger adapters: an asynchronous invoke of the bouncer on AWS, its handler in a
thread in local mode; both return at once."""

from __future__ import annotations

import json
import threading
from typing import Any

from mailproxy.bounce_trigger import RELOAD_EVENT, LambdaBounceTrigger, ThreadBounceTrigger


class RecordingLambda:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"StatusCode": 202}


def test_on_aws_the_bouncer_is_invoked_asynchronously_with_a_reload() -> None:
    client = RecordingLambda()
    LambdaBounceTrigger(client, "mailproxy-bouncer").trigger()
    [call] = client.calls
    assert call["FunctionName"] == "mailproxy-bouncer"
    assert call["InvocationType"] == "Event"
    assert json.loads(call["Payload"]) == RELOAD_EVENT


def test_in_local_mode_the_handler_runs_in_a_thread() -> None:
    ran = threading.Event()
    seen: list[dict[str, Any]] = []
    release = threading.Event()

    def run(event: dict[str, Any]) -> None:
        seen.append(event)
        release.wait(5)
        ran.set()

    # When triggered / Then it returns before the run ends, and the run gets the reload
    ThreadBounceTrigger(run).trigger()
    assert not ran.is_set()
    release.set()
    assert ran.wait(5)
    assert seen == [RELOAD_EVENT]
