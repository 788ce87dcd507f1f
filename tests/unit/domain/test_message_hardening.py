"""What a submitted message may not hold: header injection, malformed addresses, custom headers
that would replace the proxy's own, and sizes past the limits of domain/limits.py.

Every refusal is a pydantic ValidationError located at the field at fault: the API answers it
with a 422 whose `loc` tells the client what to fix.
"""

from __future__ import annotations

import ast
import inspect
from typing import Any

import pytest
from pydantic import ValidationError

from mailproxy.domain import limits
from mailproxy.domain.message import (
    RESERVED_HEADER_NAMES,
    AddMessagesRequest,
    Attachment,
    Message,
    parse_mailbox,
)

Loc = tuple[str | int, ...]


def valid(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "m1",
        "from": "app@acme.test",
        "to": ["user@example.test"],
        "subject": "Hello",
    } | overrides


def attachment(**overrides: Any) -> dict[str, Any]:
    return {"filename": "a.txt", "storage_path": "base64:aGVsbG8="} | overrides


def refusals(body: dict[str, Any]) -> list[tuple[Loc, str]]:
    """(loc, type) of every error, when the message is refused."""
    with pytest.raises(ValidationError) as caught:
        Message.model_validate(body)
    return [(tuple(error["loc"]), error["type"]) for error in caught.value.errors()]


def refused_at(body: dict[str, Any]) -> list[Loc]:
    return [loc for loc, _ in refusals(body)]


def addresses(count: int, domain: str = "example.test") -> list[str]:
    return [f"user{n}@{domain}" for n in range(count)]


# -- header injection -----------------------------------------------------------------------------

# Where a client could smuggle a line break into a header, and where the error must point.
INJECTABLE: list[tuple[str, Any, Loc]] = [
    ("subject", lambda bad: {"subject": f"Hi{bad}Bcc: victim@evil.test"}, ("subject",)),
    ("from", lambda bad: {"from": f"app@acme.test{bad}Bcc: v@evil.test"}, ("from",)),
    ("to item", lambda bad: {"to": ["a@x.test", f"b@x.test{bad}"]}, ("to", 1)),
    ("to string", lambda bad: {"to": f"a@x.test, b@x.test{bad}X: y"}, ("to", 1)),
    ("cc item", lambda bad: {"cc": [f"c@x.test{bad}"]}, ("cc", 0)),
    ("bcc item", lambda bad: {"bcc": [f"{bad}d@x.test"]}, ("bcc", 0)),
    ("reply_to", lambda bad: {"reply_to": f"r@x.test{bad}"}, ("reply_to",)),
    ("return_path", lambda bad: {"return_path": f"b@x.test{bad}"}, ("return_path",)),
    ("message_id", lambda bad: {"message_id": f"<a@b>{bad}X-Evil: 1"}, ("message_id",)),
    ("header value", lambda bad: {"headers": {"X-Foo": f"a{bad}X-Evil: 1"}}, ("headers", "X-Foo")),
    ("id", lambda bad: {"id": f"m1{bad}X-Evil: 1"}, ("id",)),
    ("batch_code", lambda bad: {"batch_code": f"b{bad}1"}, ("batch_code",)),
    (
        "filename",
        lambda bad: {"attachments": [attachment(filename=f"a{bad}.txt")]},
        ("attachments", 0, "filename"),
    ),
    (
        "mime_type",
        lambda bad: {"attachments": [attachment(mime_type=f"text/plain{bad}X: 1")]},
        ("attachments", 0, "mime_type"),
    ),
]
LINE_BREAKS = ["\r\n", "\n", "\r", "\x00", "\x0b", "\x1f", "\x7f", "\x85", "\u2028"]


@pytest.mark.parametrize(("field", "make", "loc"), INJECTABLE, ids=[f[0] for f in INJECTABLE])
@pytest.mark.parametrize("bad", LINE_BREAKS, ids=repr)
def test_a_control_character_in_a_header_field_is_refused_there(
    field: str, make: Any, loc: Loc, bad: str
) -> None:
    # Given a line break (or NUL, or another control character) in a field that becomes a header
    body = valid(**make(bad))
    # When validated / Then refused as header injection, located at that field
    assert refusals(body) == [(loc, "header_injection")]


