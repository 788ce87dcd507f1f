"""The EventBridge minute rule of local mode: calls the scheduler, reporter and bouncer
handlers with a scheduled event every minute, and at once when asked (a clock advance, a
test)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from infra.local.events import LambdaContext

log = logging.getLogger("mailproxy.local.ticker")
TICK_SECONDS = 60.0

Handler = Callable[[dict[str, Any], Any], Any]


def scheduled_event(now: float) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/mailproxy-tick"],
        "detail": {},
    }


class Ticker(threading.Thread):
    def __init__(
        self, targets: dict[str, Handler], clock: Callable[[], float], stop: threading.Event
    ) -> None:
        super().__init__(name="ticker", daemon=True)
        self._targets = targets
        self._clock = clock
        self._stop_event = stop
        self._now = threading.Event()
        # One tick at a time, as one Lambda environment per target would run them.
        self._lock = threading.Lock()

    def tick_now(self) -> dict[str, Any]:
        """Run every target once, now, and return what each answered."""
        answers: dict[str, Any] = {}
        with self._lock:
            for name, handler in self._targets.items():
                try:
                    answers[name] = handler(
                        scheduled_event(self._clock()), LambdaContext(function_name=name)
                    )
                except Exception as error:
                    log.exception("%s tick failed", name)
                    answers[name] = {"error": repr(error)}
        return answers

    def run(self) -> None:
        while not self._stop_event.wait(TICK_SECONDS):
            self.tick_now()
