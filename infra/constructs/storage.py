"""DynamoDB tables, the payload bucket, the secrets key and the admin token secret."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs.nag import acknowledge
from infra.resources import (
    BUCKET_LIFECYCLE,
    BUCKETS,
    KEYS,
    PAYLOAD_EXPIRY_DAYS,
    TABLES,
    ExpiryRule,
    TableSpec,
)
from mailproxy.domain.large_files import LARGE_FILES_PREFIX, MAX_FILE_TTL_DAYS

__all__ = [
    "COMMAND_LOG",
    "FILE_LINKS",
    "LARGE_FILE_KEYS",
    "PAYLOAD_EXPIRY_DAYS",
    "READ_ACTIONS",
    "TENANT_LARGE_FILE_KEYS",
    "WRITE_ACTIONS",
    "Storage",
]

# The table of large attachments' download links: written by the sender, read by the API,
# and no business of the other functions.
FILE_LINKS = "files"
# The command log: the API's own audit trail, no business of the other functions.
COMMAND_LOG = "commands"
# Large files' keys: in the payload bucket, and in an allow-listed tenant bucket (under the
# tenant's storage_url prefix, unknown in advance).
LARGE_FILE_KEYS = f"{LARGE_FILES_PREFIX}/ttl-*"
TENANT_LARGE_FILE_KEYS = f"*{LARGE_FILES_PREFIX}/ttl-*"


# What the store does to items (mailproxy/store/): no function describes a table, reads a
# stream or checks a condition outside a write.
READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan")
WRITE_ACTIONS = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
)


def _lifecycle_rule(rule: ExpiryRule) -> s3.LifecycleRule:
    return s3.LifecycleRule(
        id=rule.rule_id,
        prefix=rule.prefix,
        expiration=Duration.days(rule.days) if rule.days else None,
        abort_incomplete_multipart_upload_after=(
            Duration.days(1) if rule.abort_incomplete_uploads else None
        ),
    )


def _attribute(name: str, key_types: dict[str, str]) -> dynamodb.Attribute:
    kind = key_types.get(name, "S")
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType(_TYPES[kind]))


_TYPES = {"S": "STRING", "N": "NUMBER", "B": "BINARY"}


class Storage(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, prefix: str, removal_policy: RemovalPolicy
    ) -> None:
        super().__init__(scope, construct_id)
        self.tables: dict[str, dynamodb.Table] = {
            key: self._table(spec, prefix, removal_policy) for key, spec in TABLES.items()
        }
        self.keys: dict[str, kms.Key] = {
            role: kms.Key(
                self,
                f"Key-{role}",
                alias=f"alias/{prefix}-{logical}",
                description=f"{prefix}: {role} (SMTP passwords, tenants' client credentials)",
                enable_key_rotation=True,
                removal_policy=removal_policy,
            )
            for role, logical in KEYS.items()
        }
        self.buckets: dict[str, s3.Bucket] = {
            role: s3.Bucket(
                self,
                f"Bucket-{logical}",
                encryption=s3.BucketEncryption.S3_MANAGED,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                enforce_ssl=True,
                versioned=False,
                lifecycle_rules=[_lifecycle_rule(rule) for rule in BUCKET_LIFECYCLE[role]],
                removal_policy=removal_policy,
                auto_delete_objects=False,
            )
            for role, logical in BUCKETS.items()
        }
        self.admin_token = secretsmanager.Secret(
            self,
            "AdminToken",
            secret_name=f"{prefix}/admin-token",
            description=f"{prefix}: the admin bearer token of the HTTP API",
            encryption_key=self.keys["secrets"],
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=48, exclude_punctuation=True
            ),
            removal_policy=removal_policy,
        )

        for bucket in self.buckets.values():
            acknowledge(
                bucket,
                "AwsSolutions-S1",
                "The payload bucket is private (public access blocked, TLS only) and "
                "written and read only by the proxy's own roles, with payloads expiring after "
                f"{PAYLOAD_EXPIRY_DAYS} days and large files with their links (at most "
                f"{MAX_FILE_TTL_DAYS} days); CloudTrail data events audit it if required.",
            )
        acknowledge(
            self.admin_token,
            "AwsSolutions-SMG4",
            "The admin token is an operator's bearer token with no backing service to "
            "rotate against; it is rotated by hand (put-secret-value) and read on each cold start.",
        )

    def payloads_logical_id(self) -> str:
        return Stack.of(self).get_logical_id(self.payloads.node.default_child)  # type: ignore[arg-type]

    def grant_payloads(
        self, grantee: iam.IGrantable, actions: list[str], key_pattern: str = "*"
    ) -> None:
        """Object-level access to the payload bucket, only the actions named, on the keys
        matching `key_pattern`."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=actions, resources=[self.payloads.arn_for_objects(key_pattern)]
            )
        )

    def grant_items(
        self,
        grantee: iam.IGrantable,
        keys: list[str],
        actions: tuple[str, ...],
        queried_indexes: tuple[str, ...] = (),
    ) -> None:
        """Only `actions` on the items of the tables named by `keys`, and Query on the
        indexes of the tables named by `queried_indexes`, each index by its name."""
        principal = grantee.grant_principal
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(actions), resources=[self.tables[key].table_arn for key in keys]
            )
        )
        if queried_indexes:
            principal.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["dynamodb:Query"],
                    resources=[
                        f"{self.tables[key].table_arn}/index/{index.name}"
                        for key in queried_indexes
                        for index in TABLES[key].indexes
                    ],
                )
            )

    def grant_admin_token(self, grantee: iam.IGrantable) -> None:
        """Reading the admin token: its value (not its description), decrypted by the secrets
        key only through Secrets Manager."""
        principal = grantee.grant_principal
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"], resources=[self.admin_token.secret_arn]
            )
        )
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[self.secrets_key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"secretsmanager.{Stack.of(self).region}.amazonaws.com"
                    }
                },
            )
        )

    @property
    def file_links(self) -> dynamodb.Table:
        return self.tables[FILE_LINKS]

    @property
    def payloads(self) -> s3.Bucket:
        return self.buckets["payloads"]

    @property
    def secrets_key(self) -> kms.Key:
        return self.keys["secrets"]

    def _table(self, spec: TableSpec, prefix: str, removal_policy: RemovalPolicy) -> dynamodb.Table:
        key_types: dict[str, str] = {}
        for index in spec.indexes:
            key_types.update(index.key_types)
        table = dynamodb.Table(
            self,
            f"Table-{spec.logical_name}",
            table_name=spec.physical_name(prefix),
            partition_key=_attribute(spec.partition_key, key_types),
            sort_key=_attribute(spec.sort_key, key_types) if spec.sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=spec.ttl_attribute,
            removal_policy=removal_policy,
            deletion_protection=removal_policy == RemovalPolicy.RETAIN,
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_attribute(index.partition_key, index.key_types),
                sort_key=(_attribute(index.sort_key, index.key_types) if index.sort_key else None),
                projection_type=dynamodb.ProjectionType.ALL,
            )
        return table
