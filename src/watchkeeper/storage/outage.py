"""Telling a database outage from a bug, and logging an outage once per burst, not per request."""

from __future__ import annotations

import threading

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

#: What the database layer raises while the database is unreachable (wider types are checked in
#: :func:`is_outage`): catch these, then ask :func:`is_outage`.
OUTAGE_ERRORS = (DBAPIError, PoolTimeout)


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` says the database cannot be reached (retrying later can help).

    >>> is_outage(OperationalError("SELECT 1", {}, Exception("connection refused")))
    True
    >>> is_outage(ValueError("a bug"))
    False
    """
    if isinstance(exc, DBAPIError):
        return isinstance(exc, OperationalError) or exc.connection_invalidated
    return isinstance(exc, PoolTimeout)


def reason(exc: BaseException) -> str:
    """One line that says why, without SQLAlchemy's statement and background link."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else 'no detail'}"


class Burst:
    """One log line per burst of failures: a failure after ``quiet`` seconds without one starts a
    new burst (log it); :meth:`recovered` ends the burst and says how many failures it held.

    >>> b = Burst(quiet=30.0)
    >>> b.failed(0.0), b.failed(1.0), b.failed(40.0)
    (True, False, True)
    >>> b.recovered(), b.recovered()
    (1, 0)
    """

    def __init__(self, quiet: float = 30.0) -> None:
        self.quiet = quiet
        self._last: float | None = None
        self._count = 0
        self._lock = threading.Lock()

    def failed(self, now: float) -> bool:
        with self._lock:
            new = self._last is None or now - self._last >= self.quiet
            self._last = now
            self._count = 1 if new else self._count + 1
            return new

    def recovered(self) -> int:
        with self._lock:
            count, self._last, self._count = self._count, None, 0
            return count
