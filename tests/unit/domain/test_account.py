"""An SMTP account as POST /account receives it, and the TLS mode it implies."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mailproxy.domain.account import Account, TlsMode, tls_mode


@pytest.mark.parametrize(
    ("use_tls", "port", "expected"),
    [
        (None, 465, TlsMode.IMPLICIT),
        (None, 587, TlsMode.PLAIN),
        (None, 25, TlsMode.PLAIN),
        (True, 465, TlsMode.IMPLICIT),
        (True, 587, TlsMode.STARTTLS),
        (True, 25, TlsMode.STARTTLS),
        (False, 465, TlsMode.PLAIN),
        (False, 587, TlsMode.PLAIN),
        (False, 25, TlsMode.PLAIN),
    ],
)
def test_tls_mode_follows_use_tls_and_port(
    use_tls: bool | None, port: int, expected: TlsMode
) -> None:
    # Given use_tls and a port / When the TLS mode is derived / Then it is SPEC.md's table
    assert tls_mode(use_tls, port) is expected
    assert Account(id="a", host="smtp.test", port=port, use_tls=use_tls).tls_mode is expected


def test_defaults_of_an_account() -> None:
    account = Account.model_validate({"id": "main", "host": "smtp.test", "port": 587})
    assert account.ttl == 300
    assert account.max_connections == 4
    assert account.limit_behavior == "defer"
    assert account.use_tls is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("port", 0),
        ("port", 70000),
        ("limit_behavior", "drop"),
        ("host", ""),
        ("ttl", -1),
        ("max_connections", 0),
        ("max_connections", 33),
        ("max_connections", "many"),
    ],
)
def test_invalid_fields_are_refused_by_name(field: str, value: object) -> None:
    body = {"id": "main", "host": "smtp.test", "port": 587} | {field: value}
    with pytest.raises(ValidationError) as caught:
        Account.model_validate(body)
    assert [error["loc"][0] for error in caught.value.errors()] == [field]


def test_unknown_fields_are_ignored() -> None:
    account = Account.model_validate(
        {"id": "main", "host": "smtp.test", "port": 25, "name": "legacy field"}
    )
    assert "name" not in account.model_dump()
