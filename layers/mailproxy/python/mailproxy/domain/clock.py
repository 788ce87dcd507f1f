"""Time as the domain sees it: a function returning epoch seconds, passed in by the caller."""

from __future__ import annotations

from collections.abc import Callable

Clock = Callable[[], float]
