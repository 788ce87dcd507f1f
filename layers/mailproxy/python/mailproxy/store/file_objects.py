"""Large attachments in S3: written by the sender, handed out by the API as short-lived
presigned GET URLs. SDK errors leave here as StorageFailure."""

from __future__ import annotations

from typing import Any

from mailproxy.domain.errors import StorageFailure
from mailproxy.domain.large_files import content_disposition


def _failure(error: Exception) -> StorageFailure:
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "error")
        return StorageFailure(f"S3 {code}")
    return StorageFailure(f"S3 request failed ({type(error).__name__})")


class FileObjects:
    """`s3_client` writes; `presigner` (an S3 client configured for SigV4) signs URLs."""

    def __init__(self, s3_client: Any, presigner: Any | None = None) -> None:
        self._s3 = s3_client
        self._presigner = presigner if presigner is not None else s3_client

    def put(self, bucket: str, key: str, content: bytes, content_type: str, filename: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=content,
                ContentType=content_type,
                ContentDisposition=content_disposition(filename),
            )
        except (ClientError, BotoCoreError) as error:
            raise _failure(error) from error

    def presigned_get(
        self, bucket: str, key: str, *, filename: str, content_type: str, expires_in: int
    ) -> str:
        """A GET URL for the object that works `expires_in` seconds (signed here, no call)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            url = self._presigner.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": bucket,
                    "Key": key,
                    "ResponseContentDisposition": content_disposition(filename),
                    "ResponseContentType": content_type,
                },
                ExpiresIn=expires_in,
            )
        except (ClientError, BotoCoreError) as error:
            raise _failure(error) from error
        return str(url)