def test_the_body_may_hold_line_breaks_and_tabs() -> None:
    body = "Dear user,\r\n\r\n\tthanks.\nBcc: this is text, not a header\n"
    assert Message.model_validate(valid(body=body)).body == body


@pytest.mark.parametrize("subject", ["Tab\tseparated", "Fattura n° 5 — €", "x" * 998])
def test_a_subject_may_hold_tabs_and_unicode(subject: str) -> None:
    assert Message.model_validate(valid(subject=subject)).subject == subject


# -- addresses ------------------------------------------------------------------------------------

GOOD_ADDRESSES = [
    "user@example.test",
    "first.last+tag@sub.example.test",
    "o'brien@example.test",
    "x@localhost",
    "user@[192.0.2.1]",
    "user@[IPv6:2001:db8::1]",
    "user@xn--exmple-cua.test",
    "zoë@exämple.test",
    "Jane Doe <jane@example.test>",
    "Jane Q. Public <jane@example.test>",
    "<jane@example.test>",
    '"Doe, Jane" <jane@example.test>',
    '"Jane \\"JD\\" Doe" <jane@example.test>',
    '"" <jane@example.test>',
    "Zoë Müller <zoe@example.test>",
    "Jane\t<jane@example.test>",
]
BAD_ADDRESSES = [
    "not-an-address",
    "a@",
    "@b",
    "a@b@c",
    "<>",
    "<a@b.test",
    "a@b.test>",
    "Jane <a@b.test",
    "Jane <a@b.test> trailing",
    "Jane <<a@b.test>>",
    "a b@c.test",
    "a@b c.test",
    "<a @b.test>",
    "a\u00a0b@c.test",
    ".a@b.test",
    "a.@b.test",
    "a..b@c.test",
    "a@b..test",
    "a@.b.test",
    "a@b.test.",
    "a@-b.test",
    "a@b-.test",
    "a@b_c.test",
    "a(b)@c.test",
    '"quoted local"@b.test',
    "a@[300.1.1.1]",
    "a@[not-an-ip]",
    "Doe, Jane <jane@example.test>",
    "Jane (Sales) <jane@example.test>",
    "jane@example.test <jane@example.test>",
    '"Unclosed <jane@example.test>',
    '"Jane" Doe <jane@example.test>',
    "a\u200b@b.test",
    f"{'a' * 65}@b.test",
    f"a@{'b' * 64}.test",
    f"a@{'b.' * 127}test",
]


@pytest.mark.parametrize("address", GOOD_ADDRESSES)
@pytest.mark.parametrize("field", ["from", "reply_to"])
def test_a_good_sender_address_is_accepted_as_given(field: str, address: str) -> None:
    message = Message.model_validate(valid(**{field: address}))
    assert message.as_submitted()[field] == address.strip()


@pytest.mark.parametrize("address", GOOD_ADDRESSES)
@pytest.mark.parametrize("field", ["to", "cc", "bcc"])
def test_a_good_recipient_address_is_accepted_as_given(field: str, address: str) -> None:
    message = Message.model_validate(valid(**{field: ["first@example.test", address]}))
    assert getattr(message, field) == ["first@example.test", address.strip()]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
@pytest.mark.parametrize(
    ("field", "value", "loc"),
    [
        ("from", lambda a: a, ("from",)),
        ("reply_to", lambda a: a, ("reply_to",)),
        ("to", lambda a: ["ok@example.test", a], ("to", 1)),
        ("cc", lambda a: [a], ("cc", 0)),
        ("bcc", lambda a: ["ok@example.test", "ok2@example.test", a], ("bcc", 2)),
    ],
    ids=["from", "reply_to", "to", "cc", "bcc"],
)
def test_a_malformed_address_is_refused_naming_the_field_and_item(
    field: str, value: Any, loc: Loc, address: str
) -> None:
    # Given a malformed address in one field / When validated / Then that field (and item)
    # is named; a comma in an unquoted name splits it in two, both refused items
    located = refusals(valid(**{field: value(address)}))
    assert located
    assert {error_type for _, error_type in located} == {"invalid_address"}
    assert located[0][0] == loc


def test_an_address_of_the_maximum_length_is_accepted() -> None:
    address = f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 61}"
    assert len(address) == limits.MAX_ADDRESS_LENGTH
    assert Message.model_validate(valid(to=[address])).to == [address]
    assert refused_at(valid(to=[address + "d"])) == [("to", 0)]


