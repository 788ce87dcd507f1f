"""`s3://bucket/key` locations: the one place they are recognised, split and written.

Attachments' storage_path (`s3://bucket/key`) and large files' storage_url
(`s3://bucket[/prefix]`) both go through here; which bucket names are valid is each field's
own rule.
"""

from __future__ import annotations

SCHEME = "s3://"


def is_s3_uri(text: str) -> bool:
    return text.startswith(SCHEME)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, rest) of `s3://bucket/rest`, split at the first "/" after the bucket; the rest
    (a key or a prefix) is taken as written, "" when there is none. Text without the scheme is
    split the same way: a caller that needs the scheme checks is_s3_uri first."""
    bucket, _, rest = uri.removeprefix(SCHEME).partition("/")
    return bucket, rest


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key), both non-empty; ValueError otherwise."""
    bucket, key = split_s3_uri(uri)
    if not is_s3_uri(uri) or not bucket or not key:
        raise ValueError(f"not an s3://bucket/key location: {uri!r}")
    return bucket, key


def s3_uri(bucket: str, key: str) -> str:
    return f"{SCHEME}{bucket}/{key}"
