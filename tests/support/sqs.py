"""Looking into the (moto) priority queues from a test."""

from __future__ import annotations

from typing import Any

import boto3

PRIORITY_LABELS = ("immediate", "high", "medium", "low")


def queue_depths(queue_urls: dict[str, str]) -> dict[str, int]:
    """How many references each priority queue holds, visible or delayed."""
    sqs = boto3.client("sqs")
    depths = {}
    for label, url in queue_urls.items():
        if label not in PRIORITY_LABELS:
            continue
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
        )["Attributes"]
        depths[label] = int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesDelayed"]
        )
    return depths


def receive_all(queue_url: str, *, hide: bool = True) -> list[dict[str, Any]]:
    """Every visible record of a queue; with hide=False they stay visible to the next reader."""
    sqs = boto3.client("sqs")
    records: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=360 if hide else 0,
        ).get("Messages", [])
        if not batch:
            return records
        records += batch
        if not hide:
            return records


def queue_arn(queue_url: str) -> str:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]
    return str(attributes["QueueArn"])
