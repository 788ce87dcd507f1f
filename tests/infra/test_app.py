"""The CDK app, synthesized once (tests/infra/conftest.py): each construct's resources, then
the whole template under cdk-nag's AwsSolutions pack and cfn-lint."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "aws_cdk", reason="aws-cdk-lib is not installed: make .venv/.infra-installed (or make test)"
)

from aws_cdk.assertions import Match, Template

from infra.constructs.queues import VISIBILITY_TO_TIMEOUT, sender_timeout
from infra.constructs.storage import PAYLOAD_EXPIRY_DAYS
from infra.resources import QUEUES, TABLES, WAKEUPS_QUEUE
from mailproxy.config import RESOURCES_ENV, ResourceNames
from mailproxy.domain.large_files import MAX_FILE_TTL_DAYS, ttl_prefix
from tests.infra.conftest import ATTACHMENT_BUCKET, Synthesized

PREFIX = "mailproxy"
FUNCTIONS = ("api", "sender", "scheduler", "reporter", "bouncer")


@pytest.fixture(scope="module")
def template(synthesized: Synthesized) -> Template:
    return Template.from_json(synthesized.template)


def _function(synthesized: Synthesized, name: str) -> tuple[str, dict[str, Any]]:
    for logical_id, resource in synthesized.resources("AWS::Lambda::Function").items():
        if resource["Properties"]["FunctionName"] == f"{PREFIX}-{name}":
            return logical_id, resource["Properties"]
    raise AssertionError(f"no function {name}")


def _logical_id(synthesized: Synthesized, kind: str, **properties: Any) -> str:
    for logical_id, resource in synthesized.resources(kind).items():
        if all(resource["Properties"].get(k) == v for k, v in properties.items()):
            return logical_id
    raise AssertionError(f"no {kind} with {properties}")


def _policy_of(synthesized: Synthesized, function_logical_id: str) -> str:
    """The function role's inline policy document, as text (to look for ARNs and actions)."""
    role = synthesized.template["Resources"][function_logical_id]["Properties"]["Role"]
    role_id = role["Fn::GetAtt"][0]
    for resource in synthesized.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in resource["Properties"]["Roles"]:
            return json.dumps(resource["Properties"]["PolicyDocument"])
    raise AssertionError(f"no policy for {role_id}")


# --- storage ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(TABLES))
def test_table_matches_its_spec(template: Template, key: str) -> None:
    spec = TABLES[key]
    schema = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
    if spec.sort_key:
        schema.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
    properties: dict[str, Any] = {
        "TableName": spec.physical_name(PREFIX),
        "KeySchema": schema,
        "BillingMode": "PAY_PER_REQUEST",
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
    }
    if spec.ttl_attribute:
        properties["TimeToLiveSpecification"] = {
            "AttributeName": spec.ttl_attribute,
            "Enabled": True,
        }
    if spec.indexes:
        properties["GlobalSecondaryIndexes"] = [
            Match.object_like(
                {
                    "IndexName": index.name,
                    "KeySchema": [
                        {"AttributeName": index.partition_key, "KeyType": "HASH"},
                        *(
                            [{"AttributeName": index.sort_key, "KeyType": "RANGE"}]
                            if index.sort_key
                            else []
                        ),
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            )
            for index in spec.indexes
        ]
    template.has_resource_properties("AWS::DynamoDB::Table", properties)


def test_index_key_types_follow_the_spec(synthesized: Synthesized) -> None:
    for spec in TABLES.values():
        table_id = _logical_id(
            synthesized, "AWS::DynamoDB::Table", TableName=spec.physical_name(PREFIX)
        )
        props = synthesized.template["Resources"][table_id]["Properties"]
        types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
        for index in spec.indexes:
            for name in filter(None, (index.partition_key, index.sort_key)):
                assert types[name] == index.key_types.get(name, "S"), (spec.logical_name, name)


def test_tables_are_retained_by_default(template: Template) -> None:
    template.all_resources("AWS::DynamoDB::Table", {"DeletionPolicy": "Retain"})


def test_payload_bucket_is_private_encrypted_and_expires(template: Template) -> None:
    template.resource_count_is("AWS::S3::Bucket", 1)
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "ExpirationInDays": PAYLOAD_EXPIRY_DAYS,
                                "Prefix": "payloads/",
                                "Status": "Enabled",
                            }
                        )
                    ]
                )
            },
        },
    )
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_large_files_expire_with_their_links(synthesized: Synthesized) -> None:
    # Given the payload bucket's lifecycle rules
    [bucket] = synthesized.resources("AWS::S3::Bucket").values()
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    # Then every file_ttl_days a tenant may choose has its prefix, expired after those days
    by_prefix = {rule.get("Prefix"): rule for rule in rules}
    for days in range(1, MAX_FILE_TTL_DAYS + 1):
        rule = by_prefix[ttl_prefix(days)]
        assert (rule["ExpirationInDays"], rule["Status"]) == (days, "Enabled")
    # and no rule without a prefix expires objects (the shortest rule that applies wins)
    [whole_bucket] = [rule for rule in rules if "Prefix" not in rule]
    assert "ExpirationInDays" not in whole_bucket
    assert whole_bucket["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert len(rules) == MAX_FILE_TTL_DAYS + 2  # S3 holds at most 1,000


def test_secrets_key_rotates_and_encrypts_the_admin_token(template: Template) -> None:
    template.resource_count_is("AWS::KMS::Key", 1)
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "Name": f"{PREFIX}/admin-token",
            "KmsKeyId": Match.any_value(),
            "GenerateSecretString": Match.object_like({"ExcludePunctuation": True}),
        },
    )


