"""The message of POST /commands/add-messages, validated as SPEC.md describes it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mailproxy.domain import limits
from mailproxy.domain.message import (
    AddMessagesRequest,
    Attachment,
    Message,
    delivered_filename,
)
from mailproxy.domain.priority import Priority

MD5 = "0123456789abcdef0123456789ABCDEF"


def valid(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "m1",
        "from": "app@acme.test",
        "to": ["user@example.test"],
        "subject": "Hello",
    } | overrides


def refused_fields(body: dict[str, Any]) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as caught:
        Message.model_validate(body)
    return [tuple(error["loc"]) for error in caught.value.errors()]


# -- recipients -------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["to", "cc", "bcc"])
def test_recipients_as_a_list(field: str) -> None:
    message = Message.model_validate(valid(**{field: [" a@x.test", "b@x.test "]}))
    assert getattr(message, field) == ["a@x.test", "b@x.test"]


@pytest.mark.parametrize("field", ["to", "cc", "bcc"])
def test_recipients_as_a_comma_separated_string(field: str) -> None:
    # Given "a, b," as older clients send it / When validated / Then a list, blanks dropped
    message = Message.model_validate(valid(**{field: "a@x.test, b@x.test,"}))
    assert getattr(message, field) == ["a@x.test", "b@x.test"]


def test_the_envelope_holds_to_cc_and_bcc() -> None:
    message = Message.model_validate(valid(to="a@x.test", cc="c@x.test", bcc="b@x.test"))
    assert message.recipients == ["a@x.test", "c@x.test", "b@x.test"]


@pytest.mark.parametrize("to", [[], "", " , "])
def test_to_is_required_and_not_empty(to: Any) -> None:
    assert refused_fields(valid(to=to)) == [("to",)]


def test_missing_to_is_named() -> None:
    body = valid()
    del body["to"]
    assert refused_fields(body) == [("to",)]


# -- sender and subject -----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["from", "from_addr"])
def test_from_and_from_addr_are_the_same_field(key: str) -> None:
    body = valid()
    del body["from"]
    message = Message.model_validate(body | {key: "sender@acme.test"})
    assert message.from_addr == "sender@acme.test"
    # Shown back under its contract name
    assert message.as_submitted()["from"] == "sender@acme.test"
    assert "from_addr" not in message.as_submitted()


def test_subject_has_at_least_one_character() -> None:
    assert refused_fields(valid(subject="")) == [("subject",)]
    assert Message.model_validate(valid(subject="x")).subject == "x"


def test_defaults() -> None:
    message = Message.model_validate(valid())
    assert message.body == ""
    assert message.content_type == "plain"
    assert message.priority is None


def test_content_type_is_plain_or_html() -> None:
    assert Message.model_validate(valid(content_type="html")).content_type == "html"
    assert refused_fields(valid(content_type="markdown")) == [("content_type",)]


# -- priority ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("high", Priority.HIGH),
        ("immediate", Priority.IMMEDIATE),
        (0, Priority.IMMEDIATE),
        (7, Priority.LOW),
        (-2, Priority.IMMEDIATE),
    ],
)
def test_priority_as_label_or_clamped_number(given: Any, expected: Priority) -> None:
    message = Message.model_validate(valid(priority=given))
    assert message.effective_priority(Priority.MEDIUM) is expected


def test_without_priority_the_default_applies() -> None:
    message = Message.model_validate(valid())
    assert message.effective_priority(Priority.LOW) is Priority.LOW


def test_an_unknown_priority_label_is_refused_naming_priority() -> None:
    # Given priority "urgent" / When validated / Then the error is located at "priority"
    locations = refused_fields(valid(priority="urgent"))
    assert locations
    assert all(loc[0] == "priority" for loc in locations)


def test_an_unknown_default_priority_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        AddMessagesRequest.model_validate({"messages": [], "default_priority": "asap"})
    assert {error["loc"][0] for error in caught.value.errors()} == {"default_priority"}


# -- other fields -----------------------------------------------------------------------------


def test_batch_code_is_at_most_64_characters() -> None:
    assert Message.model_validate(valid(batch_code="b" * 64)).batch_code == "b" * 64
    assert refused_fields(valid(batch_code="b" * 65)) == [("batch_code",)]


def test_unknown_top_level_fields_are_ignored() -> None:
    # Given a field this proxy does not know / When validated / Then it is accepted and dropped
    message = Message.model_validate(valid(legacy_flag=True, smtp_options={"x": 1}))
    assert "legacy_flag" not in message.as_submitted()
    assert "smtp_options" not in message.as_submitted()


def test_header_values_are_text() -> None:
    message = Message.model_validate(valid(headers={"X-Count": 3, "X-None": None}))
    assert message.headers == {"X-Count": "3"}


def test_as_submitted_leaves_nulls_out() -> None:
    assert Message.model_validate(valid()).as_submitted() == {
        "id": "m1",
        "from": "app@acme.test",
        "to": ["user@example.test"],
        "subject": "Hello",
        "body": "",
        "content_type": "plain",
    }


# -- attachments ------------------------------------------------------------------------------


def attachment(**overrides: Any) -> dict[str, Any]:
    return {"filename": "a.txt", "storage_path": "base64:aGVsbG8="} | overrides


def test_an_attachment_with_an_unknown_key_is_refused() -> None:
    locations = refused_fields(valid(attachments=[attachment(colour="blue")]))
    assert locations == [("attachments", 0, "colour")]


def test_an_unknown_key_in_attachment_auth_is_refused() -> None:
    locations = refused_fields(
        valid(attachments=[attachment(auth={"method": "bearer", "token": "t", "x": 1})])
    )
    assert locations == [("attachments", 0, "auth", "x")]


@pytest.mark.parametrize("md5", [MD5, MD5.lower()])
def test_content_md5_is_32_hex_digits(md5: str) -> None:
    assert Attachment.model_validate(attachment(content_md5=md5)).content_md5 == md5


@pytest.mark.parametrize("md5", ["abc", MD5 + "0", "g" * 32])
def test_a_malformed_content_md5_is_refused(md5: str) -> None:
    locations = refused_fields(valid(attachments=[attachment(content_md5=md5)]))
    assert locations == [("attachments", 0, "content_md5")]


@pytest.mark.parametrize("filename", ["", "x" * 256])
def test_filename_is_1_to_255_characters(filename: str) -> None:
    locations = refused_fields(valid(attachments=[attachment(filename=filename)]))
    assert locations == [("attachments", 0, "filename")]


def test_a_local_file_is_refused_with_a_clear_message() -> None:
    # Given storage_path "/etc/passwd" / When validated / Then a 422-worthy, explicit error
    with pytest.raises(ValidationError, match="local file paths are not served"):
        Message.model_validate(valid(attachments=[attachment(storage_path="/etc/passwd")]))


@pytest.mark.parametrize(
    ("storage_path", "mode"),
    [
        ("base64:aGVsbG8=", "base64"),
        ("https://files.test/a.pdf", "http_url"),
        ("http://files.test/a.pdf", "http_url"),
        ("s3://bucket/key.pdf", "s3"),
        ("doc-42", "endpoint"),
    ],
)
def test_the_fetch_mode_follows_the_storage_path(storage_path: str, mode: str) -> None:
    assert Attachment(filename="a", storage_path=storage_path).resolved_fetch_mode == mode


def test_an_explicit_fetch_mode_wins() -> None:
    item = Attachment(filename="a", storage_path="https://x.test/a", fetch_mode="endpoint")
    assert item.resolved_fetch_mode == "endpoint"


@pytest.mark.parametrize(
    ("shape", "mode", "storage_path"),
    [
        ({"content": "aGVsbG8="}, "base64", "aGVsbG8="),
        (
            {"url": "https://storage.company.test/m.pdf"},
            "http_url",
            "https://storage.company.test/m.pdf",
        ),
        (
            {"s3": {"bucket": "company-documents", "key": "invoices/2025/INV-001.pdf"}},
            "s3",
            "s3://company-documents/invoices/2025/INV-001.pdf",
        ),
    ],
)
def test_the_architecture_page_shapes_are_the_0_6_forms(
    shape: dict[str, Any], mode: str, storage_path: str
) -> None:
    # Given an attachment as the original proxy's architecture page writes it
    item = Attachment.model_validate({"filename": "f.pdf", **shape})
    # Then it is the 0.6 API's storage_path with its fetch mode
    assert (item.resolved_fetch_mode, item.storage_path) == (mode, storage_path)


def test_inline_content_is_held_to_the_inline_limit() -> None:
    too_long = "A" * (limits.MAX_INLINE_ATTACHMENT_LENGTH + 4)
    locations = refused_fields(valid(attachments=[{"filename": "big.bin", "content": too_long}]))
    assert locations == [("attachments", 0, "storage_path")]


@pytest.mark.parametrize(
    "shape",
    [
        {"content": "aGVsbG8=", "url": "https://x.test/a"},
        {"url": "https://x.test/a", "storage_path": "doc-1"},
        {"url": "https://x.test/a", "fetch_mode": "s3"},
        {"s3": {"bucket": "docs"}},
        {"s3": {"bucket": "Not_A_Bucket", "key": "k"}},
        {"s3": {"bucket": "docs", "key": ""}},
        {"s3": "s3://docs/k"},
    ],
)
def test_an_attachment_with_two_sources_or_a_bad_s3_location_is_refused(
    shape: dict[str, Any],
) -> None:
    assert refused_fields(valid(attachments=[{"filename": "f.pdf", **shape}])) == [
        ("attachments", 0)
    ]


@pytest.mark.parametrize(
    ("filename", "delivered"),
    [
        (f"report_{{MD5:{MD5}}}.pdf", "report.pdf"),
        (f"report{{MD5:{MD5}}}.pdf", "report.pdf"),
        ("report.pdf", "report.pdf"),
        ("report_{MD5:short}.pdf", "report_{MD5:short}.pdf"),
    ],
)
def test_delivered_filename_strips_the_md5_marker(filename: str, delivered: str) -> None:
    assert delivered_filename(filename) == delivered
