"""SMTP accounts: upsert, read, list, delete, and which tenants own an account id."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pynamodb.exceptions import DeleteError

from mailproxy.domain.account import Account, StoredAccount
from mailproxy.store.base import Records, is_condition_failure


class AccountRecords(Records):
    def put_account(
        self, account: Account, sealed_password: str | None, keep_password: bool, now: float
    ) -> None:
        """Create or replace the account (upsert on tenant_id + id). With keep_password, the
        stored password stays as it is (the client sent none)."""
        assert account.tenant_id is not None
        try:
            existing = self._m.account.get(account.tenant_id, account.id, consistent_read=True)
        except self._m.account.DoesNotExist:
            existing = None
        if keep_password and existing is not None:
            sealed_password = existing.secret
        self._m.account(
            account.tenant_id,
            account.id,
            data=account.model_dump(mode="json", exclude={"password", "tenant_id", "id"}),
            secret=sealed_password,
            created_at=existing.created_at if existing is not None else now,
            updated_at=now,
        ).save()

    def get_account(self, tenant_id: str, account_id: str) -> StoredAccount | None:
        try:
            item = self._m.account.get(tenant_id, account_id)
        except self._m.account.DoesNotExist:
            return None
        return self._to_stored_account(item)

    def list_accounts(self, tenant_id: str | None) -> list[StoredAccount]:
        items: Iterable[Any] = (
            self._m.account.query(tenant_id) if tenant_id is not None else self._m.account.scan()
        )
        accounts = [self._to_stored_account(item) for item in items]
        return sorted(accounts, key=lambda s: (s.account.tenant_id or "", s.account.id))

    def delete_account(self, tenant_id: str, account_id: str) -> bool:
        m = self._m.account
        try:
            m(tenant_id, account_id).delete(condition=m.id.exists())
        except DeleteError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def tenants_with_account(self, account_id: str) -> list[str]:
        return sorted({item.tenant_id for item in self._m.account.by_id.query(account_id)})

    @staticmethod
    def _to_stored_account(item: Any) -> StoredAccount:
        account = Account.model_validate({**item.data, "tenant_id": item.tenant_id, "id": item.id})
        return StoredAccount(account, item.created_at, item.updated_at, item.secret)
