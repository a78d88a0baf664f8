"""The application service: what the API and the CLI both call.

It wires the pure stages to storage: authenticate, ingest (normalize → dedup → correlate →
persist + audit, in one transaction), incident lifecycle, KPIs, audit verification, dead letters.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson
import structlog

from watchkeeper import kpi, lifecycle, retention, tokens
from watchkeeper.audit import Verdict, verify
from watchkeeper.changes import ChangeLog
from watchkeeper.correlate import feedback
from watchkeeper.correlate.config import load_config as load_correlation
from watchkeeper.correlate.pipeline_config import PipelineConfig
from watchkeeper.errors import AuthError, ConfigError, Conflict, InputError, NotFound
from watchkeeper.governance import Governance
from watchkeeper.integrations.routing import Router
from watchkeeper.lifecycle import Action
from watchkeeper.model import Change, Event, Incident, IncidentStatus
from watchkeeper.pipeline import Pipeline, State
from watchkeeper.retention import Pruned
from watchkeeper.settings import Settings
from watchkeeper.sources import Source, registry
from watchkeeper.sources.limits import MAX_JSON_DEPTH, json_problem, size_problem
from watchkeeper.storage import Database, audit, ingest, queries
from watchkeeper.storage import governance as gov_store
from watchkeeper.storage.db import refused_data
from watchkeeper.storage.outbox import OutboxHook
from watchkeeper.telemetry import Metrics

#: A valid token is looked up again after this long (so a revocation takes effect within it).
TOKEN_CACHE_SECONDS = 5.0
#: A token's ``last_used_at`` is written at most this often (a write per request would cost).
LAST_USED_EVERY = timedelta(minutes=1)
#: Keep the pipeline state between requests while it holds at most this many alerts.
KEEP_ALERTS = 200_000
#: Accepted ingest content types (a missing header is taken as JSON: some senders set none; documented).
JSON_TYPES = ("application/json", "text/json")


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


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    incidents: list[int] = field(default_factory=list)
    opened: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Pending:
    """One accepted request body waiting for its group's commit."""

    source: str
    batch: list[Event]
    received_at: datetime
    actor: str
    started: float
    future: Future[IngestResult] = field(default_factory=Future)
    #: The batch's rows for the events table, made before the ingest lock is taken (None: under it).
    rows: list[tuple[Any, ...]] | None = None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Watchkeeper:
    def __init__(
        self, settings: Settings, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: bool = True,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.db = Database(settings.database_url)
        self.router = Router(settings.routes, settings.integrations.accepts())  # ConfigError: unknown targets
        self.db.audit_hook = OutboxHook(self.router.targets) if self.router else None
        self.sources: dict[str, Source] = registry()
        self.config = PipelineConfig(
            window=timedelta(seconds=settings.correlation_window_seconds),
            auto_resolve=settings.auto_resolve,
        )
        self._config_stamp: float | None = None
        self.reload_correlation(strict=True)
        self.metrics = Metrics(self.active_incidents) if metrics else None
        #: pipeline state kept between ingest requests: (audit head after our commit, state, loaded, config)
        self._kept: tuple[int, State, ingest.Loaded, PipelineConfig] | None = None
        self._tokens: dict[str, tuple[float, Principal]] = {}
        self._ingest_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: list[_Pending] = []
        self.governance = Governance.from_directory(self.db, clock, settings.runbooks_dir,
                                                    lease_seconds=settings.action_lease_seconds,
                                                    workers=settings.action_workers)
        self.changelog = ChangeLog(self.db, clock, settings.rca.change_window)

    # -- lifecycle -------------------------------------------------------------------------
    def upgrade(self) -> None:
        self.db.upgrade()

    def close(self) -> None:
        self.db.dispose()

    def reload_correlation(self, *, strict: bool = False) -> bool:
        """(Re)load ``correlation_config`` if it changed. At start-up an invalid file is fatal;
        later, a bad edit keeps the last good configuration and is logged. True if reloaded."""
        path = self.settings.correlation_config
        if path is None:
            return False
        try:
            stamp = path.stat().st_mtime
        except OSError as exc:
            if strict:
                raise ConfigError(f"cannot read correlation config {path}: {exc}") from exc
            return False
        if stamp == self._config_stamp:
            return False
        self._config_stamp = stamp
        try:
            self.config = load_correlation(path).pipeline(path.parent)
        except ConfigError as exc:
            if strict:
                raise
            structlog.get_logger("watchkeeper").error("correlation config not reloaded", error=str(exc))
            return False
        return True

    # -- auth ------------------------------------------------------------------------------
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

    # -- ingest ----------------------------------------------------------------------------
    def source(self, name: str) -> Source:
        try:
            return self.sources[name]
        except KeyError:
            raise InputError(
                f"unknown source {name!r}; known: {', '.join(sorted(self.sources))}", status=404
            ) from None

    def ingest(
        self, source_name: str, body: bytes, content_type: str | None, actor: str,
        started: float | None = None,
    ) -> IngestResult:
        """Normalize, correlate and commit one request body; reject it to the dead letters."""
        started = time.perf_counter() if started is None else started
        self.reload_correlation()
        received_at = self.clock()
        source = self.source(source_name)
        try:
            media = (content_type or "application/json").split(";")[0].strip().lower()
            if media not in JSON_TYPES and not media.endswith("+json"):
                raise InputError(
                    f"unsupported content type {media!r}; send application/json", status=415
                )
            if len(body) > self.settings.max_body_bytes:
                raise InputError(
                    f"body of {len(body)} bytes exceeds the limit of {self.settings.max_body_bytes}",
                    status=413,
                )
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise InputError(f"malformed JSON: {exc}", status=400) from exc
            problem = json_problem(payload, strings=b"\\u0000" in body) if _may_be_rejected(body) else None
            if problem is not None:
                raise InputError(f"the body cannot be accepted: {problem}")
            batch = source.normalize(payload, received_at)
            problem = size_problem(batch)
            if problem is not None:
                raise InputError(f"the body cannot be stored: {problem}")
        except InputError as exc:
            self.dead_letter(source_name, body, exc, content_type, size=len(body))
            raise
        # The event rows depend on this batch alone: made here, outside the ingest lock, while
        # other requests commit. (Correlation keys are not: a strategy may learn as it probes.)
        rows = ingest.event_rows(self.db.engine.dialect.name, batch)
        try:
            return self._submit(_Pending(source_name, batch, received_at, actor, started, rows=rows))
        except InputError as exc:  # the database refused this body alone (see _commit_isolating)
            self.dead_letter(source_name, body, exc, content_type, size=len(body))
            raise

    def ingest_events(self, source_name: str, events: list[Event], actor: str) -> IngestResult:
        """Events made in-process (the lab's monitor, a detector): committed like a request body."""
        return self._submit(_Pending(source_name, events, self.clock(), actor, time.perf_counter()))

    def _submit(self, item: _Pending) -> IngestResult:
        """Group commit: concurrent requests share one transaction. Whoever gets the lock commits
        everything pending; each caller returns (2xx) only once its events are committed."""
        with self._pending_lock:
            self._pending.append(item)
        with self._ingest_lock:
            if not item.future.done():
                with self._pending_lock:
                    group, self._pending = self._pending, []
                try:
                    for pending, outcome in zip(group, self._commit_isolating(group), strict=True):
                        if isinstance(outcome, BaseException):
                            pending.future.set_exception(outcome)
                        else:
                            pending.future.set_result(outcome)
                except BaseException as exc:
                    for pending in group:
                        if not pending.future.done():
                            pending.future.set_exception(exc)
        return item.future.result()

    def _commit_isolating(self, group: list[_Pending]) -> list[IngestResult | BaseException]:
        """Commit ``group``; if the database refuses its data (a value too long for its column or
        out of range), commit its halves apart (bisecting), so the body at fault fails alone with
        an InputError (422) and the innocent ones are committed. Any other failure (an outage)
        is every body's, as bisecting cannot help; each body's outcome is returned, never raised,
        so a half already committed keeps its results."""
        try:
            return list(self._commit(group))
        except Exception as exc:
            reason = refused_data(exc)
            if reason is None:
                return [exc] * len(group)
            if len(group) == 1:
                return [InputError(f"the database cannot store this body: {reason}")]
            half = len(group) // 2
            return self._commit_isolating(group[:half]) + self._commit_isolating(group[half:])

    def _commit(self, group: list[_Pending]) -> list[IngestResult]:
        kept, self._kept = self._kept, None  # taken: put back only after a successful commit
        every = [e for item in group for e in item.batch]
        rows = None if any(item.rows is None for item in group) else [r for item in group for r in item.rows or ()]
        results: list[IngestResult] = []
        with self.db.write() as conn:
            chain = audit.head(conn)
            if kept is None or kept[0] != chain.seq or kept[3] is not self.config:
                kept = None  # someone else wrote since (every change appends to the audit log)
            state, loaded = ingest.load_state(conn, every, self.keys(every), *(kept[1:3] if kept else ()))
            pipeline = Pipeline(self.config, loaded.new_incident_id)
            changes: list[list[Change]] = []
            for item in group:
                opened_before, repeats_before = set(state.new_incidents), state.repeats
                pipeline.observe_all(item.batch, state)
                changes.append(list(state.changes))
                state.changes.clear()
                changes[-1].append(Change("ingest.accepted", f"source:{item.source}", item.received_at, {
                    "source": item.source, "events": len(item.batch), "repeats": state.repeats - repeats_before}))
                touched = sorted({i for e in item.batch if (i := state.alerts[e.fingerprint].incident_id) is not None})
                results.append(IngestResult(len(item.batch), touched, sorted(state.new_incidents - opened_before)))
            ingest.persist(conn, every, state, loaded, rows)
            for item, item_changes in zip(group, changes, strict=True):
                records = audit.append(conn, item.actor, item_changes, chain)
        for item in group:
            if self.metrics is not None:
                self.metrics.events.labels(item.source).inc(len(item.batch))
                self.metrics.pipeline_seconds.labels(item.source).observe(time.perf_counter() - item.started)
        state.clear_changes()
        if len(state.alerts) <= KEEP_ALERTS:
            self._kept = (records[-1].seq, state, loaded, self.config)
        return results

    def keys(self, batch: list[Event]) -> set[str]:
        """The correlation keys a batch may probe or be indexed under."""
        return Pipeline(self.config, _no_ids).keys(batch)

    def dead_letter(
        self, source_name: str, body: bytes, error: InputError, content_type: str | None,
        *, size: int, truncated: bool = False,
    ) -> int:
        with self.db.write() as conn:
            dl_id = queries.add_dead_letter(
                conn, at=self.clock(), source=source_name, content_type=content_type,
                status=error.status, error=str(error), size=size, body=body, truncated=truncated,
            )
        if self.metrics is not None:
            self.metrics.dead_letters.labels(source_name, str(error.status)).inc()
        return dl_id

    def prune(self, days: float | None = None) -> Pruned:
        """Delete events and dead letters received more than ``days`` (default: the setting
        ``retention_days``) ago, a chunk per transaction; audited when anything was deleted."""
        days = self.settings.retention_days if days is None else days
        if days < 0:
            raise InputError(f"retention of {days} days: it must be 0 or more")
        now = self.clock()
        before = now - timedelta(days=days)
        counts = dict.fromkeys(retention.PRUNED, 0)
        for what in retention.PRUNED:
            while True:
                with self.db.write() as conn:
                    deleted = queries.delete_received_before(conn, what, before, retention.CHUNK)
                counts[what] += deleted
                if deleted < retention.CHUNK:
                    break
        pruned = retention.Pruned(before, counts["events"], counts["dead_letters"])
        if pruned.events or pruned.dead_letters:
            with self.db.write() as conn:
                audit.append(conn, "system:retention", [Change("retention.pruned", "retention", now, {
                    "before": before, "days": days, "events": pruned.events, "dead_letters": pruned.dead_letters})])
        return pruned

    def dead_letters(self, limit: int = 50) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return queries.list_dead_letters(conn, limit)

    # -- incidents -------------------------------------------------------------------------
    def incidents(
        self, *, status: str | None = None, service: str | None = None,
        since: datetime | None = None, limit: int = 100, offset: int = 0,
    ) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            found = queries.list_incidents(
                conn, status=status, service=service, since=since, limit=limit, offset=offset
            )
            members = queries.incident_alerts_of(conn, [i.id for i in found])
            causes = gov_store.top_causes_of(conn, [i.id for i in found])
        return [{**incident_view(i, members[i.id]), "causes": causes[i.id]} for i in found]

    def incident(self, incident_id: int) -> dict[str, Any]:
        with self.db.read() as conn:
            found = queries.get_incident(conn, incident_id)
            members = queries.incident_alerts_of(conn, [incident_id])[incident_id]
            timeline = [
                {"seq": r.seq, "at": r.at, "actor": r.actor, "kind": r.kind, **dict(r.payload)}
                for r in audit.records(conn, subject=f"incident:{incident_id}")
            ]
            causes = [asdict(c) for c in gov_store.causes_of(conn, incident_id)]
            decisions = gov_store.decisions_of(conn, incident_id)
            actions = gov_store.actions_of(conn, incident_id)
            changes = self.changelog.of_incident(conn, found)
        return {**incident_view(found, members), "causes": causes, "decisions": decisions, "actions": actions,
                "changes": changes, "timeline": timeline}

    def act(
        self, incident_id: int, action: Action, actor: str, text: str = "", *,
        fixed_by: str | None = None, harmful: list[str] | None = None,
    ) -> dict[str, Any]:
        """Apply a human lifecycle action and audit it, in one transaction. Resolving may say what
        fixed the incident (a runbook id, ``manual`` or ``nothing``) and which runbooks would have
        harmed: that scores the incident's shadow decisions."""
        now = self.clock()
        with self.db.write() as conn:
            found = queries.get_incident(conn, incident_id)
            change = lifecycle.apply(found, action, actor, now, text)
            changes = [change] if change is not None else []
            if change is not None:
                ingest.save_incident(conn, found)
            if action is Action.RESOLVE:
                changes += self.governance.score_shadow(conn, incident_id, fixed_by, harmful or [], actor)
            audit.append(conn, actor, changes)
        return self.incident(incident_id)

    # -- silences --------------------------------------------------------------------------
    def add_silence(
        self, matchers: list[str | dict[str, Any]], ends_at: datetime, actor: str, comment: str = "",
        starts_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Mute alerts matching every matcher between ``starts_at`` (default now) and ``ends_at``."""
        from watchkeeper.suppress import parse_matcher

        now = self.clock()
        starts_at = starts_at or now
        parsed = [parse_matcher(m) for m in matchers]
        if not parsed:
            raise InputError("a silence needs at least one matcher")
        if ends_at <= starts_at:
            raise InputError("a silence must end after it starts")
        with self.db.write() as conn:
            silence_id = queries.add_silence(
                conn, matchers=[str(m) for m in parsed], starts_at=starts_at, ends_at=ends_at, created_by=actor,
                comment=comment, created_at=now)
            audit.append(conn, actor, [Change("silence.created", f"silence:{silence_id}", now, {
                "id": silence_id, "matchers": [str(m) for m in parsed], "starts_at": starts_at, "ends_at": ends_at,
                "comment": comment})])
        return {"id": silence_id, "matchers": [str(m) for m in parsed], "starts_at": starts_at, "ends_at": ends_at,
                "created_by": actor, "comment": comment}

    def silences(self, *, active: bool = True) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return queries.list_silences(conn, self.clock() if active else None)

    def expire_silence(self, silence_id: int, actor: str) -> None:
        now = self.clock()
        with self.db.write() as conn:
            if not queries.end_silence(conn, silence_id, now):
                raise NotFound(f"no active silence {silence_id}")
            audit.append(conn, actor, [Change("silence.expired", f"silence:{silence_id}", now, {"id": silence_id})])

    # -- human corrections to grouping --------------------------------------------------------
    def _move(self, conn: Any, fingerprint: str, source: Incident, target: Incident, actor: str, now: datetime,
              detail: str) -> Change:
        alert = queries.get_alert(conn, fingerprint)
        change = feedback.move(alert, source, target, actor, now, self._index_keys(alert))
        ingest.save_alert(conn, alert)
        queries.move_membership(conn, fingerprint, source.id, target.id, now, detail)
        return change

    def _index_keys(self, alert: Any) -> list[str]:
        return Pipeline(self.config, _no_ids).correlate.index_keys(alert)

    def move_alert(self, fingerprint: str, target_id: int, actor: str) -> dict[str, Any]:
        """Move one alert to another incident (the correlator put it in the wrong one)."""
        now = self.clock()
        with self.db.write() as conn:
            alert = queries.get_alert(conn, fingerprint)
            if alert.incident_id is None:
                raise Conflict(f"alert {fingerprint} is not in any incident")
            source, target = queries.get_incident(conn, alert.incident_id), queries.get_incident(conn, target_id)
            change = self._move(conn, fingerprint, source, target, actor, now,
                                f"moved by {actor} from incident {source.id}")
            ingest.save_incidents(conn, [source, target])
            audit.append(conn, actor, [change])
        return self.incident(target_id)

    def merge(self, source_id: int, target_id: int, actor: str) -> dict[str, Any]:
        """Merge ``source`` into ``target`` (they were one incident); ``source`` resolves."""
        now = self.clock()
        with self.db.write() as conn:
            source, target = queries.get_incident(conn, source_id), queries.get_incident(conn, target_id)
            if source_id == target_id:
                raise InputError("an incident cannot be merged into itself")
            moved = queries.member_fingerprints(conn, source_id)
            for fingerprint in moved:
                self._move(conn, fingerprint, source, target, actor, now,
                           f"merged by {actor} from incident {source_id}")
            if source.is_active:
                source.status, source.resolved_at = IncidentStatus.RESOLVED, now
            ingest.save_incidents(conn, [source, target])
            audit.append(conn, actor, [Change("incident.merged", f"incident:{target_id}", now, {
                "from": source_id, "into": target_id, "incident_id": target_id, "fingerprints": moved,
                "correction": "merged"}),
                Change("incident.resolved", f"incident:{source_id}", now, {
                    "id": source_id, "reason": "merged", "detail": f"merged into incident {target_id} by {actor}"})])
        return self.incident(target_id)

    def split(self, incident_id: int, fingerprints: list[str], actor: str) -> dict[str, Any]:
        """Split ``fingerprints`` off ``incident_id`` into a new incident (they were unrelated)."""
        now = self.clock()
        with self.db.write() as conn:
            source = queries.get_incident(conn, incident_id)
            members = set(queries.member_fingerprints(conn, incident_id))
            missing = [f for f in fingerprints if f not in members]
            if not fingerprints or missing:
                raise InputError(f"alerts not in incident {incident_id}: {', '.join(missing) or '(none given)'}")
            if len(set(fingerprints)) == len(members):
                raise InputError("splitting off every alert would leave the incident empty; use merge or move")
            first = queries.get_alert(conn, fingerprints[0])
            new = Incident(id=ingest.next_incident_id(conn), title=first.summary or first.name,
                           status=IncidentStatus.OPEN, severity=first.severity, services=[first.service],
                           opened_at=now, last_activity_at=now, started_at=min(first.first_seen, now))
            ingest.insert_incident(conn, new)
            changes = [Change("incident.opened", f"incident:{new.id}", now, {
                "id": new.id, "title": new.title, "services": new.services, "severity": new.severity.value,
                "reason": "human", "detail": f"split by {actor} from incident {incident_id}"})]
            for fingerprint in dict.fromkeys(fingerprints):
                changes.append(self._move(conn, fingerprint, source, new, actor, now,
                                          f"split by {actor} from incident {incident_id}"))
            ingest.save_incidents(conn, [source, new])
            changes.append(Change("incident.split", f"incident:{incident_id}", now, {
                "id": incident_id, "incident_id": incident_id, "into": new.id, "fingerprints": fingerprints,
                "correction": "split"}))
            audit.append(conn, actor, changes)
        return self.incident(new.id)

    def active_incidents(self) -> int:
        with self.db.read() as conn:
            return queries.count_active_incidents(conn)

    # -- KPIs and audit --------------------------------------------------------------------
    def kpis(self, start: datetime | None = None, end: datetime | None = None) -> kpi.KpiReport:
        with self.db.read() as conn:
            found = queries.incidents_opened_between(conn, start, end)
            events = queries.count_between(conn, "events", start, end)
            alerts = queries.count_between(conn, "alerts", start, end)
            kept = queries.count_auto_joins(conn, start, end)
            moved = queries.count_audit(conn, "alert.moved", start, end)
            merged = queries.count_audit(conn, "incident.merged", start, end)
        return kpi.report(found, events, alerts, start, end, grouping=kpi.grouping(kept, moved, merged))

    def verify_audit(self) -> Verdict:
        with self.db.read() as conn:
            return verify(audit.records(conn))


def _no_ids() -> int:
    raise AssertionError("computing keys never opens an incident")


def _may_be_rejected(body: bytes) -> bool:
    """Whether ``json_problem`` could object to this body: it holds a NUL escape, or enough
    brackets to nest deeper than the limit (counted in C; most bodies need no walk)."""
    return b"\\u0000" in body or body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH


def incident_view(incident: Incident, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": incident.id, "title": incident.title, "status": incident.status.value,
        "severity": incident.severity.value, "services": incident.services,
        "opened_at": incident.opened_at, "acknowledged_at": incident.acknowledged_at,
        "mitigated_at": incident.mitigated_at, "resolved_at": incident.resolved_at,
        "started_at": incident.started_at, "first_acknowledged_at": incident.first_acknowledged_at,
        "first_mitigated_at": incident.first_mitigated_at,
        "last_activity_at": incident.last_activity_at, "assignee": incident.assignee,
        "firing_alerts": incident.firing_count, "alert_count": incident.alert_count,
        "alerts": alerts,
    }
