"""Flapping: a fingerprint that changes state ``transitions`` times within ``window`` is held."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class FlapDetector:
    """
    >>> from datetime import UTC, datetime, timedelta
    >>> t = datetime(2026, 11, 23, tzinfo=UTC)
    >>> d = FlapDetector(transitions=4, window=timedelta(minutes=10))
    >>> d.flapping([t + timedelta(minutes=m) for m in (0, 2, 4, 6)], t + timedelta(minutes=7))
    True
    >>> d.flapping([t + timedelta(minutes=m) for m in (0, 2, 4, 6)], t + timedelta(minutes=13))
    False
    """

    transitions: int = 4
    window: timedelta = timedelta(minutes=10)

    def flapping(self, changes: Sequence[datetime], now: datetime) -> bool:
        return sum(1 for at in changes if now - at <= self.window) >= self.transitions

    def trim(self, changes: Sequence[datetime], now: datetime) -> list[datetime]:
        """The state changes still inside the window (what needs keeping)."""
        return [at for at in changes if now - at <= self.window]
