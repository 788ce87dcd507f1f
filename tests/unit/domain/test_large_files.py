"""The pure decisions of large_file_config: which files are over, what a refusal says, where a
rewritten file goes, what the note in the body says, how a download is named (no I/O)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from infra.resources import BUCKET_LIFECYCLE
from mailproxy.domain.errors import InvalidRequest
from mailproxy.domain.large_files import (
    MAX_FILE_TTL_DAYS,
    MIB,
    BodyNote,
    DownloadLink,
    FileSize,
    LargeFileConfig,
    LargeFileConfigPatch,
    StorageLocation,
    content_disposition,
    download_note,
    download_url,
    expires_at,
    human_size,
    object_key,
    over_limit,
    patched_config,
    plausible_token,
    rejection,
    storage_location,
    token_hash,
    ttl_prefix,
    with_note,
)

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC).timestamp()


def config(**fields: object) -> LargeFileConfig:
    return LargeFileConfig.model_validate({"enabled": True, "max_size_mb": 1} | fields)


# -- which files are over ----------------------------------------------------------------------


def test_only_files_over_the_limit_are_large() -> None:
    # Given a limit of 1 MB and files below, at and over it
    files = [
        FileSize("small.txt", 10),
        FileSize("exact.bin", MIB),
        FileSize("big.bin", MIB + 1),
        FileSize("huge.iso", 50 * MIB),
    ]
    # When judged / Then the ones strictly over it, by position
    assert over_limit(files, config()) == [2, 3]


def test_a_fractional_limit_counts_in_mebibytes() -> None:
    files = [FileSize("a", int(0.5 * MIB)), FileSize("b", int(0.5 * MIB) + 1)]
    assert over_limit(files, config(max_size_mb=0.5)) == [1]


@pytest.mark.parametrize("off", [None, LargeFileConfig(enabled=False, max_size_mb=1)])
def test_nothing_is_large_when_the_config_is_off_or_absent(off: LargeFileConfig | None) -> None:
    assert over_limit([FileSize("huge.iso", 50 * MIB)], off) == []


def test_a_refusal_names_the_file_its_size_and_the_limit() -> None:
    reason = rejection(FileSize("scan.pdf", 3 * MIB), config(max_size_mb=2, action="reject"))
    assert reason == (
        "Attachment scan.pdf is 3.0 MB (3145728 bytes), over the tenant's large-file limit "
        "of 2 MB (large_file_config.action reject)"
    )


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 bytes"), (1023, "1023 bytes"), (1536, "1.5 KB"), (12 * MIB + MIB // 4, "12.2 MB")],
)
def test_sizes_read_as_a_person_reads_them(size: int, text: str) -> None:
    assert human_size(size) == text


# -- where a rewritten file goes ---------------------------------------------------------------


def test_a_storage_url_on_the_allow_list_is_used_with_the_ttl_prefix_under_it() -> None:
    chosen = storage_location(
        config(storage_url="s3://tenant-files/acme/out/", file_ttl_days=7),
        "mailproxy-payloads",
        frozenset({"tenant-files"}),
    )
    assert chosen == StorageLocation("tenant-files", "acme/out/large-files/ttl-7d/")


def test_a_storage_url_bucket_alone_is_used_at_its_root() -> None:
    chosen = storage_location(
        config(storage_url="s3://tenant-files"), "mailproxy-payloads", frozenset({"tenant-files"})
    )
    assert chosen == StorageLocation("tenant-files", "large-files/ttl-30d/")


def test_a_storage_url_off_the_allow_list_falls_back_to_the_payload_bucket() -> None:
    chosen = storage_location(
        config(storage_url="s3://elsewhere/x", file_ttl_days=3),
        "mailproxy-payloads",
        frozenset({"tenant-files"}),
    )
    assert chosen == StorageLocation("mailproxy-payloads", "large-files/ttl-3d/")


def test_without_any_bucket_there_is_nowhere_to_store() -> None:
    assert storage_location(config(), None, frozenset()) is None


def test_an_object_key_holds_the_ttl_prefix_the_tenant_and_a_random_id_only() -> None:
    location = StorageLocation("b", ttl_prefix(14))
    assert object_key(location, "acme", "0f" * 16) == f"large-files/ttl-14d/acme/{'0f' * 16}"


def test_every_possible_lifetime_has_a_lifecycle_rule_of_the_same_days() -> None:
    # Given the payload bucket's lifecycle rules (infra/resources.py, for CDK and local mode)
    rules = {rule.prefix: rule.days for rule in BUCKET_LIFECYCLE["payloads"]}
    # Then each file_ttl_days a tenant may choose has its prefix, expired after those days
    for days in range(1, MAX_FILE_TTL_DAYS + 1):
        assert rules[ttl_prefix(days)] == days
    # and the payload rule does not reach the large files (the shortest rule would win)
    assert all(
        prefix is None or not prefix.startswith("large-files/") or prefix.endswith("d/")
        for prefix in rules
    )
    assert rules["payloads/"] == 8


def test_a_link_expires_file_ttl_days_later() -> None:
    assert expires_at(NOW, config(file_ttl_days=30)) == NOW + 30 * 86_400


# -- tokens and links --------------------------------------------------------------------------


def test_a_token_is_stored_as_its_sha256_only() -> None:
    token = "k" * 43
    assert token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert token not in token_hash(token)


@pytest.mark.parametrize(
    ("token", "plausible"),
    [
        ("Zq3-_" + "a" * 38, True),
        ("short", False),
        ("a" * 43 + "/..", False),
        ("a" * 40 + "%2F", False),
        ("a" * 200, False),
    ],
)
def test_only_plausible_tokens_are_looked_up(token: str, plausible: bool) -> None:
    assert plausible_token(token) is plausible


def test_a_download_url_is_on_the_proxy_itself() -> None:
    assert download_url("https://mail.example.com/", "tok") == "https://mail.example.com/files/tok"


# -- the note in the body ----------------------------------------------------------------------

LINKS = [
    DownloadLink("report.pdf", 12 * MIB + MIB // 4, "https://api.example/files/AAA"),
    DownloadLink("<video>.mp4", 300 * MIB, "https://api.example/files/BBB?x=1&y=2"),
]


def test_the_text_note_lists_each_file_its_size_and_link_and_the_date() -> None:
    note = download_note(LINKS, NOW + 30 * 86_400)
    assert note.text == (
        "\n\n--\nThese attachments were too large to send with this message. "
        "Download until 2026-03-31 09:30 UTC:\n"
        "- report.pdf (12.2 MB): https://api.example/files/AAA\n"
        "- <video>.mp4 (300.0 MB): https://api.example/files/BBB?x=1&y=2\n"
    )


def test_the_html_note_escapes_names_and_links() -> None:
    note = download_note(LINKS[1:], NOW + 86_400)
    assert note.html == (
        "<hr><p>This attachment was too large to send with this message. "
        "Download until 2026-03-02 09:30 UTC:</p>"
        '<ul><li><a href="https://api.example/files/BBB?x=1&amp;y=2">&lt;video&gt;.mp4</a>'
        " (300.0 MB)</li></ul>"
    )


NOTE = BodyNote(text="\n\n--\nlinks\n", html="<p>links</p>")


def test_a_plain_body_gets_the_text_note_at_its_end() -> None:
    assert with_note("Hello\n\n", "plain", NOTE) == "Hello\n\n--\nlinks\n"
    assert with_note("Hello", None, NOTE) == "Hello\n\n--\nlinks\n"


def test_an_html_document_gets_the_note_inside_its_body() -> None:
    body = "<html><body><p>Hi</p></BODY ></html>"
    assert with_note(body, "html", NOTE) == "<html><body><p>Hi</p><p>links</p></BODY ></html>"


def test_an_html_fragment_gets_the_note_at_its_end() -> None:
    assert with_note("<p>Hi</p>", "html", NOTE) == "<p>Hi</p><p>links</p>"


def test_a_download_is_named_for_every_browser() -> None:
    assert content_disposition('Résumé "final".pdf') == (
        'attachment; filename="R_sum_ _final_.pdf"; '
        "filename*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22.pdf"
    )


# -- a partial update --------------------------------------------------------------------------


def test_a_patch_changes_the_fields_it_gives() -> None:
    current = config(action="rewrite", storage_url="s3://bucket-b/p", file_ttl_days=9)
    patched = patched_config(current, LargeFileConfigPatch(max_size_mb=3))
    assert patched == current.model_copy(update={"max_size_mb": 3.0})


def test_a_null_field_in_a_patch_goes_back_to_its_default() -> None:
    current = config(storage_url="s3://bucket-b/p", file_ttl_days=9)
    patch = LargeFileConfigPatch.model_validate({"storage_url": None, "file_ttl_days": None})
    patched = patched_config(current, patch)
    assert (patched.storage_url, patched.file_ttl_days) == (None, 30)


def test_a_patch_that_breaks_the_config_names_the_field() -> None:
    patch = LargeFileConfigPatch.model_validate({"storage_url": "ftp://x"})
    with pytest.raises(InvalidRequest) as refused:
        patched_config(config(), patch)
    [problem] = refused.value.problems
    assert problem.loc == ("body", "large_file_config", "storage_url")
