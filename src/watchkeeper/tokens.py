"""API token lifetimes, pure: parse ``--expires``, say whether a token is usable and why not.

Rules (docs/tokens.md):

* every token expires; the default lifetime is the setting ``token_default_days`` (90);
* only an ``ingest`` token may be made with ``never`` (a sender such as Alertmanager is configured
  once and can only write events); any token of a person or with more rights must expire;
* rotating gives a new secret with the same name and role; the old one is revoked at once, or
  stays valid for a grace period (``--grace``) while the sender's configuration is changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from watchkeeper.errors import InputError

#: Longest lifetime and grace period accepted (ten years; one week).
MAX_LIFETIME = timedelta(days=3650)
MAX_GRACE = timedelta(days=7)
NEVER = "never"
_SPAN = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_span(text: str, *, what: str = "--expires", limit: timedelta = MAX_LIFETIME,
               allow_zero: bool = False) -> timedelta:
    """A span like ``90d``, ``12h``, ``2w``, ``30m`` or ``45s``.

    >>> parse_span("90d"), parse_span("2w"), parse_span("0s", allow_zero=True)
    (datetime.timedelta(days=90), datetime.timedelta(days=14), datetime.timedelta(0))
    >>> parse_span("soon")
    Traceback (most recent call last):
    ...
    watchkeeper.errors.InputError: --expires: 'soon' is not a span like 90d, 12h, 2w, 30m or 45s
    """
    match = _SPAN.match(text)
    if not match:
        raise InputError(f"{what}: {text!r} is not a span like 90d, 12h, 2w, 30m or 45s")
    span = timedelta(**{_UNIT[match.group(2)]: int(match.group(1))})
    if span > limit:
        raise InputError(f"{what}: {text} is longer than the limit of {limit.days} days")
    if span <= timedelta(0) and not allow_zero:
        raise InputError(f"{what}: {text} must be longer than zero")
    return span


def lifetime(text: str | None, role: str, default_days: int) -> timedelta | None:
    """The lifetime ``--expires`` asks for (None: never), checked against the role.

    >>> lifetime(None, "viewer", 90)
    datetime.timedelta(days=90)
    >>> lifetime("never", "ingest", 90) is None
    True
    >>> lifetime("never", "admin", 90)
    Traceback (most recent call last):
    ...
    watchkeeper.errors.InputError: only ingest tokens may never expire; give this admin token --expires (e.g. 90d)
    """
    if text is None:
        return timedelta(days=default_days)
    if text.strip().lower() == NEVER:
        if role != "ingest":
            raise InputError(f"only ingest tokens may never expire; give this {role} token --expires (e.g. 90d)")
        return None
    return parse_span(text)


class TokenState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What is known of a stored token (never its secret)."""

    id: int
    name: str
    role: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def state(self, now: datetime) -> TokenState:
        """
        >>> from datetime import UTC
        >>> t = datetime(2026, 12, 1, tzinfo=UTC)
        >>> info = TokenInfo(1, "am", "ingest", t, t + timedelta(days=1))
        >>> info.state(t).value, info.state(t + timedelta(days=1)).value
        ('active', 'expired')
        """
        if self.revoked_at is not None and self.revoked_at <= now:
            return TokenState.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return TokenState.EXPIRED
        return TokenState.ACTIVE


def old_token_end(now: datetime, expires_at: datetime | None, grace: timedelta) -> datetime:
    """When a rotated token stops working: now, or after the grace period (never later than it
    would have expired anyway).

    >>> from datetime import UTC
    >>> t = datetime(2026, 12, 1, tzinfo=UTC)
    >>> old_token_end(t, None, timedelta(hours=1)) == t + timedelta(hours=1)
    True
    >>> old_token_end(t, t + timedelta(minutes=5), timedelta(hours=1)) == t + timedelta(minutes=5)
    True
    """
    end = now + grace
    return end if expires_at is None else min(end, max(now, expires_at))
