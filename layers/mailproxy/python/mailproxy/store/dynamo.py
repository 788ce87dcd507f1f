"""The store: every read and write of tenants, accounts, messages and events, in one object
built once per environment. The pynamodb models stay inside this package."""

from __future__ import annotations

from typing import Any

from mailproxy.config import ResourceNames
from mailproxy.store.batch_reads import BatchReads
from mailproxy.store.bounces import BounceRecords
from mailproxy.store.files import FileRecords
from mailproxy.store.metrics import MetricRecords
from mailproxy.store.models import bind_models
from mailproxy.store.payloads import PayloadBucket
from mailproxy.store.reports import ReportRecords
from mailproxy.store.settings import SettingsRecords


class Store(BounceRecords, BatchReads, ReportRecords, MetricRecords, FileRecords, SettingsRecords):
    def __init__(self, resources: ResourceNames, s3_client: Any | None = None) -> None:
        self._m = bind_models(
            resources.table("tenants"),
            resources.table("accounts"),
            resources.table("messages"),
            resources.table("bodies"),
            resources.table("events"),
            resources.table("counters"),
            resources.table("metrics"),
            resources.table("files"),
            resources.table("settings"),
        )
        bucket = resources.buckets.get("payloads")
        self._payloads = (
            PayloadBucket(s3_client, bucket) if s3_client is not None and bucket else None
        )
