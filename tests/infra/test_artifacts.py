"""The synthesized Lambdas, run from their artifacts alone: each function's code asset and the
shared layer unpacked from `cdk.out` into a clean folder, the third-party layer's pins installed
for this machine, and nothing of the repository on sys.path (tests/support/cdk_artifacts.py).
Each function gets the environment of its template, resolved against a moto server holding the
resources infra/local/provision.py makes, and one real invocation: an API request, an SQS batch
to an SMTP server, a scheduler tick, a report run, a bounce mailbox read (a real IMAP server).
A module the layers miss, or a handler that imports from outside them, fails here."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "aws_cdk", reason="aws-cdk-lib is not installed: make .venv/.infra-installed (or make test)"
)

import boto3
import requests

from infra import layer_bundle
from infra.local.aws_server import LocalAwsServer
from infra.local.events import http_event, sqs_event, sqs_record
from infra.local.provision import provision
from infra.local.ticker import scheduled_event
from infra.resources import BUCKETS
from mailproxy.config import ALLOW_LOOPBACK_URLS_ENV, ResourceNames
from tests.infra.conftest import Synthesized
from tests.support.cdk_artifacts import (
    FunctionProcess,
    Unpacked,
    clean_environment,
    resolve,
    unpack,
)
from tests.support.handlers import ADMIN_TOKEN, FAKE_AWS, ApiClient, account_for, message
from tests.support.lambda_bootstrap import CLOCK_OFFSET_ENV
from tests.support.reporting import SyncEndpoint
from tests.support.smtp_servers import SmtpServer
from tests.support.tenants import create_tenant, records_by_id

PREFIX = "mailproxy"
FUNCTIONS = ("api", "sender", "scheduler", "reporter", "bouncer")
AWS_VARIABLES = {key: value for key, value in FAKE_AWS.items() if key.startswith("AWS_")}
API_ENDPOINT = "https://abcdef1234.execute-api.us-east-1.amazonaws.com"
SMTP_LOGIN = ("mailer", "s3cret-passw0rd")
INVOICE = "Invoice 42: one proxy, delivered.\n"
INVOICE_BASE64 = base64.b64encode(INVOICE.encode()).decode()


@cache
def _dependencies_for_this_machine() -> Path:
    return layer_bundle.dependencies_layer_dir(platform=layer_bundle.THIS_MACHINE)


@pytest.fixture(scope="module")
def unpacked(
    synthesized: Synthesized, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Unpacked]:
    into = tmp_path_factory.mktemp("lambdas")
    return {
        name: unpack(
            synthesized.outdir,
            synthesized.template,
            f"{PREFIX}-{name}",
            into,
            _dependencies_for_this_machine,
        )
        for name in FUNCTIONS
    }


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = LocalAwsServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _deployed(template: dict[str, Any], names: ResourceNames) -> tuple[dict, dict]:
    """What a deployment made of each resource the functions' environments name: the moto
    resources provisioned from infra/resources.py, found by their physical names."""
    sqs, kms = boto3.client("sqs"), boto3.client("kms")
    secrets = boto3.client("secretsmanager")
    refs: dict[str, str] = {}
    attributes: dict[tuple[str, str], str] = {}
    unnamed_buckets = []
    for logical_id, resource in template["Resources"].items():
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::SQS::Queue":
            url = sqs.get_queue_url(QueueName=properties["QueueName"])["QueueUrl"]
            refs[logical_id] = url
            attributes[(logical_id, "Arn")] = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
        elif kind == "AWS::DynamoDB::Table":
            refs[logical_id] = properties["TableName"]
        elif kind == "AWS::S3::Bucket" and "BucketName" not in properties:
            unnamed_buckets.append(logical_id)
        elif kind == "AWS::KMS::Alias":
            key_logical_id = properties["TargetKeyId"]["Fn::GetAtt"][0]
            key = kms.describe_key(KeyId=properties["AliasName"])["KeyMetadata"]
            attributes[(key_logical_id, "Arn")] = key["Arn"]
        elif kind == "AWS::SecretsManager::Secret":
            # The stack generates the admin token; this deployment's is a known one.
            refs[logical_id] = secrets.create_secret(
                Name=properties["Name"], SecretString=ADMIN_TOKEN
            )["ARN"]
        elif kind == "AWS::ApiGatewayV2::Api":
            attributes[(logical_id, "ApiEndpoint")] = API_ENDPOINT
        elif kind == "AWS::Lambda::Function":  # the api names the bouncer (reload-bounce)
            refs[logical_id] = properties["FunctionName"]
    # CloudFormation names the buckets itself: one each, as infra/resources.py lists them.
    assert len(unnamed_buckets) == len(BUCKETS) == 1, unnamed_buckets
    refs[unnamed_buckets[0]] = names.buckets[next(iter(BUCKETS))]
    return refs, attributes


@dataclass
class Deployment:
    """The stack as deployed on moto, and its functions started from their artifacts."""

    unpacked: dict[str, Unpacked]
    base_environment: dict[str, str]
    refs: dict[str, str]
    attributes: dict[tuple[str, str], str]
    runtime: Path
    started: list[FunctionProcess] = field(default_factory=list)

    def environment(self, name: str) -> dict[str, str]:
        """The function's Environment.Variables from the template, resolved."""
        resolved = resolve(dict(self.unpacked[name].environment), self.refs, self.attributes)
        return {key: str(value) for key, value in resolved.items()}

    def start(self, *names: str, **extra: dict[str, str]) -> list[FunctionProcess]:
        """Cold starts, side by side, then each function's init awaited."""
        processes = [
            FunctionProcess(
                self.unpacked[name],
                {**self.base_environment, **self.environment(name), **extra.get(name, {})},
                self.runtime,
            )
            for name in names
        ]
        self.started += processes
        for process in processes:
            process.ready()
        return processes

    def queue_url(self, label: str) -> str:
        return str(json.loads(self.environment("sender")["MAILPROXY_RESOURCES"])["queues"][label])