def test_parse_mailbox_gives_the_display_name_and_the_address() -> None:
    assert parse_mailbox('"Doe, Jane" <jane@example.test>') == (
        '"Doe, Jane"',
        "jane@example.test",
    )
    assert parse_mailbox("Jane <jane@example.test>") == ("Jane", "jane@example.test")
    assert parse_mailbox(" jane@example.test ") == ("", "jane@example.test")


def test_a_comma_separated_string_keeps_quoted_commas() -> None:
    # Given a display name with a comma inside quotes / When split / Then it stays one address
    message = Message.model_validate(
        valid(to='a@x.test, "Doe, Jane" <jane@example.test>, ,b@x.test,')
    )
    assert message.to == ["a@x.test", '"Doe, Jane" <jane@example.test>', "b@x.test"]


def test_one_list_item_is_one_address() -> None:
    # Given two addresses in one item of a list / Then refused: a list item is one recipient
    assert refused_at(valid(to=["a@x.test, b@x.test"])) == [("to", 0)]


# -- return path (envelope sender) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("bounces@acme.test", "bounces@acme.test"),
        ("<bounces@acme.test>", "bounces@acme.test"),
        ("  <bounces@acme.test> ", "bounces@acme.test"),
        ("bounce+m1@acme.test", "bounce+m1@acme.test"),
    ],
)
def test_the_return_path_is_a_bare_address(given: str, stored: str) -> None:
    # Given a bare or bracketed address / Then it is kept as the bare addr-spec of MAIL FROM
    message = Message.model_validate(valid(return_path=given))
    assert message.return_path == stored
    assert message.as_submitted()["return_path"] == stored


@pytest.mark.parametrize(
    "given", ["Bounces <bounces@acme.test>", "<>", "", "bounces", "a@b@c", "<a@b.test"]
)
def test_a_return_path_that_is_not_a_bare_address_is_refused(given: str) -> None:
    assert refused_at(valid(return_path=given)) == [("return_path",)]


# -- recipients -----------------------------------------------------------------------------------


def test_to_needs_a_recipient_even_with_cc_and_bcc() -> None:
    assert refused_at(valid(to=[], cc=["c@x.test"], bcc=["b@x.test"])) == [("to",)]


@pytest.mark.parametrize(
    ("to", "cc", "bcc"),
    [(500, 0, 0), (1, 499, 0), (1, 0, 499), (200, 200, 100)],
)
def test_up_to_the_maximum_recipients_are_accepted(to: int, cc: int, bcc: int) -> None:
    assert to + cc + bcc == limits.MAX_RECIPIENTS
    message = Message.model_validate(
        valid(to=addresses(to), cc=addresses(cc, "c.test"), bcc=addresses(bcc, "b.test"))
    )
    assert len(message.recipients) == limits.MAX_RECIPIENTS


@pytest.mark.parametrize(
    ("to", "cc", "bcc", "loc"),
    [
        (501, 0, 0, ("to",)),
        (300, 201, 0, ("cc",)),
        (300, 100, 101, ("bcc",)),
        (1, 0, 500, ("bcc",)),
        (1, 600, 0, ("cc",)),
    ],
)
def test_more_recipients_are_refused_where_the_total_goes_over(
    to: int, cc: int, bcc: int, loc: Loc
) -> None:
    # Given To, Cc and Bcc that together pass the maximum / Then the list that passes it is named
    body = valid(to=addresses(to), cc=addresses(cc, "c.test"), bcc=addresses(bcc, "b.test"))
    assert refused_at(body) == [loc]


# -- custom headers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["X-Campaign", "List-Unsubscribe", "List-Unsubscribe-Post", "x_custom", "X!#$%&'*+.^`|~9", "A"],
)
def test_a_custom_header_name_of_printable_ascii_is_accepted(name: str) -> None:
    assert Message.model_validate(valid(headers={name: "v"})).headers == {name: "v"}


@pytest.mark.parametrize(
    "name",
    ["", "X Foo", "X:Foo", "X-Foo:", "X-Ünicode", "X-\tTab", "X-\x7f", "X-\r\nBcc", "X" * 77],
)
def test_a_header_name_that_is_not_a_field_name_is_refused(name: str) -> None:
    locations = refused_at(valid(headers={name: "v"}))
    assert locations == [("headers", name, "[key]")]