# --- queues -----------------------------------------------------------------------------


@pytest.mark.parametrize("priority", list(QUEUES), ids=lambda p: p.label)
def test_priority_queue_has_a_dlq(synthesized: Synthesized, template: Template, priority) -> None:
    spec = QUEUES[priority]
    dlq_id = _logical_id(synthesized, "AWS::SQS::Queue", QueueName=spec.dlq_physical_name(PREFIX))
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": spec.physical_name(PREFIX),
            "VisibilityTimeout": spec.visibility_timeout_seconds,
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
                "maxReceiveCount": spec.max_receive_count,
            },
        },
    )
    assert spec.visibility_timeout_seconds >= VISIBILITY_TO_TIMEOUT * sender_timeout().to_seconds()


def test_every_queue_is_encrypted_and_tls_only(synthesized: Synthesized) -> None:
    queues = synthesized.resources("AWS::SQS::Queue")
    assert len(queues) == 2 * len(QUEUES) + 1
    assert all(q["Properties"]["SqsManagedSseEnabled"] for q in queues.values())
    policies = json.dumps(synthesized.resources("AWS::SQS::QueuePolicy"))
    for logical_id in queues:
        assert f'"Ref": "{logical_id}"' in policies, logical_id
    assert policies.count('"aws:SecureTransport": "false"') == len(queues)


def test_sender_timeout_fits_six_times_in_every_visibility_timeout(
    synthesized: Synthesized,
) -> None:
    _, sender = _function(synthesized, "sender")
    for spec in QUEUES.values():
        assert spec.visibility_timeout_seconds >= VISIBILITY_TO_TIMEOUT * sender["Timeout"]


def test_wakeups_queue_covers_the_reporter(synthesized: Synthesized, template: Template) -> None:
    _, reporter = _function(synthesized, "reporter")
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": f"{PREFIX}-{WAKEUPS_QUEUE}",
            "VisibilityTimeout": VISIBILITY_TO_TIMEOUT * reporter["Timeout"],
        },
    )


# --- lambdas ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_runtime_arch_layers_logs(synthesized: Synthesized, name: str) -> None:
    _, props = _function(synthesized, name)
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "handler.lambda_handler"
    assert len(props["Layers"]) == 2
    log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
    log_group = synthesized.template["Resources"][log_group_id]
    assert log_group["Properties"]["RetentionInDays"] == 30


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_gets_the_resource_names(synthesized: Synthesized, name: str) -> None:
    _, props = _function(synthesized, name)
    raw = props["Environment"]["Variables"][RESOURCES_ENV]
    # Fn::Join of literal JSON and CloudFormation references: resolve each to a placeholder.
    parts = raw["Fn::Join"][1] if isinstance(raw, dict) else [raw]
    text = "".join(p if isinstance(p, str) else "<ref>" for p in parts)
    names = ResourceNames.from_json(text)
    assert names.tables == {k: s.physical_name(PREFIX) for k, s in TABLES.items()}
    assert set(names.queues) == {p.label for p in QUEUES} | {WAKEUPS_QUEUE}
    assert set(names.buckets) == {"payloads"}
    assert set(names.keys) == {"secrets"}
    variables = props["Environment"]["Variables"]
    assert variables["MAILPROXY_LEASE_SECONDS"] == str(
        min(s.visibility_timeout_seconds for s in QUEUES.values())
    )
    assert variables["MAILPROXY_S3_ATTACHMENT_BUCKETS"] == ATTACHMENT_BUCKET
    assert ("MAILPROXY_ADMIN_TOKEN_SECRET_ARN" in variables) == (name == "api")
    # No pydantic plugin search (file I/O) when the first model is built
    assert variables["PYDANTIC_DISABLE_PLUGINS"] == "__all__"