@pytest.fixture
def deployment(
    synthesized: Synthesized,
    unpacked: dict[str, Unpacked],
    moto_endpoint: str,
    tmp_path: Path,
) -> Iterator[Deployment]:
    # A fresh account on the module's moto server for each test.
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**AWS_VARIABLES, "AWS_ENDPOINT_URL": moto_endpoint}.items():
            patch.setenv(key, value)
        names = provision(boto3.Session(), PREFIX)
        refs, attributes = _deployed(synthesized.template, names)
        deployed = Deployment(
            unpacked,
            {
                **clean_environment(tmp_path),
                **AWS_VARIABLES,
                "AWS_ENDPOINT_URL": moto_endpoint,
            },
            refs,
            attributes,
            tmp_path / "runtime",
        )
        try:
            yield deployed
        finally:
            for process in deployed.started:
                process.close()


def statuses(api: ApiClient, tenant_id: str) -> dict[str, str]:
    return {id: record["status"] for id, record in records_by_id(api, tenant_id).items()}


def a_tenant_with_an_account(api: ApiClient, smtp: SmtpServer, **tenant: Any) -> None:
    create_tenant(api, "acme", **tenant)
    account = account_for(smtp, user=SMTP_LOGIN[0], password=SMTP_LOGIN[1])
    assert api.call("POST", "/account", account) == (200, {"ok": True})


def receive(queue_url: str) -> list[Any]:
    """One receive of up to 10 messages, as an event source mapping makes."""
    response = boto3.client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )
    return list(response.get("Messages", []))


