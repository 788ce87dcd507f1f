"""GET /files/{token}: a large attachment's download link, opened.

No API token: the link is the credential (256 random bits, kept only as its SHA-256). The
answer is a redirect to a presigned S3 URL that works for a few minutes, never past the link's
own expiry; an unknown, expired or malformed token, or one of a deleted tenant, is the same
404, so a caller learns nothing about which links exist.
"""

from __future__ import annotations

from mailproxy.domain.clock import Clock
from mailproxy.domain.errors import NotFound
from mailproxy.domain.large_files import plausible_token, token_hash
from mailproxy.service.ports import FileLinkReader, Presigner

# Long enough to start a download, short enough that a copied URL is soon worthless.
PRESIGNED_SECONDS = 300
LINK_NOT_FOUND = "This download link does not exist or has expired"


def download_location(
    token: str, store: FileLinkReader, presigner: Presigner, *, clock: Clock
) -> str:
    """Where the file can be fetched right now; NotFound when the link does not open."""
    now = clock()
    if not plausible_token(token):
        raise NotFound(LINK_NOT_FOUND)
    link = store.get_file_link(token_hash(token))
    # DynamoDB's TTL deletes an expired item only within days: the expiry is checked here.
    if link is None or link.expires_at <= now or store.get_tenant(link.tenant_id) is None:
        raise NotFound(LINK_NOT_FOUND)
    seconds = max(1, min(PRESIGNED_SECONDS, int(link.expires_at - now)))
    return presigner.presigned_get(
        link.bucket,
        link.key,
        filename=link.filename,
        content_type=link.content_type,
        expires_in=seconds,
    )
