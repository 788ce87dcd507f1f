"""DynamoDB tables, the payload bucket, the secrets key and the admin token secret."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs.nag import acknowledge
from infra.resources import BUCKETS, KEYS, TABLES, TableSpec

# Bodies and attachments too big for an item live here only as long as a message can wait.
PAYLOAD_EXPIRY_DAYS = 8


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
                lifecycle_rules=[
                    s3.LifecycleRule(
                        id="expire-payloads",
                        expiration=Duration.days(PAYLOAD_EXPIRY_DAYS),
                        abort_incomplete_multipart_upload_after=Duration.days(1),
                    )
                ],
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
                "written and read only by the proxy's own roles, with objects expiring after "
                f"{PAYLOAD_EXPIRY_DAYS} days; CloudTrail data events audit it if required.",
            )
        acknowledge(
            self.admin_token,
            "AwsSolutions-SMG4",
            "The admin token is an operator's bearer token with no backing service to "
            "rotate against; it is rotated by hand (put-secret-value) and read on each cold start.",
        )

    def table_logical_ids(self, keys: list[str] | None = None) -> list[str]:
        """The CloudFormation logical ids of tables (all by default) that have indexes."""
        from aws_cdk import Stack

        stack = Stack.of(self)
        return [
            stack.get_logical_id(table.node.default_child)  # type: ignore[arg-type]
            for key, table in self.tables.items()
            if (keys is None or key in keys) and TABLES[key].indexes
        ]

    def payloads_logical_id(self) -> str:
        from aws_cdk import Stack

        return Stack.of(self).get_logical_id(self.payloads.node.default_child)  # type: ignore[arg-type]

    def grant_payloads(self, grantee: iam.IGrantable, actions: list[str]) -> None:
        """Object-level access to the payload bucket, only the actions named."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=actions, resources=[self.payloads.arn_for_objects("*")])
        )

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
