"""What Lambda's Python runtime does with a function, for tests that run the synthesized
artifacts on this machine: put the code and layer folders on sys.path, import `_HANDLER`
(its init), then answer invocations, warm, one at a time.

Run by `tests/support/cdk_artifacts.py` as `python -I -S lambda_bootstrap.py <folder>...`,
copied out of the repository first: the standard library only, and nothing but the given
folders on sys.path (no site-packages, no working directory, no PYTHONPATH). Each invocation
is one JSON line on stdin, `{"event": ...}`, answered by one JSON line on the original
standard output: `{"result": ...}` or `{"error": traceback}`, with `foreign` listing any module
loaded from outside the folders and the standard library. Whatever the function prints (its
logs, EMF metrics) goes to standard error, as it would go to CloudWatch.

`BOOTSTRAP_TIMEOUT_SECONDS` is the function's timeout (the context's remaining time), and
`BOOTSTRAP_CLOCK_OFFSET_SECONDS` sets the environment's clock that much ahead (time.time), as
local mode's clock can be: a tick can come when something scheduled falls due.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import sysconfig
import time
import traceback
import uuid
from typing import Any

CLOCK_OFFSET_ENV = "BOOTSTRAP_CLOCK_OFFSET_SECONDS"
TIMEOUT_ENV = "BOOTSTRAP_TIMEOUT_SECONDS"


class Context:
    """The Lambda context object, from the variables Lambda sets."""

    timeout_seconds = 3.0

    def __init__(self) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = (
            f"arn:aws:lambda:{os.environ.get('AWS_REGION', 'us-east-1')}:000000000000"
            f":function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "bootstrap"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _foreign_modules(folders: list[str]) -> list[str]:
    allowed = [os.path.realpath(f) for f in folders]
    paths = sysconfig.get_paths()
    allowed += [os.path.realpath(paths[key]) for key in ("stdlib", "platstdlib")]
    foreign = []
    for name, module in list(sys.modules.items()):
        location = getattr(module, "__file__", None)
        if location is None or os.path.realpath(location) == os.path.realpath(__file__):
            continue  # built in, or this bootstrap (__main__, and multiprocessing's alias)
        if not any(os.path.realpath(location).startswith(root + os.sep) for root in allowed):
            foreign.append(f"{name} ({location})")
    return sorted(foreign)


def _shift_clock(seconds: float) -> None:
    if seconds:
        real = time.time
        time.time = lambda: real() + seconds


def main() -> None:
    folders = sys.argv[1:]
    sys.path[:0] = folders
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    # The bootstrap's own settings, which the function does not see.
    _shift_clock(float(os.environ.pop(CLOCK_OFFSET_ENV, "0") or 0))
    Context.timeout_seconds = float(os.environ.pop(TIMEOUT_ENV, "3"))

    def answer(reply: dict[str, Any]) -> None:
        reply["foreign"] = _foreign_modules(folders)
        answers.write(json.dumps(reply, default=str) + "\n")
        answers.flush()

    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except BaseException:
        answer({"error": "init failed:\n" + traceback.format_exc()})
        return
    answer({"ready": True})
    for line in sys.stdin:
        event = json.loads(line)["event"]
        try:
            reply = {"result": handler(event, Context())}
        except Exception:
            reply = {"error": traceback.format_exc()}
        answer(reply)


if __name__ == "__main__":
    main()
