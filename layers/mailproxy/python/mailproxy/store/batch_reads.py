"""What a sender needs before a batch, read in one call: its messages' bodies, their tenants
and their accounts (BatchGetItem spans tables; pynamodb's batch_get reads one model)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from typing import Any

from mailproxy.chunking import chunks
from mailproxy.domain.ports import BatchRead
from mailproxy.store.accounts import AccountRecords
from mailproxy.store.base import BATCH_GET_LIMIT
from mailproxy.store.messages import MessageRecords
from mailproxy.store.tenants import TenantRecords

# BatchGetItem may leave keys unprocessed under load; they are asked for again, backing off.
UNPROCESSED_ATTEMPTS = 6


class BatchReads(TenantRecords, AccountRecords, MessageRecords):
    def read_batch(
        self,
        tenant_ids: Iterable[str],
        accounts: Iterable[tuple[str, str]],
        bodies: Iterable[tuple[str, str]],
    ) -> BatchRead:
        """Tenants (read consistently, as get_tenant does: a suspension counts at once),
        accounts and bodies by key, in as few calls as DynamoDB allows."""
        m = self._m
        keys: list[tuple[Any, dict[str, Any]]] = [
            *((m.tenant, {"id": {"S": t}}) for t in sorted(set(tenant_ids))),
            *(
                (m.account, {"tenant_id": {"S": t}, "id": {"S": a}})
                for t, a in sorted(set(accounts))
            ),
            *((m.body, {"tenant_id": {"S": t}, "id": {"S": b}}) for t, b in sorted(set(bodies))),
        ]
        found = BatchRead()
        for model, item in self._batch_get(keys):
            if model is m.tenant:
                tenant = self._to_tenant(item)
                found.tenants[tenant.id] = tenant
            elif model is m.account:
                stored = self._to_stored_account(item)
                found.accounts[(item.tenant_id, item.id)] = stored
            else:
                found.bodies[(item.tenant_id, item.id)] = self._to_body(item)
        return found

    def _batch_get(self, keys: list[tuple[Any, dict[str, Any]]]) -> Iterator[tuple[Any, Any]]:
        models = {model.Meta.table_name: model for model, _ in keys}
        consistent = {self._m.tenant.Meta.table_name}
        client: Any = self._m.connection.client  # botocore's, with the store's timeouts
        for chunk in chunks(keys, BATCH_GET_LIMIT):
            request: dict[str, Any] = {}
            for model, key in chunk:
                table = model.Meta.table_name
                entry = request.setdefault(
                    table, {"Keys": [], "ConsistentRead": table in consistent}
                )
                entry["Keys"].append(key)
            for attempt in range(UNPROCESSED_ATTEMPTS):
                answer = client.batch_get_item(RequestItems=request)
                for table, items in answer.get("Responses", {}).items():
                    for item in items:
                        yield models[table], models[table].from_raw_data(item)
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                if attempt == UNPROCESSED_ATTEMPTS - 1:
                    raise RuntimeError("DynamoDB left keys unprocessed: try the batch again")
                self._sleep(random.uniform(0, min(0.5, 0.02 * 2**attempt)))
