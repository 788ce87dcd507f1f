"""domain.s3_uri: the one place s3:// locations are recognised, split and written."""

from __future__ import annotations

import pytest

from mailproxy.domain.s3_uri import is_s3_uri, parse_s3_uri, s3_uri, split_s3_uri


def test_an_s3_location_is_a_bucket_and_a_key_taken_as_written() -> None:
    assert parse_s3_uri("s3://files/2024/a b%20.pdf") == ("files", "2024/a b%20.pdf")


@pytest.mark.parametrize(
    "wrong", ["s3://", "s3://files", "s3://files/", "s3:///key", "https://files/a", "files/a"]
)
def test_an_object_location_needs_the_scheme_a_bucket_and_a_key(wrong: str) -> None:
    with pytest.raises(ValueError, match="not an s3://bucket/key location"):
        parse_s3_uri(wrong)


@pytest.mark.parametrize(
    ("uri", "parts"),
    [
        ("s3://acme", ("acme", "")),
        ("s3://acme/", ("acme", "")),
        ("s3://acme/mail/large", ("acme", "mail/large")),
        ("s3://acme//double", ("acme", "/double")),
        # Without the scheme the text is split alike: the caller decides whether that is wrong.
        ("acme/key", ("acme", "key")),
    ],
)
def test_a_location_splits_at_the_first_slash_after_the_bucket(
    uri: str, parts: tuple[str, str]
) -> None:
    assert split_s3_uri(uri) == parts


def test_only_the_s3_scheme_is_an_s3_location() -> None:
    assert is_s3_uri("s3://acme/key")
    assert not is_s3_uri("S3://acme/key")
    assert not is_s3_uri("https://acme/key")


def test_a_written_location_parses_back() -> None:
    # Given a bucket and a key / When written as a location and parsed / Then they come back
    assert parse_s3_uri(s3_uri("acme", "in/a.pdf")) == ("acme", "in/a.pdf")