def test_layers_hold_the_package_and_arm64_dependencies(synthesized: Synthesized) -> None:
    layers = synthesized.resources("AWS::Lambda::LayerVersion")
    assert len(layers) == 2
    for layer in layers.values():
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assets = [p for p in synthesized.outdir.glob("asset.*") if p.is_dir()]
    shared = [p for p in assets if (p / "python" / "mailproxy" / "config.py").exists()]
    deps = [p for p in assets if (p / "python" / "pydantic_core").is_dir()]
    assert len(shared) == 1
    assert len(deps) == 1
    assert not list(shared[0].glob("**/__pycache__"))
    assert list((deps[0] / "python" / "pydantic_core").glob("*aarch64*.so"))
    handlers = [p for p in assets if (p / "handler.py").exists()]
    assert len(handlers) == len(FUNCTIONS)


def test_sender_has_one_event_source_per_priority_queue(
    synthesized: Synthesized, template: Template
) -> None:
    sender_id, _ = _function(synthesized, "sender")
    for spec in QUEUES.values():
        queue_id = _logical_id(synthesized, "AWS::SQS::Queue", QueueName=spec.physical_name(PREFIX))
        template.has_resource_properties(
            "AWS::Lambda::EventSourceMapping",
            {
                "FunctionName": {"Ref": sender_id},
                "EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]},
                "BatchSize": 10,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "ScalingConfig": {"MaximumConcurrency": spec.max_concurrency},
            },
        )
    mappings = synthesized.resources("AWS::Lambda::EventSourceMapping").values()
    assert sum(m["Properties"]["FunctionName"] == {"Ref": sender_id} for m in mappings) == len(
        QUEUES
    )


def test_reporter_is_fed_by_the_wakeups_queue(synthesized: Synthesized, template: Template) -> None:
    reporter_id, _ = _function(synthesized, "reporter")
    wakeups_id = _logical_id(synthesized, "AWS::SQS::Queue", QueueName=f"{PREFIX}-{WAKEUPS_QUEUE}")
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": reporter_id},
            "EventSourceArn": {"Fn::GetAtt": [wakeups_id, "Arn"]},
        },
    )


def test_minute_rule_ticks_scheduler_reporter_and_bouncer(
    synthesized: Synthesized, template: Template
) -> None:
    scheduler_id, _ = _function(synthesized, "scheduler")
    reporter_id, _ = _function(synthesized, "reporter")
    bouncer_id, _ = _function(synthesized, "bouncer")
    template.resource_count_is("AWS::Events::Rule", 1)
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(1 minute)",
            "State": "ENABLED",
            "Targets": Match.array_with(
                [
                    Match.object_like({"Arn": {"Fn::GetAtt": [scheduler_id, "Arn"]}}),
                    Match.object_like({"Arn": {"Fn::GetAtt": [reporter_id, "Arn"]}}),
                    Match.object_like({"Arn": {"Fn::GetAtt": [bouncer_id, "Arn"]}}),
                ]
            ),
        },
    )


def test_http_api_routes_to_the_api_function_with_access_logs(
    synthesized: Synthesized, template: Template
) -> None:
    template.has_resource_properties("AWS::ApiGatewayV2::Api", {"ProtocolType": "HTTP"})
    template.has_resource_properties("AWS::ApiGatewayV2::Route", {"RouteKey": "$default"})
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "$default",
            "AutoDeploy": True,
            "AccessLogSettings": {"DestinationArn": Match.any_value(), "Format": Match.any_value()},
        },
    )
    api_id, _ = _function(synthesized, "api")
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Integration",
        {"IntegrationType": "AWS_PROXY", "IntegrationUri": {"Fn::GetAtt": [api_id, "Arn"]}},
    )


# --- least privilege --------------------------------------------------------------------


def _table_id(synthesized: Synthesized, key: str) -> str:
    return _logical_id(
        synthesized, "AWS::DynamoDB::Table", TableName=TABLES[key].physical_name(PREFIX)
    )


def test_scheduler_reaches_only_the_messages_table_and_the_queues(
    synthesized: Synthesized,
) -> None:
    scheduler_id, _ = _function(synthesized, "scheduler")
    policy = _policy_of(synthesized, scheduler_id)
    assert _table_id(synthesized, "messages") in policy
    for key in TABLES.keys() - {"messages"}:
        assert _table_id(synthesized, key) not in policy, key
    assert "sqs:SendMessage" in policy
    assert "kms:" not in policy
    assert "s3:" not in policy


