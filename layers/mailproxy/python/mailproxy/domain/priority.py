"""Message priorities: four levels, each with its own queue."""

from __future__ import annotations

from enum import IntEnum


class Priority(IntEnum):
    IMMEDIATE = 0
    HIGH = 1
    MEDIUM = 2
    LOW = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: int | str) -> Priority:
        """A priority from a number (clamped to 0..3) or a label; ValueError otherwise."""
        if isinstance(value, bool):
            raise ValueError("priority must be 0..3 or one of immediate, high, medium, low")
        if isinstance(value, int):
            return cls(min(max(value, cls.IMMEDIATE), cls.LOW))
        text = value.strip().lower()
        if text.lstrip("-").isdigit():
            return cls.parse(int(text))
        for member in cls:
            if member.label == text:
                return member
        raise ValueError(
            f"unknown priority {value!r}: use 0..3 or one of immediate, high, medium, low"
        )


DEFAULT_PRIORITY = Priority.MEDIUM
