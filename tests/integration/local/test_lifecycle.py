"""Local mode's stand-in for S3 lifecycle expiration (moto keeps objects forever): against
moto in-process, objects go when the rules of infra/resources.py say, by the given clock."""

from __future__ import annotations

import time
from typing import Any

import boto3

from infra.local.lifecycle import expire_objects
from infra.resources import BUCKET_LIFECYCLE, ExpiryRule
from mailproxy.domain.large_files import ttl_prefix

DAY = 86_400


def keys(bucket: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_objects_expire_after_their_prefixs_days_and_others_stay(aws: Any) -> None:
    # Given the payload bucket with a payload, large files of 2 and 30 days, and another key
    bucket = aws.buckets["payloads"]
    s3 = boto3.client("s3")
    written = {
        "payloads/acme/m1/v1.json": b"{}",
        f"{ttl_prefix(2)}acme/a": b"two days",
        f"{ttl_prefix(30)}acme/b": b"thirty days",
        "elsewhere/kept": b"no rule",
    }
    for key, body in written.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    now = time.time()
    # When a day has passed / Then nothing has gone
    assert expire_objects(s3, aws.buckets, now + DAY) == 0
    # When two days have passed / Then the 2-day file is gone, the rest stays
    assert expire_objects(s3, aws.buckets, now + 2 * DAY + 60) == 1
    assert f"{ttl_prefix(2)}acme/a" not in keys(bucket)
    # When eight days have passed / Then the payload is gone too
    assert expire_objects(s3, aws.buckets, now + 8 * DAY + 60) == 1
    # When thirty days have passed / Then only the key no rule covers is left
    assert expire_objects(s3, aws.buckets, now + 30 * DAY + 60) == 1
    assert keys(bucket) == ["elsewhere/kept"]


def test_the_shortest_applicable_rule_wins() -> None:
    from infra.local.lifecycle import Expiries

    rules = (
        ExpiryRule("all", None, 90),
        ExpiryRule("some", "a/b/", 5),
        ExpiryRule("odd", "a/b/c-", 3),
        ExpiryRule("abort", None, abort_incomplete_uploads=True),
    )
    expiries = Expiries(rules)
    assert expiries.days("x/y") == 90
    assert expiries.days("a/b/z") == 5
    assert expiries.days("a/b/c-1") == 3
    assert Expiries((ExpiryRule("abort", None, abort_incomplete_uploads=True),)).days("k") is None
    assert Expiries(BUCKET_LIFECYCLE["payloads"]).days(f"{ttl_prefix(365)}t/x") == 365