def test_a_header_name_of_the_maximum_length_is_accepted() -> None:
    name = "X" * limits.MAX_HEADER_NAME_LENGTH
    assert Message.model_validate(valid(headers={name: "v"})).headers == {name: "v"}


RESERVED = [
    "From",
    "To",
    "Cc",
    "Bcc",
    "Subject",
    "Message-ID",
    "X-Genro-Mail-ID",
    "Return-Path",
    "Date",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
]


def test_the_reserved_names_are_the_contracts() -> None:
    assert {name.lower() for name in RESERVED} == RESERVED_HEADER_NAMES


@pytest.mark.parametrize("name", [*RESERVED, *(n.lower() for n in RESERVED), "CC", "message-Id"])
def test_a_header_the_proxy_owns_is_refused_in_any_case(name: str) -> None:
    # Given a custom header that a message field or the proxy sets / Then refused, named by key
    assert refusals(valid(headers={name: "spoofed@evil.test"})) == [
        (("headers", name, "[key]"), "reserved_header")
    ]


@pytest.mark.parametrize(
    "name", ["Sender", "X-Priority", "List-Unsubscribe", "List-Id", "Precedence", "X-Mailer"]
)
def test_every_other_well_formed_header_goes_through(name: str) -> None:
    assert Message.model_validate(valid(headers={name: "<value@acme.test>"})).headers == {
        name: "<value@acme.test>"
    }


@pytest.mark.parametrize("name", ["Reply-To", "reply-to", "REPLY-TO"])
def test_a_reply_to_among_the_headers_becomes_the_reply_to(name: str) -> None:
    # Given Reply-To passed in headers, as genro-mail-proxy's clients do
    message = Message.model_validate(
        valid(headers={name: "Support <help@acme.test>", "X-Campaign": "spring"})
    )
    # Then it is the message's reply_to, and not a custom header as well
    assert message.reply_to == "Support <help@acme.test>"
    assert message.headers == {"X-Campaign": "spring"}


def test_the_reply_to_field_wins_over_a_reply_to_header() -> None:
    message = Message.model_validate(
        valid(reply_to="field@acme.test", headers={"Reply-To": "header@acme.test"})
    )
    assert message.reply_to == "field@acme.test"
    assert message.headers == {}


def test_a_reply_to_header_that_is_no_address_is_refused() -> None:
    assert [loc for loc, _ in refusals(valid(headers={"Reply-To": "not an address"}))] == [
        ("reply_to",)
    ]
    assert refusals(valid(headers={"Reply-To": "a@acme.test\r\nBcc: x@evil.test"}))


def test_up_to_the_maximum_headers_are_accepted_and_one_more_is_refused() -> None:
    headers = {f"X-H{n}": str(n) for n in range(limits.MAX_HEADERS)}
    assert Message.model_validate(valid(headers=headers)).headers == headers
    assert refused_at(valid(headers=headers | {"X-One-More": "1"})) == [("headers",)]


def test_a_header_value_is_at_most_998_characters() -> None:
    longest = "v" * limits.MAX_HEADER_VALUE_LENGTH
    assert Message.model_validate(valid(headers={"X-Long": longest})).headers == {"X-Long": longest}
    assert refused_at(valid(headers={"X-Long": longest + "v"})) == [("headers", "X-Long")]


@pytest.mark.parametrize(
    ("given", "text"), [(3, "3"), (2.5, "2.5"), (True, "True"), ("", ""), ("é", "é")]
)
def test_header_values_given_as_scalars_become_text(given: Any, text: str) -> None:
    message = Message.model_validate(valid(headers={"X-Value": given, "X-Gone": None}))
    assert message.headers == {"X-Value": text}


def test_every_bad_header_is_named_at_once() -> None:
    body = valid(headers={"X-Ok": "1", "Bad Name": "v", "Date": "x", "X-Evil": "a\nb"})
    assert sorted(refused_at(body), key=str) == sorted(
        [("headers", "Bad Name", "[key]"), ("headers", "Date", "[key]"), ("headers", "X-Evil")],
        key=str,
    )


