"""S3 lifecycle expiration, which moto does not apply: on each minute tick, the objects that
the rules of infra/resources.py (the ones the CDK puts on the bucket) say have expired, by the
proxy's clock, are deleted, as S3 would.

The rules are read from infra/resources.py rather than put on moto's bucket: moto takes half
a second to parse a configuration of hundreds of rules, paid by every test that provisions.
Unlike S3, which rounds an expiry up to the next midnight UTC and may take a day more to act,
local mode deletes an object at the first tick after exactly its rule's number of days.
"""

from __future__ import annotations

from typing import Any

from infra.resources import BUCKET_LIFECYCLE, ExpiryRule

DAY_SECONDS = 86_400
_DELETE_BATCH = 1000  # DeleteObjects takes at most this many keys


class Expiries:
    """A bucket's expiring rules, looked up per key by the key's own "/"-prefixes (the rules
    of infra/resources.py end at a "/"), so a tick costs per object, not per object and rule."""

    def __init__(self, rules: tuple[ExpiryRule, ...]) -> None:
        self.at_slash: dict[str, int] = {}
        self.others: list[tuple[str, int]] = []
        for rule in rules:
            if not rule.days:
                continue
            prefix = rule.prefix or ""
            if prefix == "" or prefix.endswith("/"):
                self.at_slash[prefix] = min(rule.days, self.at_slash.get(prefix, rule.days))
            else:
                self.others.append((prefix, rule.days))

    def __bool__(self) -> bool:
        return bool(self.at_slash or self.others)

    def days(self, key: str) -> int | None:
        """After how many days the object expires: the shortest rule that applies, as in S3."""
        parts = key.split("/")[:-1]
        candidates = ["", *("/".join(parts[: i + 1]) + "/" for i in range(len(parts)))]
        found = [self.at_slash[p] for p in candidates if p in self.at_slash]
        found += [days for prefix, days in self.others if key.startswith(prefix)]
        return min(found) if found else None


def expire_objects(s3: Any, buckets: dict[str, str], now: float) -> int:
    """Delete the objects of the proxy's buckets (role -> name) whose lifecycle expiry is past
    `now`; how many were deleted."""
    removed = 0
    for role, bucket in buckets.items():
        rules = Expiries(BUCKET_LIFECYCLE.get(role, ()))
        if not rules:
            continue
        expired: list[dict[str, str]] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                days = rules.days(item["Key"])
                if days and item["LastModified"].timestamp() + days * DAY_SECONDS <= now:
                    expired.append({"Key": item["Key"]})
        for start in range(0, len(expired), _DELETE_BATCH):
            s3.delete_objects(
                Bucket=bucket, Delete={"Objects": expired[start : start + _DELETE_BATCH]}
            )
        removed += len(expired)
    return removed
