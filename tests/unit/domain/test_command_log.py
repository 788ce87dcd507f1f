"""What the command log keeps of a call: secrets and attachment contents masked, ids that
sort by time, the days a query spans."""

from __future__ import annotations

from mailproxy.domain.command_log import (
    MASK,
    CommandQuery,
    CommandRecord,
    command_id,
    days_between,
    endpoint_of,
    first_id_at,
    is_logged,
    last_id_at,
    masked,
    partition_of,
)

T0 = 1_900_000_000.0


def test_passwords_tokens_and_attachment_contents_are_masked_wherever_they_are() -> None:
    # Given an account, a tenant's client_auth, instance settings and a message with content
    payload = {
        "id": "smtp-main",
        "password": "hunter2",
        "client_auth": {"method": "bearer", "token": "t0k3n"},
        "bounce_imap_password": "imap-pw",
        "api_token": "admin",
        "messages": [
            {
                "id": "m1",
                "subject": "Invoice",
                "attachments": [{"filename": "a.pdf", "content": "JVBERi0x"}],
            }
        ],
    }
    # When it is masked
    kept = masked(payload)
    # Then no secret and no content is left, and everything else is as given
    assert kept["password"] == MASK
    assert kept["client_auth"] == {"method": "bearer", "token": MASK}
    assert kept["bounce_imap_password"] == MASK
    assert kept["api_token"] == MASK
    assert kept["messages"][0]["attachments"] == [{"filename": "a.pdf", "content": MASK}]
    assert kept["messages"][0]["subject"] == "Invoice"
    assert "hunter2" not in repr(kept)
    assert "JVBERi0x" not in repr(kept)
    # And the payload itself is left as it was
    assert payload["password"] == "hunter2"


def test_a_cleared_secret_stays_null_and_a_content_outside_attachments_is_kept() -> None:
    assert masked({"password": None, "content": "body text"}) == {
        "password": None,
        "content": "body text",
    }


def test_ids_sort_by_time_and_a_time_range_covers_exactly_its_ids() -> None:
    # Given two calls a millisecond apart, the first with the largest salt
    first, second = command_id(T0, 999), command_id(T0 + 0.001, 0)
    # Then the later one sorts after, both lie in their range, and both are exact in JSON
    assert first < second
    assert first_id_at(T0) <= first <= last_id_at(T0 + 0.001)
    assert first_id_at(T0) <= second <= last_id_at(T0 + 1)
    assert second < 2**53
    # And a call before the range is outside it
    assert command_id(T0 - 1, 0) < first_id_at(T0)


def test_the_partition_is_the_day_of_the_id_with_its_shard() -> None:
    record_id = command_id(T0, 7)
    day, shard = partition_of(record_id).split("#")
    assert day == "2030-03-17"
    assert 0 <= int(shard) < 4


def test_days_between_go_newest_first_and_include_both_ends() -> None:
    assert days_between(T0 - 86_400 * 2, T0) == ["2030-03-17", "2030-03-16", "2030-03-15"]
    assert days_between(T0, T0 - 1) == []


def test_only_state_changing_methods_are_logged() -> None:
    assert [m for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD") if is_logged(m)] == [
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
    ]


def test_the_endpoint_keeps_the_query_a_replay_needs() -> None:
    assert endpoint_of("post", "/commands/add-messages") == "POST /commands/add-messages"
    assert (
        endpoint_of("DELETE", "/account/a1", {"tenant_id": "t 1"})
        == "DELETE /account/a1?tenant_id=t+1"
    )


def test_a_query_admits_by_tenant_time_and_part_of_the_endpoint() -> None:
    record = CommandRecord(1, int(T0), "POST /account", "acme", {}, 200, int(T0) + 60)
    assert CommandQuery().admits(record)
    assert CommandQuery(tenant_id="acme", since_ts=T0, until_ts=T0, endpoint_filter="acc").admits(
        record
    )
    assert not CommandQuery(tenant_id="beta").admits(record)
    assert not CommandQuery(since_ts=T0 + 1).admits(record)
    assert not CommandQuery(until_ts=T0 - 1).admits(record)
    assert not CommandQuery(endpoint_filter="tenant").admits(record)