# -- sizes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "longest", "min_length"),
    [
        ("subject", limits.MAX_SUBJECT_LENGTH, 1),
        ("id", limits.MAX_ID_LENGTH, 1),
        ("batch_code", limits.MAX_BATCH_CODE_LENGTH, 0),
        ("message_id", limits.MAX_HEADER_VALUE_LENGTH, 0),
    ],
)
def test_text_fields_up_to_their_limit(field: str, longest: int, min_length: int) -> None:
    # Given the longest accepted value / Then accepted; one character more / Then refused there
    assert getattr(Message.model_validate(valid(**{field: "x" * longest})), field) == "x" * longest
    assert refusals(valid(**{field: "x" * (longest + 1)})) == [((field,), "string_too_long")]


def test_a_mailbox_with_a_long_display_name_is_capped() -> None:
    name = "N" * (limits.MAX_MAILBOX_LENGTH - len(" <a@x.test>"))
    assert Message.model_validate(valid(to=[f"{name} <a@x.test>"])).to[0].startswith("NNN")
    assert refused_at(valid(to=[f"{name}N <a@x.test>"])) == [("to", 0)]


def test_the_body_is_capped_in_utf8_bytes() -> None:
    # Given a body of exactly the limit in bytes, written with 2-byte characters / Then accepted
    half = limits.MAX_BODY_BYTES // 2
    assert len(Message.model_validate(valid(body="é" * half)).body) == half
    # and one byte more / Then refused at "body", though it has fewer characters than the limit
    assert refusals(valid(body="é" * half + "x")) == [(("body",), "body_too_large")]
    assert refusals(valid(body="x" * (limits.MAX_BODY_BYTES + 1))) == [
        (("body",), "body_too_large")
    ]


def test_up_to_the_maximum_attachments_and_one_more_is_refused() -> None:
    many = [attachment(filename=f"a{n}.txt") for n in range(limits.MAX_ATTACHMENTS)]
    assert len(Message.model_validate(valid(attachments=many)).attachments or []) == len(many)
    assert refused_at(valid(attachments=[*many, attachment()])) == [("attachments",)]


@pytest.mark.parametrize(
    "filename",
    ["report.pdf", "résumé 2024.docx", f"report_{{MD5:{'a' * 32}}}.pdf", ".hidden", "a..b", "x"],
)
def test_a_filename_is_a_name(filename: str) -> None:
    assert Attachment.model_validate(attachment(filename=filename)).filename == filename


@pytest.mark.parametrize(
    ("filename", "error_type"),
    [
        ("../etc/passwd", "filename_is_a_path"),
        ("dir/report.pdf", "filename_is_a_path"),
        ("C:\\Users\\report.pdf", "filename_is_a_path"),
        ("/report.pdf", "filename_is_a_path"),
        (".", "filename_is_a_path"),
        ("..", "filename_is_a_path"),
        ("", "string_too_short"),
        ("x" * 256, "string_too_long"),
    ],
)
def test_a_filename_that_is_a_path_or_out_of_length_is_refused(
    filename: str, error_type: str
) -> None:
    assert refusals(valid(attachments=[attachment(filename=filename)])) == [
        (("attachments", 0, "filename"), error_type)
    ]


def test_a_mime_type_is_capped() -> None:
    longest = "application/" + "x" * (limits.MAX_MIME_TYPE_LENGTH - len("application/"))
    assert Attachment.model_validate(attachment(mime_type=longest)).mime_type == longest
    assert refused_at(valid(attachments=[attachment(mime_type=longest + "x")])) == [
        ("attachments", 0, "mime_type")
    ]


INLINE_MAX = limits.MAX_INLINE_ATTACHMENT_LENGTH
PATH_MAX = limits.MAX_STORAGE_PATH_LENGTH


@pytest.mark.parametrize(
    ("storage_path", "fetch_mode"),
    [
        ("base64:" + "A" * INLINE_MAX, None),
        ("A" * INLINE_MAX, "base64"),
        ("https://files.test/" + "a" * (PATH_MAX - len("https://files.test/")), None),
        ("s3://bucket/" + "k" * (PATH_MAX - len("s3://bucket/")), None),
        ("d" * PATH_MAX, None),
        ("d" * PATH_MAX, "endpoint"),
    ],
    ids=["inline", "inline-explicit", "url", "s3", "endpoint", "endpoint-explicit"],
)
def test_a_storage_path_up_to_its_modes_limit_is_accepted(
    storage_path: str, fetch_mode: str | None
) -> None:
    item = Attachment.model_validate(attachment(storage_path=storage_path, fetch_mode=fetch_mode))
    assert item.storage_path == storage_path


