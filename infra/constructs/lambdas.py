"""What every Lambda of the proxy shares: runtime, architecture, layers, logs, settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.nag import acknowledge
from infra.constructs.queues import Queues
from infra.constructs.storage import LARGE_FILE_KEYS, Storage
from infra.layer_bundle import dependencies_layer_dir
from infra.resources import LAMBDA_ENVIRONMENT

ROOT = Path(__file__).resolve().parent.parent.parent
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
HANDLER = "handler.lambda_handler"
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "**/*.egg-info"]
METRICS_NAMESPACE = "MailProxy"


class Layers(Construct):
    """The shared package (layers/mailproxy zipped as it is) and its third-party dependencies
    (pip-installed locally for Linux arm64, no Docker)."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.shared = lambda_.LayerVersion(
            self,
            "Shared",
            code=lambda_.Code.from_asset(
                str(ROOT / "layers" / "mailproxy"), exclude=ASSET_EXCLUDES
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="mailproxy: the shared package",
        )
        self.dependencies = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(str(dependencies_layer_dir())),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="mailproxy: third-party dependencies (pyproject.toml)",
        )

    @property
    def all(self) -> list[lambda_.ILayerVersion]:
        return [self.dependencies, self.shared]


class MailProxyFunction(Construct):
    """One function from functions/<name>/handler.py, with its own log group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        prefix: str,
        layers: Layers,
        environment: dict[str, str],
        timeout: Duration,
        memory_size: int = 512,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=f"{prefix}-{name}",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(ROOT / "functions" / name), exclude=ASSET_EXCLUDES),
            layers=layers.all,
            timeout=timeout,
            memory_size=memory_size,
            reserved_concurrent_executions=reserved_concurrency,
            log_group=self.log_group,
            tracing=lambda_.Tracing.DISABLED,
            environment={
                **LAMBDA_ENVIRONMENT,
                "POWERTOOLS_SERVICE_NAME": f"mailproxy-{name}",
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                **environment,
            },
        )
        acknowledge(
            self.function,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "The AWS managed basic execution policy only lets the function write its own "
            "CloudWatch Logs; every data permission is a least-privilege grant.",
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Python 3.12 on purpose: the dependencies layer is built for cp312 arm64 wheels "
            "and the code is tested on it; moving runtime is a deliberate, tested change.",
        )

    def acknowledge_payload_objects(self, storage: Storage) -> None:
        acknowledge(
            self.function,
            f"AwsSolutions-IAM5[Resource::<{storage.payloads_logical_id()}.Arn>/*]",
            "Payload objects are keyed per message and unknown in advance; the grant names "
            "only the actions the function uses, on the proxy's own payload bucket.",
        )

    def acknowledge_large_file_objects(self, storage: Storage) -> None:
        acknowledge(
            self.function,
            f"AwsSolutions-IAM5[Resource::<{storage.payloads_logical_id()}.Arn>/{LARGE_FILE_KEYS}]",
            "Large attachments are keyed by lifetime, tenant and a random id, unknown in "
            "advance; the grant covers only the large-files/ttl-<days>d/ prefixes of the "
            "proxy's own payload bucket.",
        )


@dataclass(frozen=True)
class Shared:
    """What the stack hands every function construct: the resources the grants name."""

    prefix: str
    layers: Layers
    storage: Storage
    queues: Queues
    # Buckets that s3:// attachments may be read from (context s3AttachmentBuckets).
    attachment_buckets: list[str] = field(default_factory=list)


class ProxyFunction(Construct):
    """One of the proxy's functions: a MailProxyFunction at "Handler" (which keeps the
    logical IDs), then what the subclass grants it and feeds it with (`wire`)."""

    NAME: ClassVar[str]
    TIMEOUT: ClassVar[Duration]
    MEMORY_SIZE: ClassVar[int] = 512
    RESERVED_CONCURRENCY: ClassVar[int | None] = None

    def __init__(
        self, scope: Construct, construct_id: str, *, shared: Shared, environment: dict[str, str]
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = MailProxyFunction(
            self,
            "Handler",
            name=self.NAME,
            prefix=shared.prefix,
            layers=shared.layers,
            environment=environment,
            timeout=self.TIMEOUT,
            memory_size=self.MEMORY_SIZE,
            reserved_concurrency=self.RESERVED_CONCURRENCY,
        )
        self.wire(self.handler.function, shared)

    def wire(self, fn: lambda_.Function, shared: Shared) -> None:
        """Grant `fn` what it uses, and add its event sources."""
        raise NotImplementedError
