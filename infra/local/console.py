"""The console of local mode: what a person watching `make run` wants to read.

On AWS the Lambdas log JSON for CloudWatch Logs and print EMF documents for CloudWatch Metrics;
both stay exactly so in the handlers. Here, one line per delivery outcome is rendered from the
sender's structured log record, warnings and errors keep a line each, other records are dropped,
and the EMF documents go to a file instead of the console.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

# The Powertools loggers of the functions (their `service` names).
FUNCTION_LOGGERS = (
    "mailproxy-api",
    "mailproxy-sender",
    "mailproxy-scheduler",
    "mailproxy-reporter",
    "mailproxy-bouncer",
)
# Powertools modules that print EMF documents (they call the builtin print).
EMF_PRINTING_MODULES = (
    "aws_lambda_powertools.metrics.base",
    "aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch",
)


def _clock_time(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def outcome_line(fields: dict[str, Any]) -> str | None:
    """The line for one delivery attempt's log record, or None when there is nothing a
    person needs to see (a reference dropped or handed on, a lost lease)."""
    outcome = fields.get("outcome")
    message_id = fields.get("message_id", "?")
    reason = fields.get("reason")
    if outcome == "sent":
        line = f"sent {message_id}"
        if fields.get("recipients"):
            line += f" to {', '.join(fields['recipients'])}"
        if fields.get("via_account"):
            line += f" via {fields['via_account']}"
        if fields.get("elapsed_ms") is not None:
            line += f" in {fields['elapsed_ms']:.0f} ms"
        return line
    if outcome == "error":
        return f"failed {message_id}: {reason or 'no reason given'}"
    if outcome in ("deferred", "rate_limited"):
        until = fields.get("until_ts")
        line = f"deferred {message_id}"
        if until is not None:
            line += f" until {_clock_time(float(until))}"
        return line + (f" ({reason})" if reason else "")
    if outcome == "held":
        return f"held {message_id}: its tenant or batch is suspended"
    return None


class ConsoleFormatter(LambdaPowertoolsFormatter):
    """A Powertools formatter (so the Logger's append_keys keep working) that writes lines."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {**self.log_format, **record.__dict__}
        line = outcome_line(fields) if "outcome" in record.__dict__ else None
        if line is None:
            line = f"{record.levelname.lower()}: {record.getMessage()}"
            if record.exc_info:
                line += "\n" + self.formatException(record.exc_info)
        return f"{_clock_time(record.created)} {line}"


def _worth_a_line(record: logging.LogRecord) -> bool:
    if record.levelno >= logging.WARNING:
        return True
    return "outcome" in record.__dict__ and outcome_line(record.__dict__) is not None


def show_outcomes(logger_names: tuple[str, ...] = FUNCTION_LOGGERS) -> None:
    """Render the functions' Powertools loggers for a person: call after the handlers
    were imported (each configures its logger on import)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not logger.handlers:
            continue
        logger.setLevel(logging.INFO)
        handler = logger.handlers[0]
        handler.setFormatter(ConsoleFormatter())
        handler.addFilter(_worth_a_line)


class EmfFile:
    """Where the EMF documents go in local mode: one JSON document a line, appended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stream: TextIO | None = None

    def print(self, *values: Any, **_: Any) -> None:
        text = " ".join(str(value) for value in values)
        with self._lock:
            if self._stream is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._stream = self.path.open("a", encoding="utf-8")
            self._stream.write(text + "\n")
            self._stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._stream is not None:
                self._stream.close()
                self._stream = None


def emf_to_file(path: Path) -> EmfFile:
    """Send every EMF document Powertools prints to `path` instead of standard output."""
    import importlib

    emf = EmfFile(path)
    for module_name in EMF_PRINTING_MODULES:
        # A module-level name shadows the builtin print for that module alone.
        vars(importlib.import_module(module_name))["print"] = emf.print
    return emf


def read_emf(path: Path) -> list[dict[str, Any]]:
    """The EMF documents written so far (for tests and a curious user)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
