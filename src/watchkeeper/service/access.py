"""Access control: roles and their permissions, API tokens (issued, rotated, revoked), principals."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from watchkeeper import tokens
from watchkeeper.errors import AuthError, InputError, NotFound
from watchkeeper.model import Change
from watchkeeper.service.core import Core
from watchkeeper.storage import audit, queries

#: A valid token is looked up again after this long (so a revocation takes effect within it).
TOKEN_CACHE_SECONDS = 5.0
#: A token's ``last_used_at`` is written at most this often (a write per request would cost).
LAST_USED_EVERY = timedelta(minutes=1)


class Role(StrEnum):
    INGEST = "ingest"
    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"


class Permission(StrEnum):
    INGEST = "ingest"
    READ = "read"
    OPERATE = "operate"
    APPROVE = "approve"
    ADMIN = "admin"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.INGEST: frozenset({Permission.INGEST}),
    Role.VIEWER: frozenset({Permission.READ}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.OPERATE}),
    Role.APPROVER: frozenset({Permission.READ, Permission.OPERATE, Permission.APPROVE}),
    Role.ADMIN: frozenset(Permission),
}


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    #: When the token stops working (None: never); checked again on every cached use.
    expires_at: datetime | None = None
    token_id: int | None = None

    def require(self, permission: Permission) -> None:
        if permission not in GRANTS[self.role]:
            raise AuthError(
                f"token {self.name!r} has role {self.role.value}, which may not {permission.value}",
                status=403, code="insufficient_scope",
            )


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just made: its secret is shown once and never stored."""

    id: int
    name: str
    role: Role
    secret: str
    expires_at: datetime | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Access(Core):
    """Tokens and who a request is."""

    def create_token(self, role: Role, name: str, actor: str, expires: str | None = None) -> str:
        """A new token's secret. ``expires``: a span (``90d``), ``never`` (ingest only) or None
        for the setting ``token_default_days``."""
        return self.issue_token(role, name, actor, expires).secret

    def issue_token(self, role: Role, name: str, actor: str, expires: str | None = None) -> IssuedToken:
        if not name.strip() or len(name) > 128:
            raise InputError("a token name is 1 to 128 characters")
        span = tokens.lifetime(expires, role.value, self.settings.token_default_days)
        secret = "wk_" + secrets.token_urlsafe(32)
        now = self.clock()
        expires_at = None if span is None else now + span
        with self.db.write() as conn:
            token_id = queries.add_token(conn, name, role.value, hash_token(secret), now, expires_at)
            audit.append(conn, actor, [Change("token.created", f"token:{token_id}", now, {
                "id": token_id, "name": name, "role": role.value, "expires_at": expires_at})])
        return IssuedToken(token_id, name, role, secret, expires_at)

    def token_infos(self) -> list[tokens.TokenInfo]:
        with self.db.read() as conn:
            return queries.list_tokens(conn)

    def revoke_token(self, token_id: int, actor: str) -> bool:
        now = self.clock()
        self._tokens.clear()
        with self.db.write() as conn:
            done = queries.revoke_token(conn, token_id, now)
            if done:
                change = Change("token.revoked", f"token:{token_id}", now, {"id": token_id})
                audit.append(conn, actor, [change])
        return done

    def rotate_token(self, token_id: int, actor: str, *, grace: str = "0s",
                     expires: str | None = None) -> IssuedToken:
        """A new secret with the same name and role. The old token is revoked now, or (``grace``
        like ``1h``, at most a week) keeps working until the grace period ends. The new token's
        lifetime is ``expires``, else the default — or never, if the old one never expired."""
        wait = tokens.parse_span(grace, what="--grace", limit=tokens.MAX_GRACE, allow_zero=True)
        now = self.clock()
        self._tokens.clear()
        with self.db.write() as conn:
            found = queries.list_tokens(conn, token_id)
            if not found or found[0].state(now) is tokens.TokenState.REVOKED:
                raise NotFound(f"no unrevoked token with id {token_id}; see 'watchkeeper token list'")
            old = found[0]
            if expires is None and old.expires_at is None:
                expires = tokens.NEVER
            span = tokens.lifetime(expires, old.role, self.settings.token_default_days)
            secret = "wk_" + secrets.token_urlsafe(32)
            expires_at = None if span is None else now + span
            new_id = queries.add_token(conn, old.name, old.role, hash_token(secret), now, expires_at)
            old_end = tokens.old_token_end(now, old.expires_at, wait)
            if old_end <= now:
                queries.revoke_token(conn, token_id, now)
            else:
                queries.expire_token(conn, token_id, old_end)
            audit.append(conn, actor, [Change("token.rotated", f"token:{token_id}", now, {
                "id": token_id, "new_id": new_id, "name": old.name, "role": old.role,
                "old_valid_until": old_end, "expires_at": expires_at})])
        return IssuedToken(new_id, old.name, Role(old.role), secret, expires_at)

    def cached_principal(self, authorization: str | None) -> Principal | None:
        """The principal of a recently verified token, without touching the database (or None)."""
        if not authorization or authorization[:7].lower() != "bearer ":
            return None
        cached = self._tokens.get(hash_token(authorization[7:].strip()))
        if cached is not None and time.monotonic() - cached[0] < TOKEN_CACHE_SECONDS:
            who = cached[1]
            if who.expires_at is None or who.expires_at > self.clock():
                return who
        return None

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise AuthError("missing 'Authorization: Bearer TOKEN' header")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("the Authorization header must be 'Bearer TOKEN'", code="invalid_request")
        digest = hash_token(token.strip())
        now = time.monotonic()
        cached = self.cached_principal(authorization)
        if cached is not None:
            return cached
        with self.db.read() as conn:
            row = queries.find_token(conn, digest)
        if row is None:
            self._tokens.pop(digest, None)
            raise AuthError("unknown or revoked token", code="invalid_token")
        at = self.clock()
        if row.expires_at is not None and row.expires_at <= at:
            self._tokens.pop(digest, None)
            raise AuthError(
                f"token {row.name!r} (id {row.id}) expired at {row.expires_at:%Y-%m-%d %H:%M:%S}Z; "
                f"an admin can issue a new one with 'watchkeeper token rotate {row.id}'", code="invalid_token")
        if row.last_used_at is None or at - row.last_used_at >= LAST_USED_EVERY:
            with self.db.write() as conn:  # at most once a minute per token: not on the hot path
                queries.touch_token(conn, row.id, at)
        principal = Principal(row.name, Role(row.role), row.expires_at, row.id)
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[digest] = (now, principal)
        return principal
