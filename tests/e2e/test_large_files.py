"""Large attachments in local mode, over HTTP as a user meets them: a tenant that rewrites
large files gets a mail with a download link; the link redirects to the exact bytes, served
by local mode's own S3 on this machine; once file_ttl_days have passed, the link is a 404 and
the file itself is gone."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.local_mode import LocalMode, local_mode_running
from tests.support.smtp_servers import SmtpServer

BIG = bytes(range(256)) * (2 * 1024 * 1024 // 256)  # 2 MB, over the tenant's 1 MB
SMALL = b"the small print"
DAY = 86_400


@pytest.fixture(scope="module")
def local() -> Iterator[LocalMode]:
    # Its own local mode: this test moves the clock by days.
    with local_mode_running(clean_log=True) as local:
        yield local


@pytest.fixture
def smtp(local: LocalMode) -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        account = {"id": "main", "tenant_id": "shop", "host": "127.0.0.1", "port": server.port}
        assert local.call("POST", "/account", account) == (200, {"ok": True})
        yield server


def inline(content: bytes) -> str:
    return "base64:" + base64.b64encode(content).decode()


def test_a_large_attachment_becomes_a_link_that_works_until_file_ttl_days(
    local: LocalMode, smtp: SmtpServer
) -> None:
    # Given a tenant whose attachments over 1 MB become links kept 2 days
    config = {"enabled": True, "max_size_mb": 1, "action": "rewrite", "file_ttl_days": 2}
    status, _ = local.call("POST", "/tenant", {"id": "shop", "large_file_config": config})
    assert status == 200
    # When a message with a 2 MB and a small attachment is sent
    message: dict[str, Any] = {
        "id": "catalogue",
        "tenant_id": "shop",
        "account_id": "main",
        "from": "shop@example.test",
        "to": ["customer@example.test"],
        "subject": "Our catalogue",
        "body": "Please find our catalogue.",
        "attachments": [
            {"filename": "terms.txt", "storage_path": inline(SMALL)},
            {"filename": "catalogue.pdf", "storage_path": inline(BIG)},
        ],
    }
    status, body = local.call("POST", "/commands/add-messages", {"messages": [message]})
    assert (status, body["queued"]) == (200, 1), body
    [mail] = smtp.handler.wait_for(1)
    # Then the mail carries the small file, and no large one
    files = {p.get_filename(): p.get_payload(decode=True) for p in mail.message.iter_attachments()}
    assert files == {"terms.txt": SMALL}
    # and its text names the large file, its size, and a link on local mode's own URL
    text_part = mail.message.get_body(("plain",))
    assert text_part is not None
    text = str(text_part.get_content())
    assert text.startswith("Please find our catalogue.")
    found = re.search(r"- catalogue\.pdf \(2\.0 MB\): (\S+)", text)
    assert found, text
    link = found.group(1)
    assert link.startswith(f"{local.url}/files/")

    # When the link is followed, as a browser on this machine would
    first = requests.get(link, allow_redirects=False, timeout=30)
    # Then a redirect, not cached
    assert first.status_code == 302
    assert first.headers["Cache-Control"] == "no-store"
    # and the place it points to gives the exact bytes, named as the attachment was
    download = requests.get(first.headers["Location"], timeout=30)
    assert download.status_code == 200
    assert download.content == BIG
    assert 'filename="catalogue.pdf"' in download.headers["Content-Disposition"]
    # and the same link opens again, any number of times within its lifetime
    assert requests.get(link, timeout=30).content == BIG

    # When local mode's clock passes the two days (its minute tick runs)
    status, advanced = local.call("POST", f"/local/clock/advance/{2 * DAY + 120}")
    assert status == 200
    # Then the link is a 404
    expired = requests.get(link, allow_redirects=False, timeout=30)
    assert expired.status_code == 404
    assert expired.json() == {"detail": "This download link does not exist or has expired"}
    # and the file itself is gone from storage, as S3's lifecycle rule would remove it: the
    # tick deleted one object, and the old redirect target no longer serves it (moto answers
    # 403 for a deleted key here, as S3 does to a reader without s3:ListBucket)
    assert advanced["ticked"]["s3-lifecycle"] == {"expired": 1}
    gone = requests.get(first.headers["Location"], timeout=30)
    assert gone.status_code in (403, 404)
    assert gone.content != BIG


def test_an_unknown_link_is_a_404_without_any_token(local: LocalMode) -> None:
    answer = requests.get(f"{local.url}/files/{'x' * 43}", allow_redirects=False, timeout=30)
    assert answer.status_code == 404
