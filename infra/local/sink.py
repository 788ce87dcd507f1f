"""An SMTP sink for local mode: accepts every message on 127.0.0.1 and keeps the latest ones
so they can be listed (GET /local/sink/messages) and logs one line per message."""

from __future__ import annotations

import email
import email.policy
import logging
import threading
from collections import deque
from typing import Any

from aiosmtpd.controller import Controller

log = logging.getLogger("mailproxy.local.sink")
KEEP_LAST = 1000


class SinkHandler:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: deque[dict[str, Any]] = deque(maxlen=KEEP_LAST)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(bytes(envelope.content), policy=email.policy.default)
        body = (
            parsed.get_body(preferencelist=("plain", "html")) if parsed.is_multipart() else parsed
        )
        entry = {
            "mail_from": envelope.mail_from,
            "recipients": list(envelope.rcpt_tos),
            "subject": str(parsed.get("Subject", "")),
            "message_id": str(parsed.get("Message-ID", "")),
            "mail_id": str(parsed.get("X-Genro-Mail-ID", "")),
            "headers": {key: str(value) for key, value in parsed.items()},
            "body": body.get_content() if body is not None else "",
        }
        with self._lock:
            self._messages.append(entry)
        log.info(
            "sink received %s from %s to %s: %s",
            entry["mail_id"] or entry["message_id"],
            entry["mail_from"],
            ", ".join(entry["recipients"]),
            entry["subject"],
        )
        return "250 Message accepted for delivery"

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()


def start_sink(port: int) -> tuple[Controller, SinkHandler]:
    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, handler
