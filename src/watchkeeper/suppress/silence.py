"""A silence: matchers plus a time span, with who created it and why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from watchkeeper.suppress.matchers import Matcher


@dataclass(frozen=True, slots=True)
class Silence:
    """
    >>> from datetime import UTC, datetime
    >>> from watchkeeper.suppress.matchers import parse_matcher
    >>> t = datetime(2026, 11, 23, tzinfo=UTC)
    >>> s = Silence(1, (parse_matcher('service="db"'),), t, t.replace(hour=2), "alice", "upgrade")
    >>> s.mutes({"service": "db"}, t.replace(hour=1)), s.mutes({"service": "db"}, t.replace(hour=3))
    (True, False)
    """

    id: int
    matchers: Sequence[Matcher]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str

    def mutes(self, labels: Mapping[str, str], at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at and all(m.matches(labels) for m in self.matchers)
