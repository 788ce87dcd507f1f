"""Priorities as a client writes them: a number 0..3 (clamped) or a label."""

from __future__ import annotations

import pytest

from mailproxy.domain.priority import DEFAULT_PRIORITY, Priority


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("immediate", Priority.IMMEDIATE),
        ("high", Priority.HIGH),
        ("medium", Priority.MEDIUM),
        ("low", Priority.LOW),
        (" High ", Priority.HIGH),
        ("LOW", Priority.LOW),
    ],
)
def test_a_label_names_its_level(given: str, expected: Priority) -> None:
    # Given a label, in any case and with stray spaces / When parsed / Then it is that level
    assert Priority.parse(given) is expected


@pytest.mark.parametrize(("given", "expected"), [(0, 0), (1, 1), (2, 2), (3, 3), ("2", 2)])
def test_a_number_in_range_is_that_level(given: int | str, expected: int) -> None:
    assert Priority.parse(given) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (7, Priority.LOW),
        (4, Priority.LOW),
        (-2, Priority.IMMEDIATE),
        ("-2", Priority.IMMEDIATE),
        ("99", Priority.LOW),
    ],
)
def test_a_number_out_of_range_is_clamped(given: int | str, expected: Priority) -> None:
    # Given a number outside 0..3 / When parsed / Then it is clamped, not refused
    assert Priority.parse(given) is expected


@pytest.mark.parametrize("given", ["urgent", "", "1.5", True])
def test_anything_else_is_refused_naming_priority(given: object) -> None:
    # Given an unknown label (or a boolean) / When parsed / Then a ValueError says "priority"
    with pytest.raises(ValueError, match="priority"):
        Priority.parse(given)  # type: ignore[arg-type]


def test_each_level_has_the_label_of_its_queue() -> None:
    assert [p.label for p in Priority] == ["immediate", "high", "medium", "low"]
    assert DEFAULT_PRIORITY is Priority.MEDIUM
