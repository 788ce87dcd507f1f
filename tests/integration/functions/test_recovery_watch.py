"""A claimed message stays on the scheduler's watch until its outcome is written, whatever
else is written about it meanwhile: it is how a sender that dies is replaced."""

from __future__ import annotations

from typing import Any

from mailproxy import runtime
from mailproxy.domain.ports import Claimed
from mailproxy.queueing import Reference
from tests.support.handlers import ApiClient, account_for, message
from tests.support.smtp_servers import SmtpServer
from tests.support.sqs import receive_all


def test_a_late_queueing_confirmation_leaves_a_claimed_message_watched(
    api: ApiClient, aws: Any, smtp_server: SmtpServer
) -> None:
    # Given a message a sender claimed as soon as its reference was queued
    assert api.call("POST", "/account", account_for(smtp_server)) == (200, {"ok": True})
    assert api.call("POST", "/commands/add-messages", {"messages": [message("m1")]})[0] == 200
    [record] = receive_all(aws.queues["medium"])
    reference = Reference.from_json(record["Body"])
    store = runtime.store()
    before = store.get_state("acme", "m1")
    assert before is not None
    claimed = store.claim(
        "acme",
        "m1",
        reference.ticket,
        before.body_version,
        now=before.created_at + 1,
        lease_seconds=360,
        claim_token="sender-1",
        charges=[],
    )
    assert isinstance(claimed, Claimed)

    # When the API's confirmation that the reference is queued arrives only now
    store.confirm_queued([reference])

    # Then the message is still watched until its lease ends (a dead sender is replaced)
    after = store.get_state("acme", "m1")
    assert after is not None
    assert after.status == "sending"
    assert after.due_at == before.created_at + 1 + 360
    assert after.due_shard is not None