def deliver_batch(function: FunctionProcess, queue_url: str, received: list[dict[str, Any]]) -> Any:
    """What an SQS event source mapping does: the batch to the function, then the records it
    did not report failed deleted. The function's answer."""
    sqs = boto3.client("sqs")
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    records = [
        sqs_record(
            m["Body"],
            arn,
            m["ReceiptHandle"],
            m["MessageId"],
            int(m["Attributes"]["ApproximateReceiveCount"]),
        )
        for m in received
    ]
    response = function.invoke(sqs_event(records))
    failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
    for m in received:
        if m["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return response


def referenced_ids(received: list[dict[str, Any]]) -> list[str]:
    return sorted(json.loads(m["Body"])["message_id"] for m in received)


def queue_counts(queue_url: str) -> dict[str, int]:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    return {
        "visible": int(attributes["ApproximateNumberOfMessages"]),
        "delayed": int(attributes["ApproximateNumberOfMessagesDelayed"]),
    }


# -- each function, from its artifacts ------------------------------------------------------


def test_the_api_function_answers_requests(deployment: Deployment) -> None:
    # Given the api function started from its artifacts (its admin token in Secrets Manager)
    [api_function] = deployment.start("api")
    api = ApiClient(api_function)
    with SmtpServer() as smtp:
        # When an application is set up and submits a message over HTTP
        health = api.call("GET", "/health")
        status, tenant = api.call("POST", "/tenant", {"id": "acme"})
        created = api.call("POST", "/account", account_for(smtp))
        submitted = api.call(
            "POST",
            "/commands/add-messages",
            {"messages": [message("hello-1")]},
            token=tenant["api_key"],
        )
    # Then each answer is the contract's, and the message waits on its queue
    assert health == (200, {"status": "ok"})
    assert (status, tenant["ok"], bool(tenant["api_key"])) == (200, True, True)
    assert created == (200, {"ok": True})
    assert submitted == (200, {"ok": True, "queued": 1, "rejected": []})
    assert statuses(api, "acme") == {"hello-1": "pending"}
    assert referenced_ids(receive(deployment.queue_url("medium"))) == ["hello-1"]


def test_the_api_function_serves_what_it_imports_on_demand(deployment: Deployment) -> None:
    # Given the api function started from its artifacts
    [api_function] = deployment.start("api")
    # When the routes whose modules and files are loaded only when asked for are asked for
    metrics = api_function.invoke(http_event("GET", "/metrics"))
    docs = api_function.invoke(http_event("GET", "/docs"))
    # Then they answer: Prometheus text from prometheus_client, Powertools' Swagger UI files
    content_type = metrics["headers"]["Content-Type"].split(";")[0]
    assert (metrics["statusCode"], content_type) == (200, "text/plain")
    assert (docs["statusCode"], "swagger-ui" in docs["body"]) == (200, True)


def test_the_sender_function_delivers_an_sqs_batch_over_smtp(deployment: Deployment) -> None:
    api_function, sender = deployment.start("api", "sender")
    api = ApiClient(api_function)
    with SmtpServer(credentials=SMTP_LOGIN) as smtp:
        # Given two messages accepted for an account behind SMTP AUTH (its password sealed
        # with the stack's KMS key), one with an attachment
        a_tenant_with_an_account(api, smtp)
        invoice = {"filename": "invoice.txt", "storage_path": "base64:" + INVOICE_BASE64}
        messages = [message("order-1", attachments=[invoice]), message("order-2")]
        assert api.call("POST", "/commands/add-messages", {"messages": messages})[0] == 200
        queue = deployment.queue_url("medium")
        batch = receive(queue)
        # When their SQS batch is delivered to the sender function
        response = deliver_batch(sender, queue, batch)
        arrived = smtp.handler.wait_for(2, timeout=10)
    # Then both arrive at the SMTP server, no record failed, and both are recorded sent
    assert referenced_ids(batch) == ["order-1", "order-2"]
    assert response == {"batchItemFailures": []}
    by_subject = {r.message["Subject"]: r.message for r in arrived}
    assert sorted(by_subject) == ["Subject order-1", "Subject order-2"]
    [attached] = list(by_subject["Subject order-1"].iter_attachments())
    assert (attached.get_filename(), attached.get_content()) == ("invoice.txt", INVOICE)
    assert statuses(api, "acme") == {"order-1": "sent", "order-2": "sent"}


def test_the_scheduler_function_queues_what_falls_due(deployment: Deployment) -> None:
    [api_function] = deployment.start("api")
    api = ApiClient(api_function)
    with SmtpServer() as smtp:
        # Given a message to be sent in 20 minutes: later than a queue can hold it back
        a_tenant_with_an_account(api, smtp)
        later = message("later-1", deferred_ts=time.time() + 20 * 60)
        assert api.call("POST", "/commands/add-messages", {"messages": [later]})[0] == 200
    queue = deployment.queue_url("medium")
    assert statuses(api, "acme") == {"later-1": "scheduled"}
    assert queue_counts(queue) == {"visible": 0, "delayed": 0}
    # When the scheduler's minute tick comes 19.5 minutes later (its clock set ahead)
    offset = 19.5 * 60
    [scheduler] = deployment.start("scheduler", scheduler={CLOCK_OFFSET_ENV: str(offset)})
    answer = scheduler.invoke(scheduled_event(time.time() + offset))
    # Then it queues the message, held back for the 30 seconds left
    assert answer == {"queued": 1, "superseded": 0}
    assert queue_counts(queue) == {"visible": 0, "delayed": 1}


def test_the_reporter_function_posts_a_delivery_report(deployment: Deployment) -> None:
    # The sync endpoint is on this machine: the one setting added to the template's, for the
    # functions that judge tenants' URLs.
    loopback = {ALLOW_LOOPBACK_URLS_ENV: "1"}
    api_function, sender, reporter = deployment.start(
        "api", "sender", "reporter", api=loopback, reporter=loopback
    )
    api = ApiClient(api_function)
    with SmtpServer(credentials=SMTP_LOGIN) as smtp, SyncEndpoint() as endpoint:
        # Given a tenant with a sync endpoint, whose message the sender function delivered
        a_tenant_with_an_account(api, smtp, client_base_url=endpoint.base_url())
        assert api.call("POST", "/commands/add-messages", {"messages": [message("m1")]})[0] == 200
        queue = deployment.queue_url("medium")
        deliver_batch(sender, queue, receive(queue))
        # When the wake-up the sender left is delivered to the reporter function
        wakeups = deployment.queue_url("wakeups")
        woken = receive(wakeups)
        answer = deliver_batch(reporter, wakeups, woken)
        # Then the tenant's endpoint receives the report of the delivery
        reports = endpoint.reports()
    assert len(woken) == 1
    assert answer == {"synced": 1, "failed": 0}
    assert [[(line["id"], "sent_ts" in line) for line in report] for report in reports] == [
        [("m1", True)]
    ]


# The client's Message-ID of the message the fixture's DSN returns.
HARD_MESSAGE_ID = "<9d1c27a0b4e54f7c8a1e2b3c4d5e6f70@acme.example>"
BOUNCES = Path(__file__).resolve().parents[1] / "fixtures" / "bounces"


@pytest.fixture(scope="module")
def imap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.support.imap_server import ImapServer

    running = ImapServer(tmp_path_factory.mktemp("imap"))
    running.start()
    yield running
    running.stop()


def configure_bounces(deployment: Deployment, imap: Any) -> None:
    """The instance settings as PUT /instance stores them: written here through the store,
    with the password sealed by the deployment's KMS key."""
    from mailproxy.domain.instance import InstanceChange
    from mailproxy.secret_box import SecretBox
    from mailproxy.service.instance import update_instance
    from mailproxy.store.dynamo import Store
    from tests.support.imap_server import PASSWORD, USER

    names = ResourceNames.from_json(deployment.environment("bouncer")["MAILPROXY_RESOURCES"])
    change = InstanceChange.model_validate(
        {
            "bounce_enabled": True,
            "bounce_imap_host": "127.0.0.1",
            "bounce_imap_port": imap.tls_port,
            "bounce_imap_user": USER,
            "bounce_imap_password": PASSWORD,
            "bounce_imap_folder": "Bounces",
        }
    )
    sealer = SecretBox(boto3.client("kms"), names.key_id("secrets"))
    update_instance(change, Store(names), sealer, time.time)


def test_the_bouncer_function_records_a_bounce_from_the_mailbox(
    deployment: Deployment, imap: Any, tmp_path: Path
) -> None:
    ca = tmp_path / "imap-ca.pem"
    ca.write_bytes(imap.ca.cert_pem.bytes())
    api_function, sender, bouncer = deployment.start(
        "api", "sender", "bouncer", bouncer={"SSL_CERT_FILE": str(ca)}
    )
    api = ApiClient(api_function)
    with SmtpServer(credentials=SMTP_LOGIN) as smtp:
        # Given a message the sender function delivered, whose DSN is in the bounce mailbox
        a_tenant_with_an_account(api, smtp)
        hard = message("msg-hard-1", to=["nobody@customer.example"], message_id=HARD_MESSAGE_ID)
        assert api.call("POST", "/commands/add-messages", {"messages": [hard]})[0] == 200
        queue = deployment.queue_url("medium")
        deliver_batch(sender, queue, receive(queue))
    imap.append("Bounces", (BOUNCES / "postfix_hard_511.eml").read_bytes())
    configure_bounces(deployment, imap)
    # When the minute tick invokes the bouncer function
    answer = bouncer.invoke(scheduled_event(time.time()))
    # Then it read the mailbox and recorded one hard bounce, in the message's history
    assert answer["state"] == "ran"
    assert (answer["read"], answer["hard"], answer["unmatched"]) == (1, 1, 0)
    history = records_by_id(api, "acme")["msg-hard-1"]["history"]
    assert "bounce" in [event["event_type"] for event in history]
