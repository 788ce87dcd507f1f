"""The BounceTrigger adapters (service/ports.py): how POST /instance/reload-bounce reaches the
bounce reader. On AWS an asynchronous invoke of its Lambda (the API answers at once; the run's
lease keeps it from overlapping a ticked run); in local mode its handler, in a thread."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

# What the bouncer's handler reads as "run now, due or not".
RELOAD_EVENT: dict[str, Any] = {"reload": True}


class LambdaBounceTrigger:
    def __init__(self, lambda_client: Any, function_name: str) -> None:
        self._lambda = lambda_client
        self._function_name = function_name

    def trigger(self) -> None:
        self._lambda.invoke(
            FunctionName=self._function_name,
            InvocationType="Event",
            Payload=json.dumps(RELOAD_EVENT).encode(),
        )


class ThreadBounceTrigger:
    """Local mode: the bouncer's handler, called in a thread of its own."""

    def __init__(self, run: Callable[[dict[str, Any]], Any]) -> None:
        self._run = run

    def trigger(self) -> None:
        threading.Thread(
            target=self._run, args=(dict(RELOAD_EVENT),), name="bounce-reload", daemon=True
        ).start()
