"""Console accounts: users (argon2 hashes), sessions, CSRF tokens, the console's secret and the
single use of approval-link nonces. What the console pages and ``watchkeeper user`` call.

A session cookie holds a random secret; the database keeps only its SHA-256, so a copy of the
database signs nobody in. A session ends ``session_hours`` after sign-in or ``idle_minutes``
after its last request, whichever is first, and at once when its user is disabled.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from watchkeeper import approval_links
from watchkeeper.errors import AuthError, Conflict, InputError, NotFound
from watchkeeper.model import Change
from watchkeeper.service import Role
from watchkeeper.settings import ConsoleConfig
from watchkeeper.storage import Database, audit
from watchkeeper.storage import console as store

#: A user name: what a person is called in the audit log (``user:NAME``).
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
#: Passwords: at least this long (a passphrase is welcome), at most this (argon2 takes any length,
#: but an attacker's megabyte-long password should cost nothing).
MIN_PASSWORD, MAX_PASSWORD = 10, 1024
#: A session's ``last_seen_at`` is written at most this often.
TOUCH_EVERY = timedelta(minutes=1)
SECRET_NAME = "console"  # noqa: S105 (the name of a stored secret, not one)


@dataclass(frozen=True, slots=True)
class User:
    """A signed-in person: whom the audit log names (``actor``) and what the role allows."""

    id: int
    name: str
    role: Role
    session: str  # the session's id (the hash of its cookie), which CSRF tokens are bound to
    via: str

    @property
    def actor(self) -> str:
        return f"user:{self.name}"


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    name: str
    role: str
    created_at: datetime
    disabled_at: datetime | None
    last_login_at: datetime | None
    sso_only: bool


def session_id(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


class Accounts:
    def __init__(self, db: Database, clock: Callable[[], datetime], config: ConsoleConfig,
                 hasher: PasswordHasher | None = None) -> None:
        self.db, self.clock, self.config = db, clock, config
        self.hasher = hasher or PasswordHasher()
        self._secret: bytes | None = None
        self._dummy: str | None = None
        self._proxies = [ipaddress.ip_network(p, strict=False) for p in config.sso_proxies]

    # -- users ---------------------------------------------------------------------------
    def create(self, name: str, role: Role, password: str | None, actor: str) -> UserInfo:
        """A new user. ``password`` None: the user signs in only through the SSO header."""
        if not NAME.match(name):
            raise InputError("a user name is 1 to 128 letters, digits, '.', '_', '@' or '-', starting with a "
                             "letter or digit")
        hashed = None if password is None else self.hasher.hash(check_password(password))
        now = self.clock()
        with self.db.write() as conn:
            user_id = store.add_user(conn, name, role.value, hashed, now)
            if user_id is None:
                raise Conflict(f"a user named {name!r} exists already; see 'watchkeeper user list'")
            audit.append(conn, actor, [Change("user.created", f"user:{name}", now, {
                "id": user_id, "name": name, "role": role.value, "password": hashed is not None})])
        return UserInfo(user_id, name, role.value, now, None, None, hashed is None)

    def users(self) -> list[UserInfo]:
        with self.db.read() as conn:
            rows = store.list_users(conn)
        return [UserInfo(r.id, r.name, r.role, r.created_at, r.disabled_at, r.last_login_at, r.password_hash is None)
                for r in rows]

    def disable(self, name: str, actor: str) -> int:
        """Disable ``name`` and end its sessions; the number of sessions ended."""
        now = self.clock()
        with self.db.write() as conn:
            row = store.find_user(conn, name)
            if row is None:
                raise NotFound(f"no user named {name!r}; see 'watchkeeper user list'")
            if row.disabled_at is not None:
                raise Conflict(f"user {name!r} is already disabled")
            store.update_user(conn, row.id, disabled_at=now)
            ended = store.end_sessions(conn, user_id=row.id)
            audit.append(conn, actor, [Change("user.disabled", f"user:{name}", now, {
                "id": row.id, "name": name, "sessions_ended": ended})])
        return ended

    def set_password(self, name: str, password: str, actor: str) -> None:
        hashed = self.hasher.hash(check_password(password))
        now = self.clock()
        with self.db.write() as conn:
            row = store.find_user(conn, name)
            if row is None:
                raise NotFound(f"no user named {name!r}; see 'watchkeeper user list'")
            store.update_user(conn, row.id, password_hash=hashed)
            ended = store.end_sessions(conn, user_id=row.id)
            audit.append(conn, actor, [Change("user.password_set", f"user:{name}", now, {
                "id": row.id, "name": name, "sessions_ended": ended})])

    # -- signing in ----------------------------------------------------------------------
    def sign_in(self, name: str, password: str) -> tuple[str, User]:
        """A new session's cookie and its user; an AuthError (the same sentence for an unknown
        name and a wrong password: nothing tells which names exist)."""
        refused = AuthError("wrong user name or password", status=401)
        if len(password) > MAX_PASSWORD or not NAME.match(name):
            raise refused
        with self.db.read() as conn:
            row = store.find_user(conn, name)
        if row is None or row.password_hash is None or row.disabled_at is not None:
            self._burn(password)  # the same time as a real check
            raise refused
        try:
            self.hasher.verify(row.password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            raise refused from None
        return self._start(row, "password")

    def sign_in_sso(self, name: str, peer: str | None) -> tuple[str, User] | None:
        """A session for the user a trusted proxy's header names; None when SSO is off, the peer
        is no trusted proxy, or the header names nobody enabled (the sign-in form then shows)."""
        if not self.config.sso_header or not peer or not self.trusted(peer) or not NAME.match(name):
            return None
        with self.db.read() as conn:
            row = store.find_user(conn, name)
        if row is None or row.disabled_at is not None:
            return None
        return self._start(row, "sso")

    def trusted(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self._proxies)

    def _start(self, row: store.UserRow, via: str) -> tuple[str, User]:
        cookie = secrets.token_urlsafe(32)
        sid = session_id(cookie)
        now = self.clock()
        expires_at = now + timedelta(hours=self.config.session_hours)
        with self.db.write() as conn:
            store.end_sessions(conn, before=now)  # tidy: expired sessions of anyone
            store.add_session(conn, sid, row.id, now, expires_at, via)
            store.update_user(conn, row.id, last_login_at=now)
            audit.append(conn, f"user:{row.name}", [Change("user.signed_in", f"user:{row.name}", now, {
                "id": row.id, "via": via, "expires_at": expires_at})])
        return cookie, User(row.id, row.name, Role(row.role), sid, via)

    def session(self, cookie: str | None) -> User | None:
        """The user of a live session cookie, or None (unknown, expired, idle, disabled)."""
        if not cookie or len(cookie) > 128:
            return None
        sid = session_id(cookie)
        now = self.clock()
        with self.db.read() as conn:
            found = store.find_session(conn, sid)
        if found is None or found.user.disabled_at is not None:
            return None
        if now >= found.expires_at or now - found.last_seen_at >= timedelta(minutes=self.config.idle_minutes):
            with self.db.write() as conn:
                store.end_sessions(conn, session_id=sid)
            return None
        if now - found.last_seen_at >= TOUCH_EVERY:
            with self.db.write() as conn:
                store.touch_session(conn, sid, now)
        return User(found.user.id, found.user.name, Role(found.user.role), sid, found.via)

    def sign_out(self, user: User) -> None:
        now = self.clock()
        with self.db.write() as conn:
            store.end_sessions(conn, session_id=user.session)
            audit.append(conn, user.actor, [Change("user.signed_out", f"user:{user.name}", now, {"id": user.id})])

    def _burn(self, password: str) -> None:
        if self._dummy is None:
            self._dummy = self.hasher.hash("not a password of anyone")
        with contextlib.suppress(VerifyMismatchError, VerificationError, InvalidHashError):
            self.hasher.verify(self._dummy, password)

    # -- secrets, CSRF, link nonces --------------------------------------------------------
    def secret(self) -> bytes:
        """The setting ``console.secret``, else one generated once and kept in the database."""
        if self._secret is None:
            if self.config.secret is not None:
                self._secret = self.config.secret.get_secret_value().encode()
            else:
                with self.db.write() as conn:
                    self._secret = store.secret(conn, SECRET_NAME, secrets.token_urlsafe(48), self.clock()).encode()
        return self._secret

    def csrf_token(self, binding: str) -> str:
        """The CSRF token of a session (or of a pre-sign-in cookie): an HMAC of it, so the form
        of one session is worthless in another."""
        return hmac.new(self.secret(), f"csrf:{binding}".encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, binding: str, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf_token(binding), given or "")

    def approval_link(self, approval_id: int, decision: str) -> str:
        """The console path of a signed link for ``decision`` on an approval request, valid for
        the setting ``console.link_hours`` (prefix it with the console's public URL)."""
        expires_at = self.clock() + timedelta(hours=self.config.link_hours)
        token = approval_links.sign(self.secret(), approval_id, decision, expires_at, approval_links.new_nonce())
        return f"/console/approve/{token}"

    def use_nonce(self, nonce: str, approval_id: int, actor: str, expires_at: datetime) -> bool:
        with self.db.write() as conn:
            return store.use_nonce(conn, nonce, approval_id, self.clock(), actor, expires_at)

    def nonce_used(self, nonce: str) -> dict[str, object] | None:
        with self.db.read() as conn:
            return store.nonce_used(conn, nonce)

    def free_nonce(self, nonce: str) -> None:
        with self.db.write() as conn:
            store.free_nonce(conn, nonce)


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password is at least {MIN_PASSWORD} characters (a passphrase is best)")
    if len(password) > MAX_PASSWORD:
        raise InputError(f"a password is at most {MAX_PASSWORD} characters")
    if "\x00" in password:
        raise InputError("a password cannot hold a NUL character")
    return password
