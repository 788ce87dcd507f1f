"""The console lines of local mode, one per delivery outcome, from the sender's log record."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from infra.local.console import ConsoleFormatter, EmfFile, outcome_line, read_emf


def test_a_sent_message_names_its_recipients_account_and_time() -> None:
    line = outcome_line(
        {
            "outcome": "sent",
            "message_id": "msg-001",
            "recipients": ["user@example.com"],
            "via_account": "smtp-main",
            "elapsed_ms": 84.2,
        }
    )
    assert line == "sent msg-001 to user@example.com via smtp-main in 84 ms"


def test_a_failed_message_gives_its_reason() -> None:
    line = outcome_line(
        {"outcome": "error", "message_id": "msg-002", "reason": "550 5.1.1 user unknown"}
    )
    assert line == "failed msg-002: 550 5.1.1 user unknown"


def test_a_deferred_message_says_until_when_and_why() -> None:
    until = time.mktime((2026, 12, 1, 12, 1, 0, 0, 0, -1))
    for outcome in ("deferred", "rate_limited"):
        line = outcome_line(
            {
                "outcome": outcome,
                "message_id": "msg-003",
                "until_ts": until,
                "reason": "limit_per_minute",
            }
        )
        assert line == "deferred msg-003 until 12:01:00 (limit_per_minute)"


def test_nothing_is_printed_for_a_reference_that_needed_no_work() -> None:
    for outcome in ("dropped", "handed_on", "stale"):
        assert outcome_line({"outcome": outcome, "message_id": "m"}) is None


def test_the_formatter_prefers_the_records_own_message_id_over_appended_keys() -> None:
    # Given a formatter whose appended keys name another message (another thread's)
    formatter = ConsoleFormatter()
    formatter.append_keys(message_id="someone-else")
    record = logging.LogRecord("mailproxy-sender", logging.INFO, __file__, 1, "done", None, None)
    record.__dict__.update({"outcome": "error", "message_id": "mine", "reason": "550 no"})

    # When the record is formatted
    line = formatter.format(record)

    # Then the line is about this record's message
    assert line.endswith("failed mine: 550 no")


def test_emf_documents_go_to_their_file_one_a_line(tmp_path: Path) -> None:
    emf = EmfFile(tmp_path / "state" / "metrics.emf.jsonl")
    emf.print(json.dumps({"_aws": {"Timestamp": 1}, "sent": [1.0]}))
    emf.print(json.dumps({"_aws": {"Timestamp": 2}, "errors": [1.0]}))
    emf.close()
    assert [doc["_aws"]["Timestamp"] for doc in read_emf(emf.path)] == [1, 2]
