"""Fixtures of the e2e tests: local mode started once per module. What the tests import to
start and drive local mode is in tests/support/local_mode.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.local_mode import LocalMode, local_mode_running


@pytest.fixture(scope="module")
def local_mode() -> Iterator[LocalMode]:
    with local_mode_running() as local:
        yield local
