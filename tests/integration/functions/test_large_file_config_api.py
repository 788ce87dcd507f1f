"""A tenant's large_file_config through the api Lambda (moto behind): stored by POST /tenant,
returned by GET /tenant/{id} and GET /tenants, changed field by field by PUT /tenant/{id},
refused with a 422 naming the field when a value is bad."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.handlers import ApiClient
from tests.support.tenants import create_tenant, ok_json

REWRITE = {
    "enabled": True,
    "max_size_mb": 5,
    "storage_url": "s3://tenant-files/acme/outgoing",
    "action": "rewrite",
    "file_ttl_days": 14,
}


def config_of(api: ApiClient, tenant_id: str, token: Any = ...) -> Any:
    return ok_json(api, "GET", f"/tenant/{tenant_id}", token=token).get("large_file_config")


def problems(answer: Any) -> list[tuple[list[Any], str]]:
    return [(item["loc"], item["msg"]) for item in answer["detail"]]


def test_a_posted_config_is_returned_as_stored(api: ApiClient) -> None:
    # Given a tenant posted with a whole large_file_config
    create_tenant(api, "acme", name="Acme", large_file_config=REWRITE)
    # When it is read, alone or in the list
    # Then the config comes back as posted
    assert config_of(api, "acme") == REWRITE
    [listed] = ok_json(api, "GET", "/tenants")["tenants"]
    assert listed["large_file_config"] == REWRITE


def test_a_partial_config_gets_the_defaults(api: ApiClient) -> None:
    # Given a tenant posted with only some fields of the config
    create_tenant(api, "acme", large_file_config={"enabled": True, "action": "reject"})
    # When read / Then the other fields have their defaults (no storage_url: left out)
    assert config_of(api, "acme") == {
        "enabled": True,
        "max_size_mb": 10,
        "action": "reject",
        "file_ttl_days": 30,
    }


def test_a_tenant_without_config_shows_none(api: ApiClient) -> None:
    # Given a tenant posted without a config / When read / Then no config in its view
    create_tenant(api, "acme", name="Acme")
    assert config_of(api, "acme") is None


def test_put_changes_only_the_config_fields_given(api: ApiClient) -> None:
    # Given a tenant with a whole config
    key = create_tenant(api, "acme", name="Acme", large_file_config=REWRITE)
    # When one field of the config is put
    assert api.call("PUT", "/tenant/acme", {"large_file_config": {"max_size_mb": 2.5}}) == (
        200,
        {"ok": True},
    )
    # Then that field changed and the others kept their values
    assert config_of(api, "acme") == REWRITE | {"max_size_mb": 2.5}
    # When the tenant itself, with its own key, changes another
    status, body = api.call(
        "PUT", "/tenant/acme", {"large_file_config": {"action": "warn"}}, token=key
    )
    assert (status, body) == (200, {"ok": True})
    # Then both changes are kept, and the rest of the tenant too
    assert config_of(api, "acme") == REWRITE | {"max_size_mb": 2.5, "action": "warn"}
    assert ok_json(api, "GET", "/tenant/acme")["name"] == "Acme"


def test_put_of_other_fields_keeps_the_config(api: ApiClient) -> None:
    # Given a tenant with a config / When another field of the tenant is put
    create_tenant(api, "acme", large_file_config=REWRITE)
    assert api.call("PUT", "/tenant/acme", {"name": "Acme Corp"}) == (200, {"ok": True})
    # Then the config is untouched
    assert config_of(api, "acme") == REWRITE


def test_put_null_clears_the_config_and_a_null_field_goes_back_to_its_default(
    api: ApiClient,
) -> None:
    # Given a tenant with a config
    create_tenant(api, "acme", large_file_config=REWRITE)
    # When its storage_url and ttl are put as null
    patch = {"large_file_config": {"storage_url": None, "file_ttl_days": None}}
    assert api.call("PUT", "/tenant/acme", patch) == (200, {"ok": True})
    # Then the storage_url is gone and the ttl is the default again
    without_url = {k: v for k, v in REWRITE.items() if k != "storage_url"}
    assert config_of(api, "acme") == without_url | {"file_ttl_days": 30}
    # When the whole config is put as null / Then the tenant has none
    assert api.call("PUT", "/tenant/acme", {"large_file_config": None}) == (200, {"ok": True})
    assert config_of(api, "acme") is None


def test_put_of_a_config_on_a_tenant_without_one_starts_from_the_defaults(
    api: ApiClient,
) -> None:
    # Given a tenant without a config / When part of one is put
    create_tenant(api, "acme")
    assert api.call("PUT", "/tenant/acme", {"large_file_config": {"enabled": True}}) == (
        200,
        {"ok": True},
    )
    # Then the config is that part over the defaults
    assert config_of(api, "acme") == {
        "enabled": True,
        "max_size_mb": 10,
        "action": "warn",
        "file_ttl_days": 30,
    }


def test_posting_a_tenant_again_without_config_removes_it(api: ApiClient) -> None:
    # Given a tenant with a config / When the admin posts the tenant again without one
    create_tenant(api, "acme", large_file_config=REWRITE)
    assert api.call("POST", "/tenant", {"id": "acme", "name": "Acme"}) == (200, {"ok": True})
    # Then, as for every field a POST replaces, the config is gone
    assert config_of(api, "acme") is None


BAD_VALUES = [
    ({"action": "delete"}, "action", "Input should be 'warn', 'reject' or 'rewrite'"),
    ({"max_size_mb": 0}, "max_size_mb", "Input should be greater than 0"),
    ({"max_size_mb": -3}, "max_size_mb", "Input should be greater than 0"),
    ({"max_size_mb": "big"}, "max_size_mb", "Input should be a valid number"),
    ({"file_ttl_days": 0}, "file_ttl_days", "Input should be greater than or equal to 1"),
    ({"file_ttl_days": 1.5}, "file_ttl_days", "Input should be a valid integer"),
    ({"file_ttl_days": 366}, "file_ttl_days", "Input should be less than or equal to 365"),
    ({"enabled": "perhaps"}, "enabled", "Input should be a valid boolean"),
    ({"storage_url": "https://files.example"}, "storage_url", "s3://bucket"),
    ({"storage_url": "s3://Not_A_Bucket/x"}, "storage_url", "is not an S3 bucket name"),
    ({"storage_url": "s3://tenant-files/../escape"}, "storage_url", "no '.' or '..' segment"),
    ({"max_size": 5}, "max_size", "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("config", "field", "says"), BAD_VALUES)
def test_a_bad_config_on_post_is_a_422_naming_the_field_and_nothing_is_stored(
    api: ApiClient, config: dict[str, Any], field: str, says: str
) -> None:
    # Given no tenant / When one is posted with a bad value in its config
    status, answer = api.call("POST", "/tenant", {"id": "acme", "large_file_config": config})
    # Then 422, naming large_file_config.<field> and saying what is accepted
    assert status == 422
    [(loc, msg)] = problems(answer)
    assert loc == ["body", "large_file_config", field]
    assert says in msg
    # and no tenant was stored
    assert ok_json(api, "GET", "/tenants")["tenants"] == []


@pytest.mark.parametrize(("config", "field", "says"), BAD_VALUES)
def test_a_bad_config_on_put_is_a_422_naming_the_field_and_nothing_changes(
    api: ApiClient, config: dict[str, Any], field: str, says: str
) -> None:
    # Given a tenant with a config
    create_tenant(api, "acme", name="Acme", large_file_config=REWRITE)
    before = ok_json(api, "GET", "/tenant/acme")
    # When a bad value is put, along with a good change of another field
    status, answer = api.call(
        "PUT", "/tenant/acme", {"name": "Changed", "large_file_config": config}
    )
    # Then 422, naming large_file_config.<field>
    assert status == 422
    [(loc, msg)] = problems(answer)
    assert loc == ["body", "large_file_config", field]
    assert says in msg
    # and nothing changed, not even the good field
    assert ok_json(api, "GET", "/tenant/acme") == before


def test_a_put_config_on_an_unknown_tenant_is_a_404(api: ApiClient) -> None:
    status, answer = api.call("PUT", "/tenant/ghost", {"large_file_config": {"enabled": True}})
    assert (status, answer) == (404, {"detail": "Tenant 'ghost' not found"})
    assert ok_json(api, "GET", "/tenants")["tenants"] == []
