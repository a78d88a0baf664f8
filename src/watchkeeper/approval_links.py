"""Signed approval links, pure: a URL-safe token naming one approval, one decision, an expiry and
a nonce, authenticated with HMAC-SHA256.

A link in a chat message (Teams, Slack, email) opens the console's page for that decision; the
token alone never approves anything. The page shows the action (a link preview may fetch it), and
only a signed-in approver's POST acts — once: the nonce is single-use, and the console keeps the
nonces it has used.

Format (version 1): ``base64url(payload) "." base64url(mac)``, where ``payload`` is
``v1:<approval_id>:<a|r>:<expires unix seconds>:<nonce>`` and ``mac`` is
``HMAC-SHA256(secret, payload)``. Short enough for a link, readable by nothing but the HMAC check.

>>> from datetime import UTC, datetime, timedelta
>>> secret = b"k" * 32
>>> now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
>>> token = sign(secret, 42, "approve", now + timedelta(hours=1), "n0nce")
>>> claim = verify(secret, token, now)
>>> claim.approval_id, claim.decision, claim.nonce, claim.expires_at == now + timedelta(hours=1)
(42, 'approve', 'n0nce', True)
>>> verify(secret, token, now + timedelta(hours=2))
Traceback (most recent call last):
...
watchkeeper.errors.InputError: this approval link expired at 2026-12-03 10:00:00Z; ask for a new one
>>> verify(b"x" * 32, token, now)
Traceback (most recent call last):
...
watchkeeper.errors.InputError: this approval link is not genuine (its signature does not match)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from watchkeeper.errors import ConfigError, InputError

#: Decisions a link may carry, and their one-letter form in the payload.
DECISIONS = {"approve": "a", "reject": "r"}
_FROM_CODE = {code: name for name, code in DECISIONS.items()}
#: A nonce: URL-safe characters, as ``new_nonce`` makes (1 to 64 of them).
_NONCE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: Longest token accepted: a bound on the work an attacker's token can cause.
MAX_TOKEN = 256
#: Shortest secret accepted: 16 bytes (128 bits).
MIN_SECRET = 16
#: Largest approval id (PostgreSQL INTEGER, the type of every id column).
MAX_ID = 2**31 - 1
_VERSION = "v1"


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What a genuine, unexpired link says: which approval, which decision, until when, and its
    nonce (single-use: the caller records it when it acts)."""

    approval_id: int
    decision: str
    expires_at: datetime
    nonce: str


def new_nonce() -> str:
    """A fresh random nonce (22 URL-safe characters, 128 bits)."""
    return secrets.token_urlsafe(16)


def sign(secret: bytes, approval_id: int, decision: str, expires_at: datetime, nonce: str) -> str:
    """A URL-safe token for ``decision`` ("approve" or "reject") on approval ``approval_id``,
    valid until ``expires_at`` (timezone-aware; kept to the second, rounded down).

    >>> from datetime import UTC, datetime
    >>> sign(b"s" * 16, 1, "maybe", datetime(2026, 1, 1, tzinfo=UTC), "n")
    Traceback (most recent call last):
    ...
    watchkeeper.errors.InputError: decision must be 'approve' or 'reject', not 'maybe'
    """
    _check_secret(secret)
    if decision not in DECISIONS:
        raise InputError(f"decision must be 'approve' or 'reject', not {decision!r}")
    if isinstance(approval_id, bool) or not isinstance(approval_id, int) or not 1 <= approval_id <= MAX_ID:
        raise InputError(f"approval id must be 1 to {MAX_ID}, not {approval_id!r}")
    if expires_at.tzinfo is None:
        raise InputError("expires_at must carry a time zone (UTC)")
    if not _NONCE.match(nonce):
        raise InputError("a nonce is 1 to 64 URL-safe characters (letters, digits, '-' and '_')")
    payload = f"{_VERSION}:{approval_id}:{DECISIONS[decision]}:{int(expires_at.timestamp())}:{nonce}".encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, payload))}"


def verify(secret: bytes, token: str, now: datetime) -> LinkClaim:
    """The claim of a genuine token that has not expired at ``now``; otherwise an InputError
    whose sentence says what is wrong (malformed, not genuine, expired)."""
    _check_secret(secret)
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN or token.count(".") != 1:
        raise InputError("this approval link is malformed (it may have been cut short when copied)", status=400)
    encoded, _, mac = token.partition(".")
    payload, given = _unb64(encoded), _unb64(mac)
    if payload is None or given is None:
        raise InputError("this approval link is malformed (it may have been cut short when copied)", status=400)
    if not hmac.compare_digest(given, _mac(secret, payload)):
        raise InputError("this approval link is not genuine (its signature does not match)", status=403)
    # genuine: we made it, so a bad shape here is a version we no longer read
    parts = payload.decode("ascii", "replace").split(":")
    if len(parts) != 5 or parts[0] != _VERSION or parts[2] not in _FROM_CODE or not _NONCE.match(parts[4]):
        raise InputError("this approval link is of a format this server no longer reads; ask for a new one",
                         status=400)
    try:
        approval_id, expires = int(parts[1]), int(parts[3])
        expires_at = datetime.fromtimestamp(expires, UTC)
    except (ValueError, OverflowError, OSError):
        raise InputError("this approval link is of a format this server no longer reads; ask for a new one",
                         status=400) from None
    if now >= expires_at:
        raise InputError(f"this approval link expired at {expires_at:%Y-%m-%d %H:%M:%S}Z; ask for a new one",
                         status=410)
    return LinkClaim(approval_id, _FROM_CODE[parts[2]], expires_at, parts[4])


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET:
        raise ConfigError(f"the approval-link secret must be at least {MIN_SECRET} bytes")


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    if not text or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
