"""The sign-in rate limit, pure: failed sign-ins counted per user name and per client address in a
sliding window; a key with too many failures is locked until its oldest counted failure leaves the
window. Checked *before* the password hash, so a locked-out guesser costs no argon2 time.

Per user name, so one account cannot be guessed at from many addresses; per address, so one
address cannot try many names. Kept in the server's memory (each ``serve`` process counts its own,
a restart forgets), bounded in size: at most ``max_keys`` keys, the stalest dropped first.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict, deque
from dataclasses import dataclass

from watchkeeper.errors import AuthError

#: How many keys (names and addresses) are remembered at most; beyond it the stalest go first.
MAX_KEYS = 10_000


class Throttled(AuthError):
    """Too many failed sign-ins: a 429 whose ``Retry-After`` is ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Failed:
    """One failure recorded: which keys reached their limit with it (each is locked from now)."""

    locked: tuple[str, ...]


def address_key(address: str | None) -> str | None:
    """The key of a client address: an IPv4 address itself, an IPv6 address's /64 (one host gets
    a whole /64, so counting single IPv6 addresses would count nothing).

    >>> address_key("192.0.2.7"), address_key("2001:db8::1:2:3:4"), address_key("::ffff:192.0.2.7")
    ('addr:192.0.2.7', 'addr:2001:db8::/64', 'addr:192.0.2.7')
    >>> address_key("testclient")
    'addr:testclient'
    """
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"addr:{address[:64]}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"addr:{ip.ipv4_mapped}"
        return f"addr:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"addr:{ip}"


def name_key(name: str) -> str:
    return f"user:{name.lower()[:128]}"


class SignInLimiter:
    """Failures per key in the last ``window`` seconds: ``user_limit`` of them lock a user name,
    ``address_limit`` an address. Times are whatever clock the caller uses (seconds). Not
    thread-safe: the caller holds a lock."""

    def __init__(self, user_limit: int, address_limit: int, window: float, max_keys: int = MAX_KEYS) -> None:
        self.limits = {"user": user_limit, "addr": address_limit}
        self.window = window
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, keys: list[str], now: float) -> int:
        """Seconds until every one of ``keys`` may try again (0: none is locked)."""
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            limit = self.limits[key.split(":", 1)[0]]
            if len(times) >= limit:
                wait = max(wait, times[len(times) - limit] + self.window - now)
        return math.ceil(wait) if wait > 0 else 0

    def fail(self, keys: list[str], now: float) -> Failed:
        """Count one failure against each key; the keys this failure locked."""
        locked = []
        for key in keys:
            times = self._recent(key, now)
            if key not in self._failures:
                self._failures[key] = times
            times.append(now)
            self._failures.move_to_end(key)
            if len(times) == self.limits[key.split(":", 1)[0]]:
                locked.append(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)
        return Failed(tuple(locked))

    def succeed(self, name: str) -> None:
        """A right password: the name's count starts again (the address's does not: one account
        of one's own must not buy more guesses at others)."""
        self._failures.pop(name_key(name), None)

    def __len__(self) -> int:
        return len(self._failures)


def minutes(seconds: int) -> str:
    """
    >>> minutes(30), minutes(61), minutes(900)
    ('1 minute', '2 minutes', '15 minutes')
    """
    n = max(1, math.ceil(seconds / 60))
    return f"{n} minute{'s' if n != 1 else ''}"
