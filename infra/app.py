"""The CDK app: the whole proxy as one stack (`cdk.json` runs `python -m infra.app`).

    make synth    # offline, no AWS credentials: the template lands in cdk.out/
    make deploy   # cdk deploy; needs AWS credentials, and `cdk bootstrap` done once per
                  # account and region (CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION or a profile)

Needs: Python 3.11+ with `pip install -e '.[infra]'`, Node.js with the pinned CDK CLI from
package.json (`npm ci`), pip access to PyPI the first time (the dependencies layer is built
locally for Linux arm64, no Docker, and cached under cdk.out/.layer-cache).

Context (`-c key=value`): `prefix` (physical names, default "mailproxy"), `stackName`
(default "MailProxy"), `s3AttachmentBuckets` (comma-separated buckets that s3:// attachments
may be read from), `allowPrivateUrls` (let tenants' URLs reach private addresses),
`publicBaseUrl` (the API's URL as clients reach it, e.g. a custom domain, for large files'
download links; default: the HTTP API's own endpoint),
`destroyOnRemoval` (tables, bucket, key and secret deleted with the stack; default: retained).

Every synth runs cdk-nag's AwsSolutions checks; each acknowledged finding carries its reason.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from aws_cdk import App, CfnOutput, Environment, RemovalPolicy, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from infra.constructs.api import Api
from infra.constructs.bouncer import Bouncer
from infra.constructs.lambdas import Layers, Shared
from infra.constructs.monitoring import Monitoring
from infra.constructs.queues import Queues
from infra.constructs.reporter import REPORTER_TIMEOUT, Reporter
from infra.constructs.scheduler import MinuteTick, Scheduler
from infra.constructs.sender import Sender
from infra.constructs.storage import Storage
from infra.resources import QUEUES, resource_names
from mailproxy.config import (
    ADMIN_TOKEN_SECRET_ENV,
    ALLOW_PRIVATE_URLS_ENV,
    LEASE_SECONDS_ENV,
    PUBLIC_BASE_URL_ENV,
    RESOURCES_ENV,
    S3_ATTACHMENT_BUCKETS_ENV,
)

DEFAULT_PREFIX = "mailproxy"
DEFAULT_STACK_NAME = "MailProxy"


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _names(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value or "").split(",") if v.strip()]


class MailProxyStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        attachment_buckets: list[str] | None = None,
        allow_private_urls: bool = False,
        public_base_url: str | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        attachment_buckets = attachment_buckets or []
        self.storage = Storage(self, "Storage", prefix=prefix, removal_policy=removal_policy)
        self.queues = Queues(self, "Queues", prefix=prefix, reporter_timeout=REPORTER_TIMEOUT)
        self.layers = Layers(self, "Layers")

        names = resource_names(
            prefix,
            self.queues.urls(),
            {role: bucket.bucket_name for role, bucket in self.storage.buckets.items()},
            {role: key.key_arn for role, key in self.storage.keys.items()},
        )
        # Tokens inside: CloudFormation resolves the queue URLs, bucket and key at deploy.
        environment = {
            RESOURCES_ENV: self.to_json_string(dataclasses.asdict(names)),
            # A sender owns a claimed message for as long as SQS hides it.
            LEASE_SECONDS_ENV: str(
                min(spec.visibility_timeout_seconds for spec in QUEUES.values())
            ),
            S3_ATTACHMENT_BUCKETS_ENV: ",".join(attachment_buckets),
            ALLOW_PRIVATE_URLS_ENV: "true" if allow_private_urls else "false",
        }
        shared = Shared(prefix, self.layers, self.storage, self.queues, attachment_buckets)
        self.api = Api(
            self,
            "Api",
            environment={
                **environment,
                ADMIN_TOKEN_SECRET_ENV: self.storage.admin_token.secret_arn,
            },
            shared=shared,
        )
        self.sender = Sender(
            self,
            "Sender",
            environment={
                **environment,
                # Download links in the mail point at the API itself (GET /files/{token}).
                PUBLIC_BASE_URL_ENV: public_base_url or self.api.endpoint,
            },
            shared=shared,
        )
        self.scheduler = Scheduler(self, "Scheduler", shared=shared, environment=environment)
        self.reporter = Reporter(self, "Reporter", shared=shared, environment=environment)
        self.bouncer = Bouncer(self, "Bouncer", shared=shared, environment=environment)
        self.bouncer.grant_instance_routes(self.api.handler.function, shared.storage)
        self.tick = MinuteTick(
            self,
            "Tick",
            functions=[
                self.scheduler.handler.function,
                self.reporter.handler.function,
                self.bouncer.handler.function,
            ],
        )
        self.functions = {
            "api": self.api.handler.function,
            "sender": self.sender.handler.function,
            "scheduler": self.scheduler.handler.function,
            "reporter": self.reporter.handler.function,
            "bouncer": self.bouncer.handler.function,
        }
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            prefix=prefix,
            functions=self.functions,
            sender=self.sender.handler.function,
            bouncer=self.bouncer.handler.function,
            queues=self.queues,
            http_api=self.api.http_api,
        )
        CfnOutput(self, "ApiUrl", value=self.api.url, description="The proxy's HTTP API")
        CfnOutput(
            self,
            "AdminTokenSecretArn",
            value=self.storage.admin_token.secret_arn,
            description="Secrets Manager secret holding the admin token",
        )
        CfnOutput(self, "DashboardName", value=prefix, description="CloudWatch dashboard")


def build_app(context: dict[str, Any] | None = None, outdir: str | None = None) -> App:
    app = App(context=context, outdir=outdir)
    ctx = app.node.try_get_context
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEFAULT_REGION")
    MailProxyStack(
        app,
        str(ctx("stackName") or DEFAULT_STACK_NAME),
        prefix=str(ctx("prefix") or DEFAULT_PREFIX),
        attachment_buckets=_names(ctx("s3AttachmentBuckets")),
        allow_private_urls=_flag(ctx("allowPrivateUrls")),
        public_base_url=str(ctx("publicBaseUrl") or "").strip().rstrip("/") or None,
        removal_policy=(
            RemovalPolicy.DESTROY if _flag(ctx("destroyOnRemoval")) else RemovalPolicy.RETAIN
        ),
        env=Environment(account=account, region=region) if account and region else None,
        description="mailproxy: a serverless email proxy",
    )
    # The acknowledged findings are also written to the template (Metadata.cdk_nag), for audit.
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True)
    )
    return app


def main() -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
