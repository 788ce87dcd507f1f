"""Download links of large attachments: one item per token, keyed by the token's SHA-256."""

from __future__ import annotations

from pynamodb.exceptions import PynamoDBException

from mailproxy.domain.errors import StorageFailure
from mailproxy.domain.large_files import FileLink
from mailproxy.store.base import (
    Records,
    written_if_condition_held,
)


class FileRecords(Records):
    def put_file_link(self, token_hash: str, link: FileLink) -> bool:
        """Store a new link; False (nothing written) when the hash is taken already.
        StorageFailure when DynamoDB fails the write."""
        m = self._m.file
        item = m(
            token_hash,
            bucket=link.bucket,
            key=link.key,
            filename=link.filename,
            content_type=link.content_type,
            size=link.size,
            tenant_id=link.tenant_id,
            message_id=link.message_id,
            created_at=link.created_at,
            # DynamoDB TTL reads whole epoch seconds.
            expires_at=int(link.expires_at),
        )
        # A token is 256 random bits: a collision means a broken random source, and an
        # existing link must never be pointed at another file.
        return written_if_condition_held(lambda: item.save(condition=m.token_hash.does_not_exist()))

    def get_file_link(self, token_hash: str) -> FileLink | None:
        m = self._m.file
        try:
            item = m.get(token_hash)
        except m.DoesNotExist:
            return None
        except PynamoDBException as error:
            raise StorageFailure(f"DynamoDB {error.cause_response_code or 'error'}") from error
        return FileLink(
            bucket=item.bucket,
            key=item.key,
            filename=item.filename,
            content_type=item.content_type,
            size=int(item.size),
            tenant_id=item.tenant_id,
            message_id=item.message_id,
            created_at=float(item.created_at),
            expires_at=float(item.expires_at),
        )