@pytest.mark.parametrize(
    ("storage_path", "fetch_mode", "error_type"),
    [
        ("base64:" + "A" * (INLINE_MAX + 1), None, "attachment_too_large"),
        ("A" * (INLINE_MAX + 1), "base64", "attachment_too_large"),
        ("https://files.test/" + "a" * PATH_MAX, None, "string_too_long"),
        ("s3://bucket/" + "k" * PATH_MAX, None, "string_too_long"),
        ("d" * (PATH_MAX + 1), None, "string_too_long"),
        # base64: text is a reference like any other when the client says it is an endpoint's
        ("base64:" + "A" * PATH_MAX, "endpoint", "string_too_long"),
        ("/etc/passwd", None, "local_file"),
    ],
    ids=["inline", "inline-explicit", "url", "s3", "endpoint", "endpoint-explicit", "local-file"],
)
def test_a_storage_path_past_its_modes_limit_is_refused_there(
    storage_path: str, fetch_mode: str | None, error_type: str
) -> None:
    body = valid(attachments=[attachment(storage_path=storage_path, fetch_mode=fetch_mode)])
    assert refusals(body) == [(("attachments", 0, "storage_path"), error_type)]


def test_an_unknown_fetch_mode_is_the_only_error_named() -> None:
    body = valid(attachments=[attachment(storage_path="doc-1", fetch_mode="ftp")])
    assert refused_at(body) == [("attachments", 0, "fetch_mode")]


# -- through the request --------------------------------------------------------------------------


def request_refusals(messages: list[dict[str, Any]]) -> list[Loc]:
    with pytest.raises(ValidationError) as caught:
        AddMessagesRequest.model_validate({"messages": messages})
    return [tuple(error["loc"]) for error in caught.value.errors()]


@pytest.mark.parametrize(
    ("bad", "loc"),
    [
        ({"subject": "Hi\r\nBcc: v@evil.test"}, ("subject",)),
        ({"to": ["ok@x.test", "not-an-address"]}, ("to", 1)),
        ({"to": "ok@x.test, a@b@c"}, ("to", 1)),
        ({"from": "Jane <jane@x.test"}, ("from",)),
        ({"return_path": "Bounces <b@x.test>"}, ("return_path",)),
        ({"headers": {"X-Foo": "a\nb"}}, ("headers", "X-Foo")),
        ({"headers": {"Subject": "spoof"}}, ("headers", "Subject", "[key]")),
        ({"attachments": [attachment(filename="../x")]}, ("attachments", 0, "filename")),
        ({"to": addresses(400), "bcc": addresses(101)}, ("bcc",)),
    ],
)
def test_the_rules_hold_through_the_request_naming_the_message(
    bad: dict[str, Any], loc: Loc
) -> None:
    # Given a request whose second message breaks a rule / When validated
    locations = request_refusals([valid(), valid(id="m2", **bad), valid(id="m3")])
    # Then the error names the messages list, that message's index, and the field
    assert locations == [("messages", 1, *loc)]


# -- round trip and the limits themselves ---------------------------------------------------------


def test_what_is_stored_validates_again_unchanged() -> None:
    # Given a message as stored (the sender validates the stored payload again before sending)
    message = Message.model_validate(
        valid(
            to='"Doe, Jane" <jane@example.test>, b@x.test',
            return_path="<bounces@acme.test>",
            reply_to=" Support <support@acme.test> ",
            headers={"X-Count": 3},
            attachments=[attachment()],
        )
    )
    stored = message.as_submitted()
    # When validated again / Then the same message
    assert Message.model_validate(stored).as_submitted() == stored


def test_every_limit_says_why() -> None:
    # Given domain/limits.py / Then every constant is an int preceded by a comment line
    source = inspect.getsource(limits)
    lines = source.splitlines()
    constants = [
        (node.targets[0].id, node.lineno)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    ]
    assert constants
    for name, lineno in constants:
        assert name.isupper()
        assert isinstance(getattr(limits, name), int)
        assert lines[lineno - 2].lstrip().startswith("# "), f"{name} has no comment"
