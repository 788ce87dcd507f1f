"""The HTTP API: every route to the api Lambda, a default stage with access logs."""

from __future__ import annotations

import jsii
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.lambdas import LOG_RETENTION, ProxyFunction, Shared
from infra.constructs.nag import acknowledge
from infra.constructs.storage import (
    COMMAND_LOG,
    FILE_LINKS,
    READ_ACTIONS,
    TENANT_LARGE_FILE_KEYS,
    WRITE_ACTIONS,
)

# The tables the API reads and writes: all but the rate-limit counters (the sender's) and the
# download links (only looked up).
API_TABLES = ["tenants", "accounts", "messages", "bodies", "events", "metrics"]
# Large attachments' download links: GET /files/{token}, no API token (the link is the
# credential), answered by the api Lambda with a redirect to a presigned S3 URL.
DOWNLOAD_ROUTE = "/files/{token}"


@jsii.implements(apigwv2.IAccessLogSettings)
class AccessLogs:
    """A stage's access log settings: a destination, the default format."""

    def __init__(self, destination: apigwv2.IAccessLogDestination) -> None:
        self._destination = destination

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> None:
        return None


# API Gateway waits at most 30 seconds for an integration.
API_TIMEOUT = Duration.seconds(29)


class Api(ProxyFunction):
    NAME = "api"
    TIMEOUT = API_TIMEOUT
    MEMORY_SIZE = 1024

    def __init__(
        self, scope: Construct, construct_id: str, *, shared: Shared, environment: dict[str, str]
    ) -> None:
        super().__init__(scope, construct_id, shared=shared, environment=environment)
        fn = self.handler.function
        prefix = shared.prefix

        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY
        )
        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=prefix,
            description=f"{prefix}: the HTTP API of SPEC.md",
            default_integration=integrations.HttpLambdaIntegration("Api", fn),
            create_default_stage=False,
        )
        # The $default route serves this path too; a route of its own says, in the API's
        # definition, that it takes no authorizer (and keeps it reachable if $default ever
        # gets one).
        self.download_routes = self.http_api.add_routes(
            path=DOWNLOAD_ROUTE,
            methods=[apigwv2.HttpMethod.GET],
            integration=integrations.HttpLambdaIntegration("Downloads", fn),
            authorizer=apigwv2.HttpNoneAuthorizer(),
        )
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.http_api,
            auto_deploy=True,
            access_log_settings=AccessLogs(apigwv2.LogGroupLogDestination(self.access_logs)),
        )
        acknowledge(
            self.http_api,
            "AwsSolutions-APIG4",
            "Every route authenticates in the api Lambda (admin token or a tenant's "
            "token, compared by SHA-256 hash), as SPEC.md defines; a gateway authorizer "
            "would duplicate that check and add a call per request. GET /files/{token} "
            "takes no token on purpose: its 256-bit token, checked by hash, is the credential.",
        )

    @property
    def url(self) -> str:
        return self.stage.url

    @property
    def endpoint(self) -> str:
        """The API's base URL without a trailing slash (the default stage has no path)."""
        return self.http_api.api_endpoint

    def wire(self, fn: lambda_.Function, shared: Shared) -> None:
        storage, queues = shared.storage, shared.queues
        # Tenants by API key, accounts by id, held messages by their shard.
        storage.grant_items(
            fn,
            API_TABLES,
            READ_ACTIONS + WRITE_ACTIONS,
            queried_indexes=("tenants", "accounts", "messages"),
        )
        # Download links are only looked up here (the sender writes them).
        storage.grant_items(fn, [FILE_LINKS], ("dynamodb:GetItem",))
        # The command log: written once per state-changing call, read by GET /command-log.
        storage.grant_items(
            fn,
            [COMMAND_LOG],
            ("dynamodb:PutItem", "dynamodb:Query"),
            queried_indexes=(COMMAND_LOG,),
        )
        for queue in queues.all_queues:  # messages queued; run-now wakes the reporter
            queue.grant(fn, "sqs:SendMessage")
        storage.secrets_key.grant(fn, "kms:Encrypt")  # SMTP passwords, client credentials
        storage.grant_admin_token(fn)
        # Large bodies are written to the payload bucket, read back, and removed by cleanup;
        # GetObject also signs the download URLs of large files kept there.
        storage.grant_payloads(fn, ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"])
        # A presigned URL works only if its signer may read the object: large files kept in
        # allow-listed tenant buckets, under their large-files/ttl-<days>d/ part only.
        for name in shared.attachment_buckets:
            resource = f"arn:aws:s3:::{name}/{TENANT_LARGE_FILE_KEYS}"
            fn.add_to_role_policy(
                iam.PolicyStatement(actions=["s3:GetObject"], resources=[resource])
            )
            acknowledge(
                fn,
                f"AwsSolutions-IAM5[Resource::{resource}]",
                f"Download links of large files kept in {name} (allow-listed) are presigned "
                "by this function; read only, and only large-files/ttl-<days>d/ keys.",
            )
        self.handler.acknowledge_payload_objects(storage)
