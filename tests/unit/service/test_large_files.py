"""large_file_config applied to fetched attachments, with an in-memory vault and link store:
what goes in the mail, what is stored, what fails and how (no AWS, no clock)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from mailproxy.delivery.mime import FetchedAttachment
from mailproxy.domain.errors import DeliveryError, StorageFailure
from mailproxy.domain.large_files import MIB, FileLink, LargeFileConfig, token_hash
from mailproxy.service.large_files import LargeFileSetup, apply_large_file_config

NOW = 1_800_000_000.0
SMALL = FetchedAttachment("notes.txt", b"a few bytes", "text/plain")
BIG = FetchedAttachment(f"video_{{MD5:{'0' * 32}}}.mp4", b"\x00" * (2 * MIB))


@dataclass
class Vault:
    objects: dict[tuple[str, str], tuple[bytes, str, str]] = field(default_factory=dict)
    fail: bool = False

    def put(self, bucket: str, key: str, content: bytes, content_type: str, filename: str) -> None:
        if self.fail:
            raise StorageFailure("S3 SlowDown")
        self.objects[(bucket, key)] = (content, content_type, filename)


@dataclass
class Links:
    links: dict[str, FileLink] = field(default_factory=dict)

    def put_file_link(self, token_hash: str, link: FileLink) -> bool:
        if token_hash in self.links:
            return False
        self.links[token_hash] = link
        return True


def config(action: str, **fields: object) -> LargeFileConfig:
    return LargeFileConfig.model_validate(
        {"enabled": True, "max_size_mb": 1, "action": action} | fields
    )


def setup(vault: Vault, links: Links, **fields: object) -> LargeFileSetup:
    tokens = iter(f"token-{n:040d}" for n in range(100))
    ids = iter(f"{n:032x}" for n in range(100))
    values: dict[str, object] = {
        "vault": lambda: vault,
        "links": links,
        "payload_bucket": "mailproxy-payloads",
        "public_base_url": "https://mail.example.com",
        "new_token": lambda: next(tokens),
        "new_object_id": lambda: next(ids),
    }
    return LargeFileSetup(**(values | fields))  # type: ignore[arg-type]


def test_reject_fails_the_message_permanently_naming_the_file_and_the_limit() -> None:
    vault, links = Vault(), Links()
    with pytest.raises(DeliveryError) as failed:
        apply_large_file_config(
            "acme", "m1", [SMALL, BIG], config("reject"), setup(vault, links), NOW
        )
    assert failed.value.temporary is False
    assert "video.mp4" in failed.value.reason
    assert "limit of 1 MB" in failed.value.reason
    assert vault.objects == {}


def test_warn_keeps_every_attachment_and_says_which_were_large() -> None:
    applied = apply_large_file_config(
        "acme", "m1", [SMALL, BIG], config("warn"), setup(Vault(), Links()), NOW
    )
    assert applied.attachments == [SMALL, BIG]
    assert applied.note is None
    assert [(a.action, a.filename, a.size) for a in applied.actions] == [
        ("warn", "video.mp4", 2 * MIB)
    ]


def test_rewrite_stores_the_large_file_links_it_and_keeps_the_small_one() -> None:
    # Given a tenant that rewrites files over 1 MB, kept 7 days
    vault, links = Vault(), Links()
    applied = apply_large_file_config(
        "acme", "m1", [SMALL, BIG], config("rewrite", file_ttl_days=7), setup(vault, links), NOW
    )
    # Then the mail keeps the small file only
    assert applied.attachments == [SMALL]
    # and the big one is in the payload bucket under the 7-day prefix, as sent
    key = f"large-files/ttl-7d/acme/{0:032x}"
    assert vault.objects == {("mailproxy-payloads", key): (BIG.content, "video/mp4", "video.mp4")}
    # and its link is stored under the token's hash, expiring with the object
    token = f"token-{0:040d}"
    assert links.links == {
        token_hash(token): FileLink(
            bucket="mailproxy-payloads",
            key=key,
            filename="video.mp4",
            content_type="video/mp4",
            size=2 * MIB,
            tenant_id="acme",
            message_id="m1",
            created_at=NOW,
            expires_at=NOW + 7 * 86_400,
        )
    }
    # and the note carries the link on the proxy itself, never the S3 location
    assert applied.note is not None
    assert f"https://mail.example.com/files/{token}" in applied.note.text
    assert "video.mp4 (2.0 MB)" in applied.note.text
    assert f'href="https://mail.example.com/files/{token}"' in applied.note.html
    assert "mailproxy-payloads" not in applied.note.text
    # and the log line knows where the file went, not the token
    [action] = applied.actions
    assert (action.action, action.bucket, action.key) == ("rewrite", "mailproxy-payloads", key)
    assert token not in str(action.as_log_keys())


def test_rewrite_uses_an_allow_listed_storage_url() -> None:
    vault = Vault()
    apply_large_file_config(
        "acme",
        "m1",
        [BIG],
        config("rewrite", storage_url="s3://tenant-files/out"),
        setup(vault, Links(), allowed_buckets=frozenset({"tenant-files"})),
        NOW,
    )
    assert list(vault.objects) == [("tenant-files", f"out/large-files/ttl-30d/acme/{0:032x}")]


def test_a_storage_failure_is_temporary() -> None:
    with pytest.raises(DeliveryError) as failed:
        apply_large_file_config(
            "acme", "m1", [BIG], config("rewrite"), setup(Vault(fail=True), Links()), NOW
        )
    assert failed.value.temporary is True
    assert failed.value.reason == "Large attachment storage failed for video.mp4: S3 SlowDown"


def test_rewrite_without_a_public_url_fails_permanently_and_stores_nothing() -> None:
    vault = Vault()
    with pytest.raises(DeliveryError) as failed:
        apply_large_file_config(
            "acme", "m1", [BIG], config("rewrite"), setup(vault, Links(), public_base_url=None), NOW
        )
    assert failed.value.temporary is False
    assert "MAILPROXY_PUBLIC_BASE_URL" in failed.value.reason
    assert vault.objects == {}


def test_a_taken_token_is_never_reused() -> None:
    # Given a link store that already holds the first token's hash
    links = Links()
    taken = FileLink("b", "k", "f", "t", 1, "other", "x", NOW, NOW + 1)
    links.links[token_hash(f"token-{0:040d}")] = taken
    # When a file is rewritten / Then it gets the next token, and the old link is untouched
    applied = apply_large_file_config(
        "acme", "m1", [BIG], config("rewrite"), setup(Vault(), links), NOW
    )
    assert applied.note is not None
    assert f"/files/token-{1:040d}" in applied.note.text
    assert links.links[token_hash(f"token-{0:040d}")] == taken


def test_nothing_happens_under_the_limit_or_when_disabled() -> None:
    vault = Vault()
    off = LargeFileConfig(enabled=False, max_size_mb=1, action="reject")
    for chosen in (config("reject", max_size_mb=5), off, None):
        applied = apply_large_file_config(
            "acme", "m1", [SMALL, BIG], chosen, setup(vault, Links()), NOW
        )
        assert (applied.attachments, applied.note, applied.actions) == ([SMALL, BIG], None, [])
