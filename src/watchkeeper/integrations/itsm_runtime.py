"""ServiceNow, Jira and Teams inside a running Watchkeeper: the inbound side of each ITSM target
(the business rule's calls, Jira's webhook, ServiceNow polling on a thread of its own) and the
console's secret for Teams' approval links.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from prometheus_client import Counter

from watchkeeper.errors import AuthError, InputError
from watchkeeper.governance.loop import Loop
from watchkeeper.integrations.base import Notifier
from watchkeeper.integrations.config import IntegrationsConfig
from watchkeeper.integrations.itsm import Result
from watchkeeper.integrations.jira.config import JiraConfig
from watchkeeper.integrations.jira.mapping import signature_ok
from watchkeeper.integrations.jira.notifier import JiraNotifier
from watchkeeper.integrations.jira.sync import JiraSync
from watchkeeper.integrations.servicenow.config import ServiceNowConfig
from watchkeeper.integrations.servicenow.notifier import ServiceNowNotifier
from watchkeeper.integrations.servicenow.sync import ServiceNowSync
from watchkeeper.integrations.teams.notifier import TeamsNotifier
from watchkeeper.storage import Database
from watchkeeper.storage import itsm as store
from watchkeeper.telemetry import Metrics

T = TypeVar("T")
#: How long the key of an applied inbound change is kept.
KEEP_KEYS = timedelta(days=30)


def _counter(metrics: Metrics) -> Counter:
    """``watchkeeper_itsm_inbound_changes_total``, made once per service's metrics."""
    return metrics.counter(
        "watchkeeper_itsm_inbound_changes",
        "Changes made in ServiceNow or Jira that came back, "
        "by target and outcome (applied | no_change | duplicate | unlinked | refused)",
        ["target", "outcome"],
    )


class Itsm:
    """The ITSM targets of one configuration, ready to take changes back."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime],
        config: IntegrationsConfig,
        notifiers: Mapping[str, Notifier],
        metrics: Metrics | None = None,
    ) -> None:
        self.servicenow: dict[str, ServiceNowSync] = {}
        self.jira: dict[str, JiraSync] = {}
        for name, target in config.targets.items():
            notifier = notifiers.get(name)
            if isinstance(target, ServiceNowConfig) and isinstance(notifier, ServiceNowNotifier):
                self.servicenow[name] = ServiceNowSync(db, clock, name, target, notifier)
            elif isinstance(target, JiraConfig):
                self.jira[name] = JiraSync(
                    db, clock, name, target, notifier if isinstance(notifier, JiraNotifier) else None
                )
        self.teams = [n for n in notifiers.values() if isinstance(n, TeamsNotifier)]
        if metrics is not None:
            counter = _counter(metrics)
            for name, snow in self.servicenow.items():
                snow.observe = partial(_count, counter, name)
            for name, jira in self.jira.items():
                jira.observe = partial(_count, counter, name)
        self.db, self.clock = db, clock
        self._loops: list[Loop] = []

    def bind_console(self, secret: Callable[[], bytes], link_hours: float, clock: Callable[[], datetime]) -> None:
        for notifier in self.teams:
            notifier.bind(secret, link_hours, clock)

    def servicenow_target(self, name: str | None) -> ServiceNowSync:
        return _pick(self.servicenow, name, "ServiceNow")

    def jira_target(self, name: str | None, raw: bytes, signature: str | None) -> JiraSync:
        """The Jira target a webhook call is for. With ``signature`` (``X-Hub-Signature``), the
        target whose webhook secret signed the body — an AuthError when none did."""
        if signature is None:
            return _pick(self.jira, name, "Jira")
        for target_name, sync in self.jira.items():
            secret = sync.config.webhook_secret
            if (
                (name is None or name == target_name)
                and secret is not None
                and signature_ok(secret.get_secret_value().encode(), raw, signature)
            ):
                return sync
        raise AuthError(
            "the X-Hub-Signature does not match the webhook secret of any Jira integration", code="invalid_token"
        )

    # -- polling -----------------------------------------------------------------------------
    def prune(self) -> int:
        """Forget inbound keys older than :data:`KEEP_KEYS` (senders retry for hours, not weeks);
        0 so the loop waits its hour."""
        with self.db.write() as conn:
            store.forget_before(conn, self.clock() - KEEP_KEYS)
        return 0

    def start(self) -> None:
        if self.servicenow or self.jira:
            loop = Loop("itsm-keys", self.prune, 3600.0)
            loop.start()
            self._loops.append(loop)
        for name, sync in self.servicenow.items():
            if sync.config.poll:
                loop = Loop(f"servicenow-poll-{name}", sync.poll, sync.config.poll_interval)
                loop.start()
                self._loops.append(loop)
        for name, jira in self.jira.items():
            if jira.config.poll and jira.notifier is not None:
                loop = Loop(f"jira-poll-{name}", jira.poll, jira.config.poll_interval)
                loop.start()
                self._loops.append(loop)

    def stop(self) -> None:
        for loop in self._loops:
            loop.stop()
        self._loops.clear()


def _count(counter: Counter, target: str, results: list[Result]) -> None:
    for result in results:
        counter.labels(target, result.outcome.value).inc()


def _pick(found: dict[str, T], name: str | None, what: str) -> T:
    if not found:
        raise InputError(f"no {what} integration is configured (integrations.targets)", status=404)
    if name is not None:
        if name not in found:
            raise InputError(
                f"no {what} integration named {name!r}; configured: {', '.join(sorted(found))}", status=404
            )
        return found[name]
    if len(found) > 1:
        raise InputError(
            f"several {what} integrations are configured ({', '.join(sorted(found))}): name one with ?target=NAME"
        )
    return next(iter(found.values()))
