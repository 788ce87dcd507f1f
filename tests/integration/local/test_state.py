"""Local mode's saved state against moto in-process: what one moto holds is saved, a fresh
moto gets it back, provisioning over it changes nothing, and a folder that cannot be loaded
is refused as it is."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from infra.local import state as state_module
from infra.local.state import LocalState, UnreadableState
from tests.support.handlers import FAKE_AWS


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    from mailproxy import runtime

    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(runtime.clock, "offset_seconds", 0.0)


@contextmanager
def moto() -> Iterator[Any]:
    """A fresh, empty moto (as a new local mode process starts with)."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        yield boto3.Session()


def provisioned(session: Any) -> Any:
    from infra.local.provision import provision

    return provision(session)


@contextmanager
def restarted(folder: Path, fill: Any) -> Iterator[tuple[Any, Any, Any]]:
    """Provision and fill one moto and save it; then restore into a new moto and provision
    again, as local mode's next start does."""
    first = LocalState(folder)
    with moto() as session:
        names = provisioned(session)
        before = fill(session, names)
        first.save()
    first.close()
    second = LocalState(folder)
    try:
        with moto() as session:
            assert second.restore() is not None
            again = provisioned(session)
            assert again.to_json() == names.to_json()  # the same queues, bucket and key
            yield session, names, before
    finally:
        second.close()


def test_dynamodb_items_come_back_with_their_indexes(tmp_path: Path) -> None:
    def fill(session: Any, names: Any) -> Any:
        table = session.resource("dynamodb").Table(names.tables["messages"])
        for n in range(50):
            table.put_item(
                Item={
                    "tenant_id": "acme",
                    "id": f"m{n}",
                    "status": "scheduled",
                    "body": "x" * 1000,
                    **({"due_shard": "0", "due_at": 1_000 + n} if n % 2 else {}),
                }
            )
        return table.scan()["Items"]

    with restarted(tmp_path, fill) as (session, names, before):
        table = session.resource("dynamodb").Table(names.tables["messages"])
        assert sorted(table.scan()["Items"], key=lambda i: i["id"]) == sorted(
            before, key=lambda i: i["id"]
        )
        due = table.query(
            IndexName="by-due",
            KeyConditionExpression="due_shard = :s AND due_at < :t",
            ExpressionAttributeValues={":s": "0", ":t": 1_010},
        )["Items"]
        assert sorted(item["id"] for item in due) == ["m1", "m3", "m5", "m7", "m9"]
        # Writable as before: the restored table is moto's own, not a copy.
        table.update_item(
            Key={"tenant_id": "acme", "id": "m1"},
            UpdateExpression="SET #s = :v",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":v": "sent"},
        )
        assert table.get_item(Key={"tenant_id": "acme", "id": "m1"})["Item"]["status"] == "sent"


def test_sqs_messages_keep_their_delay_receive_count_and_dead_letter_queue(
    tmp_path: Path,
) -> None:
    def fill(session: Any, names: Any) -> Any:
        sqs = session.client("sqs")
        url = names.queues["high"]
        sqs.send_message(QueueUrl=url, MessageBody="ready")
        sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=600)
        sqs.send_message(QueueUrl=url, MessageBody="in flight")
        # In flight for longer than a restart may take on a loaded machine.
        taken = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=120)
        # Receive two, give "ready" back at once: received once, visible, in flight none.
        for message in taken["Messages"]:
            if message["Body"] == "ready":
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    with restarted(tmp_path, fill) as (session, names, before):
        sqs = session.client("sqs")
        url = names.queues["high"]
        after = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        for name in (
            "QueueArn",
            "VisibilityTimeout",
            "RedrivePolicy",
            "CreatedTimestamp",
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesDelayed",
            "ApproximateNumberOfMessagesNotVisible",
        ):
            assert after[name] == before[name], name
        assert (
            before["ApproximateNumberOfMessages"],
            before["ApproximateNumberOfMessagesDelayed"],
        ) == ("1", "1")

        # The delayed message waits what was left of its 600 s, counted from the restore.
        from moto.backends import get_backend

        queue = get_backend("sqs")["123456789012"]["us-east-1"].queues[url.rsplit("/", 1)[1]]
        delayed = next(m for m in queue._messages if m.body == "delayed")
        assert 590_000 < delayed.delayed_until - time.time() * 1000 <= 600_000
        assert queue.dead_letter_queue is not None
        assert queue.dead_letter_queue.name == url.rsplit("/", 1)[1] + "-dlq"

        # Received messages keep their receive count (the dead-letter threshold counts them).
        in_flight = next(m for m in queue._messages if m.body == "in flight")
        in_flight.change_visibility(0)  # as its visibility timeout running out would
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        )["Messages"]
        counts = {m["Body"]: m["Attributes"]["ApproximateReceiveCount"] for m in got}
        assert counts == {"ready": "2", "in flight": "2"}


def test_s3_objects_come_back_and_the_bucket_is_not_created_twice(tmp_path: Path) -> None:
    payload = os.urandom(300_000)

    def fill(session: Any, names: Any) -> Any:
        session.client("s3").put_object(
            Bucket=names.buckets["payloads"],
            Key="acme/m1",
            Body=payload,
            ContentType="application/octet-stream",
            Metadata={"owner": "acme"},
        )

    with restarted(tmp_path, fill) as (session, names, _):
        s3 = session.client("s3")
        got = s3.get_object(Bucket=names.buckets["payloads"], Key="acme/m1")
        assert got["Body"].read() == payload
        assert got["Metadata"] == {"owner": "acme"}
        assert got["ContentType"] == "application/octet-stream"
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [names.buckets["payloads"]]


