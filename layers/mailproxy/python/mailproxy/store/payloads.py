"""The S3 payload bucket: where a message too large for one DynamoDB item keeps its payload."""

from __future__ import annotations

import json
from typing import Any

# Every payload object lives under this prefix (the bucket's lifecycle rule for payloads).
PAYLOADS_PREFIX = "payloads/"


class PayloadBucket:
    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket

    def put(self, key: str, payload: dict[str, Any]) -> None:
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=json.dumps(payload, separators=(",", ":")).encode(),
            ContentType="application/json",
        )

    def get(self, key: str) -> dict[str, Any]:
        body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        loaded: dict[str, Any] = json.loads(body)
        return loaded

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self._bucket, Key=key)


def payload_key(tenant_id: str, message_id: str, version: str) -> str:
    return f"{PAYLOADS_PREFIX}{tenant_id}/{message_id}/{version}.json"