def test_reporter_sends_nothing_and_only_decrypts(synthesized: Synthesized) -> None:
    reporter_id, _ = _function(synthesized, "reporter")
    policy = _policy_of(synthesized, reporter_id)
    assert "sqs:SendMessage" not in policy
    assert "kms:Decrypt" in policy
    assert "kms:Encrypt" not in policy
    assert "s3:" not in policy


def _statements(synthesized: Synthesized, function_logical_id: str) -> list[dict[str, Any]]:
    document: dict[str, Any] = json.loads(_policy_of(synthesized, function_logical_id))
    return list(document["Statement"])


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _s3_resources(synthesized: Synthesized, name: str, action: str) -> list[str]:
    """The S3 object resources a function may `action`, as text."""
    function_id, _ = _function(synthesized, name)
    return [
        json.dumps(resource)
        for statement in _statements(synthesized, function_id)
        if action in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    ]


def test_sender_reads_payloads_and_allow_listed_buckets_only(synthesized: Synthesized) -> None:
    sender_id, _ = _function(synthesized, "sender")
    policy = _policy_of(synthesized, sender_id)
    assert "s3:GetObject" in policy
    assert f"arn:aws:s3:::{ATTACHMENT_BUCKET}/*" in policy
    assert "s3:DeleteObject" not in policy
    assert "kms:Decrypt" in policy
    assert "kms:Encrypt" not in policy
    assert "secretsmanager:" not in policy


def test_sender_writes_large_files_under_their_prefixes_only(synthesized: Synthesized) -> None:
    # The sender writes objects only where large files go: the payload bucket's
    # large-files/ttl-<days>d/ prefixes, and that part of an allow-listed tenant bucket
    written = _s3_resources(synthesized, "sender", "s3:PutObject")
    assert len(written) == 2
    assert any(r.endswith('/large-files/ttl-*"]]}') for r in written), written
    assert f'"arn:aws:s3:::{ATTACHMENT_BUCKET}/*large-files/ttl-*"' in written


def test_api_encrypts_and_reads_the_admin_token(synthesized: Synthesized) -> None:
    api_id, _ = _function(synthesized, "api")
    policy = _policy_of(synthesized, api_id)
    assert "kms:Encrypt" in policy
    assert "secretsmanager:GetSecretValue" in policy
    assert "s3:PutObject" in policy
    # of an allow-listed bucket, it may only read large files, to presign their downloads
    tenant_bucket = [
        statement
        for statement in _statements(synthesized, api_id)
        if f"arn:aws:s3:::{ATTACHMENT_BUCKET}" in json.dumps(statement["Resource"])
    ]
    assert [(s["Action"], s["Resource"]) for s in tenant_bucket] == [
        ("s3:GetObject", f"arn:aws:s3:::{ATTACHMENT_BUCKET}/*large-files/ttl-*")
    ]


