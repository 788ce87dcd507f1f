"""GET /files/{token} against the in-memory store: a live link opens to a short presigned
URL; anything else is the same not-found."""

from __future__ import annotations

import secrets

import pytest

from mailproxy.domain.errors import NotFound
from mailproxy.domain.large_files import FileLink, token_hash
from mailproxy.domain.tenant import Tenant
from mailproxy.service.files import PRESIGNED_SECONDS, download_location
from tests.support.fakes import T0, FakeClock, FakePresigner, InMemoryStore

HOUR = 3600


def store_with_link(expires_at: float) -> tuple[InMemoryStore, str]:
    store = InMemoryStore()
    store.create_tenant(Tenant(id="acme", created_at=T0, updated_at=T0))
    token = secrets.token_urlsafe(32)
    link = FileLink(
        "files", "acme/k1", "report.pdf", "application/pdf", 10, "acme", "m1", T0, expires_at
    )
    store.put_file_link(token_hash(token), link)
    return store, token


def test_a_live_link_opens_to_a_presigned_url_of_a_few_minutes() -> None:
    store, token = store_with_link(T0 + HOUR)
    presigner = FakePresigner()
    url = download_location(token, store, presigner, clock=FakeClock(T0))
    assert url.startswith("https://files.s3.test/acme/k1")
    [call] = presigner.calls
    assert (call["filename"], call["expires_in"]) == ("report.pdf", PRESIGNED_SECONDS)


def test_a_link_about_to_expire_gives_a_url_that_dies_with_it() -> None:
    store, token = store_with_link(T0 + 30)
    presigner = FakePresigner()
    download_location(token, store, presigner, clock=FakeClock(T0))
    assert presigner.calls[0]["expires_in"] == 30


@pytest.mark.parametrize("case", ["expired", "unknown", "malformed", "tenant-deleted"])
def test_every_link_that_does_not_open_is_the_same_not_found(case: str) -> None:
    store, token = store_with_link(T0 + HOUR)
    clock = FakeClock(T0)
    if case == "expired":
        clock.advance(2 * HOUR)
    elif case == "unknown":
        token = secrets.token_urlsafe(32)
    elif case == "malformed":
        token = "../../etc/passwd"
    else:
        store.delete_tenant("acme")
    with pytest.raises(NotFound) as refused:
        download_location(token, store, FakePresigner(), clock=clock)
    assert str(refused.value) == "This download link does not exist or has expired"
