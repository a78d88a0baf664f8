"""The integrations inside a running Watchkeeper: the notifiers built from the settings, the
outbox delivery thread, the operators' outbox commands, and Slack clicks turned into the same
service calls the API makes (audited like them).

``serve`` builds one :class:`Integrations` next to the service; the CLI builds one to list and
retry the outbox.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from watchkeeper.errors import AuthError, InputError, WatchkeeperError
from watchkeeper.integrations import registry
from watchkeeper.integrations.base import Notifier
from watchkeeper.integrations.delivery import Delivery
from watchkeeper.integrations.slack.config import SlackConfig
from watchkeeper.integrations.slack.interactivity import ROLES, Click, Verb, ephemeral, parse, verify
from watchkeeper.lifecycle import Action
from watchkeeper.model import Change
from watchkeeper.service import Watchkeeper
from watchkeeper.storage import audit
from watchkeeper.storage import outbox as store

log = structlog.get_logger("watchkeeper.integrations")

#: Slack clicks remembered to drop Slack's retries of the same request (per process).
SEEN_CLICKS = 10_000
#: Refused Slack requests audited per minute at most (the rest are counted in the log): a flood
#: of forged requests must not flood the audit log.
REFUSALS_PER_MINUTE = 60
#: Where a Slack ``response_url`` may point (anything else is never called: no request forgery).
SLACK_HOOKS = ("https://hooks.slack.com/",)


class _OutboxMessages(Collector):
    """``watchkeeper_outbox_messages{target, status}``: what waits, what died; and
    ``watchkeeper_outbox_oldest_pending_age_seconds{target}``: how long the oldest message still
    waiting has waited (read at scrape; labels are target names only, never a URL or a secret)."""

    def __init__(
        self, counts: Callable[[], dict[tuple[str, str], int]], health: Callable[[], dict[str, Any]] | None = None
    ) -> None:
        self.counts = counts
        self.health = health

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "watchkeeper_outbox_messages",
            "Outbox messages by target and status (pending | delivered | dead)",
            labels=["target", "status"],
        )
        try:
            found = self.counts()
        except Exception:  # a scrape during a database outage: no figure rather than a 500
            found = {}
        for (target, status), n in sorted(found.items()):
            family.add_metric([target, status], n)
        yield family
        age = GaugeMetricFamily(
            "watchkeeper_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox message still waiting to be delivered, by target (0: none waiting)",
            labels=["target"],
        )
        try:
            targets = self.health()["targets"] if self.health is not None else {}
        except Exception:
            targets = {}
        for target, entry in sorted(targets.items()):
            age.add_metric([target], entry["oldest_pending_age_seconds"] or 0.0)
        yield age


_GAUGES: weakref.WeakKeyDictionary[CollectorRegistry, _OutboxMessages] = weakref.WeakKeyDictionary()


def _register_gauge(
    registry_: CollectorRegistry,
    counts: Callable[[], dict[tuple[str, str], int]],
    health: Callable[[], dict[str, Any]] | None = None,
) -> None:
    if registry_ in _GAUGES:
        _GAUGES[registry_].counts = counts  # the newest app on this service reports
        _GAUGES[registry_].health = health
        return
    _GAUGES[registry_] = _OutboxMessages(counts, health)
    registry_.register(_GAUGES[registry_])


@dataclass(frozen=True, slots=True)
class SlackAnswer:
    """What the interactivity endpoint sends back at once, and the work to do after answering."""

    body: dict[str, Any] | None
    later: Callable[[], None] | None = None


class Integrations:
    def __init__(
        self,
        service: Watchkeeper,
        *,
        notifiers: dict[str, Notifier] | None = None,
        wall: Callable[[], float] = time.time,
        response_hooks: tuple[str, ...] = SLACK_HOOKS,
        **options: Any,
    ) -> None:
        self.service = service
        self.config = service.settings.integrations
        self.redactor = registry.redactor(self.config)
        self.notifiers = notifiers if notifiers is not None else registry.build_all(self.config, **options)
        self.delivery = Delivery(
            service.db,
            self.notifiers,
            self.config.outbox,
            service.clock,
            redactor=self.redactor,
            metrics=service.metrics,
            keep_days=service.settings.retention_days,
        )
        if service.metrics is not None and self.notifiers:
            _register_gauge(service.metrics.registry, self.delivery.counts, self.delivery.health)
        self.wall = wall
        self.response_hooks = response_hooks
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_lock = threading.Lock()
        self._refusals: list[float] = []
        self._http: httpx.Client | None = None  # for Slack's response_url, made on first use

    @property
    def slack(self) -> dict[str, SlackConfig]:
        return {n: t for n, t in self.config.targets.items() if isinstance(t, SlackConfig)}

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the delivery thread (when any target is configured; messages wait otherwise)."""
        if self.notifiers:
            self.delivery.start()

    def stop(self) -> None:
        self.delivery.stop()
        if self._http is not None:
            self._http.close()

    # -- the outbox --------------------------------------------------------------------------
    def messages(self, **filters: Any) -> list[dict[str, Any]]:
        with self.service.db.read() as conn:
            return store.messages(conn, **filters)

    def retry(self, message_id: int, actor: str) -> dict[str, Any]:
        """Make a dead or waiting message due now (audited)."""
        now = self.service.clock()
        with self.service.db.write() as conn:
            found = store.retry(conn, message_id, now)
            audit.append(
                conn,
                actor,
                [
                    Change(
                        "outbox.retried",
                        f"incident:{found['incident_id']}",
                        now,
                        {"id": message_id, "incident_id": found["incident_id"], "target": found["target"]},
                    )
                ],
            )
        self.delivery.wake()
        return found

    # -- Slack clicks --------------------------------------------------------------------------
    def slack_click(self, headers: dict[str, str], raw: bytes) -> SlackAnswer:
        """Verify and read a click; answer at once (Slack wants an answer within 3 s) and leave the
        vote or the acknowledgement, and the ephemeral reply, to ``later``. An unverifiable request
        raises an AuthError (401), audited (rate-limited); a malformed one an InputError (400)."""
        slack = self.slack
        if not slack:
            raise InputError("no Slack integration is configured", status=404)
        names = list(slack)
        try:
            index = verify(
                [slack[n].signing_secret.get_secret_value() for n in names],
                headers,
                raw,
                self.wall(),
                min(t.max_age_seconds for t in slack.values()),
            )
        except AuthError as exc:
            self._refused(str(exc.code), str(exc), headers)
            raise
        target, config = names[index], slack[names[index]]
        click = parse(raw)
        if click is None or click.verb is None:
            return SlackAnswer(None)
        if not self._first(click.key):
            return SlackAnswer(None)  # Slack retried a request we already took
        user = config.users.get(click.user_id)
        if user is None:
            self._audit(
                "slack.unmapped",
                f"integration:{target}",
                {"target": target, "slack_user": click.user_id, "verb": click.verb.value, "value": click.value},
            )
            text = (
                f"Your Slack user ({click.user_id}) is not mapped to a Watchkeeper user, so nothing was done. "
                f"Ask an admin to add it under integrations.targets.{target}.users."
            )
            return SlackAnswer(None, lambda: self._reply(click, text))
        if user.role not in ROLES[click.verb]:
            self._audit(
                "slack.refused",
                f"integration:{target}",
                {
                    "target": target,
                    "slack_user": click.user_id,
                    "user": user.name,
                    "role": user.role,
                    "verb": click.verb.value,
                    "reason": "role",
                },
            )
            text = f"{user.name} has role {user.role}, which may not {click.verb.value}; nothing was done."
            return SlackAnswer(None, lambda: self._reply(click, text))
        return SlackAnswer(None, lambda: self._act(target, click, user.name))

    def _act(self, target: str, click: Click, name: str) -> None:
        actor = f"slack:{name}"
        try:
            ident = click.target_id()
            self._audit(
                "slack.click",
                f"integration:{target}",
                {
                    "target": target,
                    "slack_user": click.user_id,
                    "user": name,
                    "verb": click.verb.value if click.verb else None,
                    "id": ident,
                    "channel": click.channel,
                    "message_ts": click.message_ts,
                },
            )
            if click.verb is Verb.ACKNOWLEDGE:
                self.service.act(ident, Action.ACKNOWLEDGE, actor, "acknowledged from Slack")
                text = f"Incident #{ident} acknowledged by {name}."
            else:
                approve = click.verb is Verb.APPROVE
                voted = self.service.governance.vote(ident, actor, approve, "from Slack")
                text = (
                    f"{name} {'approved' if approve else 'rejected'} approval #{ident}: now {voted.get('status', '?')}."
                )
        except WatchkeeperError as exc:  # four-eyes, already decided, expired, unknown id
            text = f"Nothing was done: {exc}"
        except Exception:
            log.exception("Slack click failed", target=target, verb=str(click.verb))
            text = "Nothing was done: Watchkeeper failed on this click (see its log)."
        self._reply(click, text)

    def _reply(self, click: Click, text: str) -> None:
        url = click.response_url
        if not url.startswith(self.response_hooks):
            log.warning("Slack response_url not called (not a Slack hooks URL)", host=url.split("/")[2:3])
            return
        if self._http is None:
            self._http = httpx.Client(timeout=5.0, follow_redirects=False)
        try:
            self._http.post(url, json=ephemeral(text))
        except httpx.HTTPError as exc:
            log.warning("Slack response_url failed", error=type(exc).__name__)

    def _first(self, key: str) -> bool:
        with self._seen_lock:
            if key in self._seen:
                return False
            self._seen[key] = None
            while len(self._seen) > SEEN_CLICKS:
                self._seen.popitem(last=False)
            return True

    def _refused(self, code: str, text: str, headers: dict[str, str]) -> None:
        now = time.monotonic()
        self._refusals = [t for t in self._refusals if now - t < 60.0]
        if len(self._refusals) >= REFUSALS_PER_MINUTE:
            log.warning("Slack request refused (not audited: too many this minute)", reason=code)
            return
        self._refusals.append(now)
        stamp = next((v for k, v in headers.items() if k.lower() == "x-slack-request-timestamp"), None)
        self._audit(
            "slack.refused", "integration:slack", {"reason": code, "detail": text, "timestamp": (stamp or "")[:20]}
        )

    def _audit(self, kind: str, subject: str, payload: dict[str, Any]) -> None:
        now = self.service.clock()
        with self.service.db.write() as conn:
            audit.append(conn, "system:slack", [Change(kind, subject, now, payload)])