def test_a_password_sealed_before_the_restart_opens_after_it(tmp_path: Path) -> None:
    from mailproxy.secret_box import SecretBox, account_context

    context = account_context("acme", "main")

    def fill(session: Any, names: Any) -> Any:
        kms = session.client("kms")
        sealed = SecretBox(kms, names.keys["secrets"]).seal("s3cret", context)
        # A key the project does not use, with a private key that does not pickle.
        signing = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="RSA_2048")["KeyMetadata"]
        signature = kms.sign(
            KeyId=signing["KeyId"], Message=b"hello", SigningAlgorithm="RSASSA_PSS_SHA_256"
        )["Signature"]
        return sealed, signing["KeyId"], signature

    with restarted(tmp_path, fill) as (session, names, (sealed, signing_key, signature)):
        kms = session.client("kms")
        assert SecretBox(kms, names.keys["secrets"]).open(sealed, context) == "s3cret"
        assert kms.verify(
            KeyId=signing_key,
            Message=b"hello",
            Signature=signature,
            SigningAlgorithm="RSASSA_PSS_SHA_256",
        )["SignatureValid"]
        aliases = [a["AliasName"] for a in kms.list_aliases()["Aliases"]]
        assert aliases.count("alias/mailproxy-secrets") == 1


def test_the_local_clock_offset_comes_back(tmp_path: Path) -> None:
    from mailproxy import runtime

    def fill(session: Any, names: Any) -> None:
        runtime.clock.offset_seconds = 7200.0  # POST /local/clock/advance/7200

    with restarted(tmp_path, fill):
        assert runtime.clock.offset_seconds == 7200.0
    runtime.clock.offset_seconds = 0.0
    with moto():
        LocalState(tmp_path).restore()
    assert runtime.clock.offset_seconds == 7200.0


def test_the_folder_and_its_files_are_private(tmp_path: Path) -> None:
    # They hold the KMS key material, so every sealed SMTP password with it.
    folder = tmp_path / "new"
    file = saved_folder(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(file.stat().st_mode) == 0o600


def test_the_generated_admin_token_is_kept_and_private(tmp_path: Path) -> None:
    first = LocalState(tmp_path)
    token = first.admin_token()
    first.close()
    path = tmp_path / "admin-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = LocalState(tmp_path)
    assert second.admin_token() == token
    second.close()
    other = LocalState(tmp_path / "other")
    assert other.admin_token() != token
    other.close()


def test_a_second_local_mode_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    holder = LocalState(tmp_path)
    holder.open()
    with pytest.raises(state_module.StartupError, match="another local mode is using"):
        LocalState(tmp_path).open()
    holder.close()
    after = LocalState(tmp_path)
    after.open()
    after.close()


def saved_folder(folder: Path) -> Path:
    state = LocalState(folder)
    with moto() as session:
        provisioned(session)
        state.save()
    state.close()
    return folder / "state"


def contents(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in folder.iterdir()}


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda data: data[: len(data) // 2], "is damaged"),
        (lambda data: data[:20], "is damaged"),
        (lambda data: b"", "is damaged"),
        (lambda data: data[:-1] + bytes([data[-1] ^ 1]), "fails its checksum"),
        (lambda data: b"not a state\n" + data, "is damaged"),
    ],
)
def test_a_damaged_state_is_refused_and_left_as_it_is(
    tmp_path: Path, damage: Any, said: str
) -> None:
    file = saved_folder(tmp_path)
    file.write_bytes(damage(file.read_bytes()))
    before = contents(tmp_path)
    state = LocalState(tmp_path)
    with pytest.raises(UnreadableState) as refused:
        state.admin_token()  # what local mode does first
    message = str(refused.value)
    assert said in message
    assert message.endswith("move it away or delete it to start empty")
    assert str(tmp_path) in message
    assert "\n" not in message
    with pytest.raises(UnreadableState):
        state.restore()
    state.close()
    assert contents(tmp_path) == before


def test_a_state_of_another_version_is_refused_naming_both(tmp_path: Path) -> None:
    file = saved_folder(tmp_path)
    first, _, rest = file.read_bytes().partition(b"\n")
    header = json.loads(first) | {"moto": "4.0.0"}
    file.write_bytes(json.dumps(header).encode() + b"\n" + rest)
    state = LocalState(tmp_path)
    with pytest.raises(UnreadableState, match=r"another version \(format 1, moto 4\.0\.0;"):
        state.open()
    state.close()


def test_a_save_that_fails_midway_leaves_the_previous_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = saved_folder(tmp_path)
    previous = file.read_bytes()

    def power_cut(fd: int) -> None:
        raise OSError("no space left on device")

    state = LocalState(tmp_path)
    with moto() as session:
        state.restore()
        provisioned(session)
        session.client("sqs").send_message(
            QueueUrl=session.client("sqs").list_queues()["QueueUrls"][0], MessageBody="new"
        )
        monkeypatch.setattr(state_module.os, "fsync", power_cut)
        with pytest.raises(OSError, match="no space"):
            state.save()
    state.close()
    assert file.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]


def test_autosave_saves_on_its_interval_until_stopped(tmp_path: Path) -> None:
    stop = threading.Event()
    state = LocalState(tmp_path)
    with moto() as session:
        provisioned(session)
        thread = state.autosave(stop, threading.Lock(), interval=0.2)
        deadline = time.monotonic() + 10
        while not (tmp_path / "state").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        thread.join(5)
    state.close()
    assert not thread.is_alive()
    assert (tmp_path / "state").exists()
