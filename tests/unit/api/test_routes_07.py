"""The 0.7 routes' own small rules: which unserved 0.7 paths say so, and how 0.7's bounce
fields become PUT /instance's."""

from __future__ import annotations

import pytest

from mailproxy.api.requests_07 import BounceConfigChange
from mailproxy.api.routes_07 import _bounce_change, unavailable
from mailproxy.domain.errors import InvalidRequest


@pytest.mark.parametrize(
    "path", ["/storages/add", "/storages/list", "/instance/upgrade_to_ee", "/accounts/add_pec"]
)
def test_enterprise_paths_are_named_as_such(path: str) -> None:
    assert "enterprise" in (unavailable(path) or "")


@pytest.mark.parametrize("path", ["/command_log/purge", "/messages/count_active"])
def test_unserved_0_7_paths_say_so(path: str) -> None:
    assert unavailable(path) == "A genro-mail-proxy 0.7 route not available in this proxy"


@pytest.mark.parametrize("path", ["/messages/list", "/nothing", "/storagesx"])
def test_any_other_path_is_a_plain_404(path: str) -> None:
    assert unavailable(path) is None


def test_bounce_fields_get_their_prefix_and_nulls_are_left_alone() -> None:
    change = _bounce_change(BounceConfigChange(poll_interval=120, enabled=None, imap_host="h"))
    assert change.model_dump(exclude_unset=True) == {
        "bounce_poll_interval": 120,
        "bounce_imap_host": "h",
    }


def test_an_invalid_bounce_field_is_named_without_its_prefix() -> None:
    with pytest.raises(InvalidRequest) as refused:
        _bounce_change(BounceConfigChange(imap_port=0))
    assert [problem.loc for problem in refused.value.problems] == [("body", "imap_port")]
