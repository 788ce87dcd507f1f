"""The settings table: the instance settings, the bounce reader's cursor per mailbox and
when it last ran, and its run lease. A handful of items, each read and written by key."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PynamoDBException, UpdateError

from mailproxy.domain.bounces import MailboxCursor
from mailproxy.domain.errors import StaleWrite
from mailproxy.domain.instance import BounceRunRecord, InstanceSettings, StoredInstance
from mailproxy.store.base import (
    Records,
    is_condition_failure,
    storage_failure,
    written_if_condition_held,
)

INSTANCE_KEY = "instance"
BOUNCE_LEASE_KEY = "bounce-lease"
_CURSOR_PREFIX = "bounce-cursor#"


class SettingsRecords(Records):
    # -- the instance settings ------------------------------------------------------------

    def get_instance_settings(self) -> StoredInstance | None:
        m = self._m.setting
        try:
            item = m.get(INSTANCE_KEY, consistent_read=True)
        except m.DoesNotExist:
            return None
        except PynamoDBException as error:
            raise storage_failure(error) from error
        return StoredInstance(
            settings=InstanceSettings.model_validate(
                {**(item.data or {}), "created_at": item.created_at, "updated_at": item.updated_at}
            ),
            sealed_password=item.secret,
        )

    def put_instance_settings(
        self, stored: StoredInstance, expected_updated_at: float | None
    ) -> None:
        """Write the settings if nobody changed them since they were read (their updated_at
        then, None: none were stored); StaleWrite otherwise."""
        m = self._m.setting
        settings = stored.settings
        item = m(
            INSTANCE_KEY,
            data=settings.model_dump(mode="json", exclude={"created_at", "updated_at"}),
            secret=stored.sealed_password,
            created_at=settings.created_at,
            updated_at=settings.updated_at,
        )
        condition = (
            m.key.does_not_exist()
            if expected_updated_at is None
            else m.updated_at == expected_updated_at
        )
        if not written_if_condition_held(lambda: item.save(condition=condition)):
            raise StaleWrite("the instance settings changed meanwhile")

    # -- the bounce reader's cursor and last run, per mailbox ------------------------------

    def load_bounce_cursor(self, mailbox_key: str) -> MailboxCursor | None:
        item = self._cursor_item(mailbox_key)
        if item is None or item.uidvalidity is None:
            return None
        return MailboxCursor(int(item.uidvalidity), int(item.last_uid or 0))

    def save_bounce_cursor(self, mailbox_key: str, cursor: MailboxCursor) -> None:
        m = self._m.setting
        # An update of the two attributes: the last run's time, on the same item, stays.
        self._update(
            m(_CURSOR_PREFIX + mailbox_key),
            [m.uidvalidity.set(cursor.uidvalidity), m.last_uid.set(cursor.last_uid)],
        )

    def last_bounce_run(self, mailbox_key: str) -> BounceRunRecord | None:
        item = self._cursor_item(mailbox_key)
        if item is None or not item.last_run_at:
            return None
        return BounceRunRecord(float(item.last_run_at), item.last_error)

    def record_bounce_run(self, mailbox_key: str, at: float, error: str | None = None) -> None:
        m = self._m.setting
        failed = m.last_error.set(error[:500]) if error else m.last_error.remove()
        self._update(m(_CURSOR_PREFIX + mailbox_key), [m.last_run_at.set(at), failed])

    def _cursor_item(self, mailbox_key: str) -> Any:
        m = self._m.setting
        try:
            return m.get(_CURSOR_PREFIX + mailbox_key, consistent_read=True)
        except m.DoesNotExist:
            return None
        except PynamoDBException as error:
            raise storage_failure(error) from error

    # -- the bounce run's lease: at most one run at a time ---------------------------------

    def take_bounce_lease(self, owner: str, now: float, until: float) -> bool:
        """The lease, if nobody holds it (or the holder's has run out); False when taken.
        A reader that dies holding it only delays the next run until `until`."""
        m = self._m.setting
        item = m(BOUNCE_LEASE_KEY)
        return written_if_condition_held(
            lambda: item.update(
                actions=[m.owner.set(owner), m.lease_until.set(until)],
                condition=m.lease_until.does_not_exist() | (m.lease_until <= now),
            )
        )

    def release_bounce_lease(self, owner: str) -> None:
        """Give the lease back, if it is still ours (a run that overran lost it already)."""
        m = self._m.setting
        try:
            m(BOUNCE_LEASE_KEY).update(
                actions=[m.lease_until.remove(), m.owner.remove()], condition=m.owner == owner
            )
        except UpdateError as error:
            if not is_condition_failure(error):
                raise storage_failure(error) from error
        except PynamoDBException as error:
            raise storage_failure(error) from error

    def _update(self, item: Any, actions: list[Any]) -> None:
        try:
            item.update(actions=actions)
        except PynamoDBException as error:
            raise storage_failure(error) from error
