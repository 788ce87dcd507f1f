"""Create, in whatever AWS endpoint boto3 points at, the resources that infra/resources.py
describes (local mode and tests; on AWS the CDK stack does this)."""

from __future__ import annotations

import json
from typing import Any

from infra.resources import (
    BUCKETS,
    KEYS,
    QUEUES,
    TABLES,
    WAKEUPS_QUEUE,
    TableSpec,
    resource_names,
)
from mailproxy.config import ResourceNames


def _table_definition(name: str, spec: TableSpec) -> dict[str, Any]:
    def key_schema(partition: str, sort: str | None) -> list[dict[str, str]]:
        schema = [{"AttributeName": partition, "KeyType": "HASH"}]
        if sort:
            schema.append({"AttributeName": sort, "KeyType": "RANGE"})
        return schema

    attributes = {spec.partition_key, *([spec.sort_key] if spec.sort_key else [])}
    for index in spec.indexes:
        attributes |= {index.partition_key, *([index.sort_key] if index.sort_key else [])}
    types = {key: kind for index in spec.indexes for key, kind in index.key_types.items()}
    definition: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": key_schema(spec.partition_key, spec.sort_key),
        "AttributeDefinitions": [
            {"AttributeName": attribute, "AttributeType": types.get(attribute, "S")}
            for attribute in sorted(attributes)
        ],
    }
    if spec.indexes:
        definition["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": key_schema(index.partition_key, index.sort_key),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in spec.indexes
        ]
    return definition


def provision(session: Any, prefix: str = "mailproxy") -> ResourceNames:
    """Create every table, queue (with its dead-letter queue), bucket and key; idempotent."""
    dynamodb = session.client("dynamodb")
    sqs = session.client("sqs")
    s3 = session.client("s3")
    existing = set(dynamodb.list_tables().get("TableNames", []))
    for spec in TABLES.values():
        name = spec.physical_name(prefix)
        if name not in existing:
            dynamodb.create_table(**_table_definition(name, spec))
        if spec.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
            )
    queue_urls: dict[Any, str] = {
        WAKEUPS_QUEUE: sqs.create_queue(QueueName=f"{prefix}-{WAKEUPS_QUEUE}")["QueueUrl"]
    }
    for priority, queue in QUEUES.items():
        dlq_url = sqs.create_queue(QueueName=queue.dlq_physical_name(prefix))["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        queue_urls[priority] = sqs.create_queue(
            QueueName=queue.physical_name(prefix),
            Attributes={
                "VisibilityTimeout": str(queue.visibility_timeout_seconds),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.max_receive_count}
                ),
            },
        )["QueueUrl"]
    buckets = {}
    for key, logical in BUCKETS.items():
        name = f"{prefix}-{logical}"
        s3.create_bucket(Bucket=name)
        buckets[key] = name
    kms = session.client("kms")
    keys = {}
    for role, logical in KEYS.items():
        alias = f"alias/{prefix}-{logical}"
        known = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
        if known.get(alias):
            keys[role] = str(known[alias])
            continue
        key_id = kms.create_key(Description=f"{prefix} {logical}")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
        keys[role] = key_id
    return resource_names(prefix, queue_urls, buckets, keys)
