"""How a sender invocation splits its batch into waves: up to each account's max_connections
messages at once, the accounts side by side, in the order of the batch (no AWS, no SMTP)."""

from __future__ import annotations

from typing import cast

from mailproxy.domain.account import Account
from mailproxy.queueing import Reference
from mailproxy.service.delivery import DeliveryContext, Invocation, _waves


def invocation_with(**max_connections: int) -> Invocation:
    """An invocation that has read these accounts of tenant acme already."""
    invocation = Invocation(cast(DeliveryContext, None))  # the waves read nothing else
    for account_id, connections in max_connections.items():
        invocation.accounts[("acme", account_id)] = Account(
            id=account_id, host="smtp.test", port=587, max_connections=connections
        )
    return invocation


def batch(*account_ids: str | None) -> list[Reference]:
    return [Reference("acme", f"m{n}", "t", account_id) for n, account_id in enumerate(account_ids)]


def test_an_account_s_messages_go_max_connections_at_a_time_in_batch_order() -> None:
    # Given ten messages to an account of four connections / When split into waves
    waves = _waves(batch(*["a"] * 10), invocation_with(a=4))
    # Then four, four, then the last two
    assert waves == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_one_connection_makes_one_message_a_wave() -> None:
    assert _waves(batch("a", "a", "a"), invocation_with(a=1)) == [[0], [1], [2]]


def test_accounts_share_a_wave_each_with_its_own_width() -> None:
    # Given messages of two accounts interleaved, one of two connections, one of one
    references = batch("a", "b", "a", "b", "a", "b")
    # When split / Then each wave holds up to two of a's and one of b's, in batch order
    assert _waves(references, invocation_with(a=2, b=1)) == [[0, 1, 2], [3, 4], [5]]


def test_a_message_without_a_known_account_goes_alone() -> None:
    # Given messages naming no account, or one that does not exist (their delivery fails,
    # without SMTP) / Then one a wave, beside the others
    invocation = invocation_with(a=4)
    invocation.accounts[("acme", "gone")] = None
    assert _waves(batch(None, "gone", None, "a", "a"), invocation) == [[0, 1, 3, 4], [2]]


def test_an_empty_batch_has_no_wave() -> None:
    assert _waves([], invocation_with()) == []