def test_download_links_table_is_written_by_the_sender_and_read_by_the_api(
    synthesized: Synthesized,
) -> None:
    files_id = _table_id(synthesized, "files")

    def actions_on_files(name: str) -> set[str]:
        function_id, _ = _function(synthesized, name)
        return {
            action
            for statement in _statements(synthesized, function_id)
            if files_id in json.dumps(statement["Resource"])
            for action in _as_list(statement["Action"])
        }

    api = actions_on_files("api")
    assert "dynamodb:GetItem" in api
    assert not {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} & api
    sender = actions_on_files("sender")
    assert "dynamodb:PutItem" in sender
    assert not {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan"} & sender
    assert actions_on_files("reporter") == set()
    assert actions_on_files("scheduler") == set()
    assert actions_on_files("bouncer") == set()


def test_download_route_takes_no_authorizer(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Route",
        {"RouteKey": "GET /files/{token}", "AuthorizationType": "NONE"},
    )


def test_sender_builds_links_on_the_apis_own_endpoint(synthesized: Synthesized) -> None:
    _, props = _function(synthesized, "sender")
    base = props["Environment"]["Variables"]["MAILPROXY_PUBLIC_BASE_URL"]
    [api_id] = synthesized.resources("AWS::ApiGatewayV2::Api")
    assert base == {"Fn::GetAtt": [api_id, "ApiEndpoint"]}


# --- monitoring -------------------------------------------------------------------------


def test_alarms_cover_sender_queues_dlqs_and_api(synthesized: Synthesized) -> None:
    alarms = list(synthesized.resources("AWS::CloudWatch::Alarm").values())
    text = [json.dumps(a["Properties"]) for a in alarms]
    assert len(alarms) == 3 + 2 * len(QUEUES) + 1 + 1
    assert sum('"MetricName": "ApproximateAgeOfOldestMessage"' in t for t in text) == len(QUEUES)
    dlq_alarms = [t for t in text if '"MetricName": "ApproximateNumberOfMessagesVisible"' in t]
    assert len(dlq_alarms) == len(QUEUES)
    assert sum('"MetricName": "5xx"' in t for t in text) == 1
    # the sender's count and rate, the bouncer's failing
    assert sum('"MetricName": "Errors"' in t for t in text) == 3
    assert any('"Expression"' in t for t in text)
    # the share of messages that failed, from the sender's EMF totals over every tenant
    [rate] = [t for t in text if '"MetricName": "errors"' in t]
    assert '"Namespace": "MailProxy"' in rate
    assert '"MetricName": "sent"' in rate
    assert '"Threshold": 5' in rate
    synthesized_dashboards = synthesized.resources("AWS::CloudWatch::Dashboard")
    assert len(synthesized_dashboards) == 1


def test_bouncer_alarm_waits_for_15_minutes_of_failure(synthesized: Synthesized) -> None:
    alarms = [
        json.dumps(a["Properties"])
        for a in synthesized.resources("AWS::CloudWatch::Alarm").values()
    ]
    [failing] = [t for t in alarms if '"MetricName": "bounce_reader_failing"' in t]
    assert '"EvaluationPeriods": 3' in failing
    assert '"DatapointsToAlarm": 3' in failing
    assert '"Period": 300' in failing


# --- the bounce reader ------------------------------------------------------------------


def test_bouncer_runs_alone_and_is_not_retried(
    synthesized: Synthesized, template: Template
) -> None:
    bouncer_id, props = _function(synthesized, "bouncer")
    assert props["ReservedConcurrentExecutions"] == 1
    assert props["Timeout"] == 300
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"FunctionName": {"Ref": bouncer_id}, "MaximumRetryAttempts": 0},
    )


def test_bouncer_reads_and_records_bounces_only(synthesized: Synthesized) -> None:
    bouncer_id, _ = _function(synthesized, "bouncer")
    policy = _policy_of(synthesized, bouncer_id)
    assert "kms:Decrypt" in policy
    assert "kms:Encrypt" not in policy
    assert "s3:" not in policy
    assert "sqs:" not in policy
    assert "dynamodb:DeleteItem" not in policy

    def actions_on(table: str) -> set[str]:
        table_id = _table_id(synthesized, table)
        return {
            action
            for statement in _statements(synthesized, bouncer_id)
            if table_id in json.dumps(statement["Resource"])
            for action in _as_list(statement["Action"])
        }

    assert actions_on("settings") == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert actions_on("tenants") == {"dynamodb:Scan"}
    assert actions_on("messages") == {"dynamodb:BatchGetItem", "dynamodb:UpdateItem"}
    assert actions_on("events") == {"dynamodb:Query", "dynamodb:PutItem"}
    assert actions_on("accounts") == set()


# --- the whole template -----------------------------------------------------------------


def test_cdk_nag_aws_solutions_has_no_unacknowledged_finding(synthesized: Synthesized) -> None:
    assert synthesized.error is None, synthesized.error
    report = synthesized.outdir / "validation-report.json"
    if report.exists():
        plugins = json.loads(report.read_text())["pluginReports"]
        assert [p for p in plugins if p["conclusion"] != "success"] == []


def test_every_acknowledged_finding_has_a_reason(synthesized: Synthesized) -> None:
    acknowledged = [
        rule
        for resource in synthesized.template["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert acknowledged, "no acknowledged finding written to the template"
    for rule in acknowledged:
        assert rule["id"].startswith("AwsSolutions-")
        assert len(rule.get("reason", "")) >= 40, rule


def test_cfn_lint_finds_no_error(synthesized: Synthesized) -> None:
    exe = Path(sys.executable).with_name("cfn-lint")
    command = [str(exe) if exe.exists() else shutil.which("cfn-lint") or "cfn-lint"]
    done = subprocess.run(
        [
            *command,
            "--non-zero-exit-code",
            "error",
            str(synthesized.outdir / "MailProxy.template.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_synth_time_is_reported(synthesized: Synthesized) -> None:
    # Not a timed assertion: printed with -s or on failure, so the cost stays visible.
    print(f"CDK synth (with cdk-nag): {synthesized.seconds:.1f} s")
    assert synthesized.seconds > 0
