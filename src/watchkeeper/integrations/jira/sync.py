"""Changes made in Jira, back to our incidents, two ways that feed
:func:`watchkeeper.integrations.itsm.apply` alike:

- its webhook (``POST /api/v1/integrations/jira/webhook``): Jira retries a webhook it got no 2xx
  for; the keys (changelog and comment ids) make a retry a no-op;
- polling, the fallback (a webhook Jira gave up on, a Watchkeeper that was down): every
  ``poll_interval``, our issues updated since a cursor kept in the database
  (``GET /rest/api/3/search/jql``, JQL ``labels = "watchkeeper" AND updated >= …``, with their
  changelog and comments); each changelog entry and comment since then is read as the webhook
  would have sent it, with the same key, so what the webhook already brought applies once, and
  what our own account did never comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection

from watchkeeper.integrations import itsm, itsm_apply
from watchkeeper.integrations.base import DeliveryError
from watchkeeper.integrations.jira.config import JiraConfig
from watchkeeper.integrations.jira.mapping import (
    SYSTEM,
    claimed_incident,
    parse_time,
    poll_jql,
    poll_payloads,
    webhook_changes,
)
from watchkeeper.integrations.jira.notifier import JiraNotifier
from watchkeeper.storage import Database
from watchkeeper.storage import itsm as store
from watchkeeper.storage import outbox as outbox_store

log = structlog.get_logger("watchkeeper.jira")
#: A first poll looks this far back (a change seen twice is applied once).
FIRST_LOOKBACK = timedelta(days=1)
#: Each poll reads again this much before its cursor: a change Jira indexed late is not skipped
#: (JQL reads to the minute; the keys make a change read twice apply once).
OVERLAP = timedelta(minutes=2)
PAGE = 50
MAX_PAGES = 20
POLL_FIELDS = "status,assignee,labels,updated,comment"


class JiraSync:
    """Inbound for one Jira target (``name`` in ``integrations.targets``)."""

    def __init__(self, db: Database, clock: Callable[[], datetime], name: str, config: JiraConfig,
                 notifier: JiraNotifier | None = None) -> None:
        self.db = db
        self.clock = clock
        self.name = name
        self.config = config
        self.notifier = notifier
        self.cursor_name = f"{SYSTEM}:{name}"
        self.last_error: str | None = None
        #: told every batch of results (serve counts them on /metrics)
        self.observe: Callable[[list[itsm.Result]], None] = lambda _results: None

    def vouch(self, conn: Connection, claimed: int, external_id: str) -> bool:
        """Whether we created issue ``external_id`` (Jira's numeric id) for incident ``claimed``."""
        ref = outbox_store.get_ref(conn, self.name, claimed)
        return ref is not None and ref.get("id") == external_id

    def _sent(self, conn: Connection, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        issue = payload.get("issue")
        fields = issue.get("fields") if isinstance(issue, Mapping) else None
        claimed = claimed_incident(fields.get("labels") if isinstance(fields, Mapping) else None)
        ref = outbox_store.get_ref(conn, self.name, claimed) if claimed is not None else None
        return (ref or {}).get("sent") or {}

    def receive(self, payload: Mapping[str, Any]) -> list[itsm.Result]:
        with self.db.read() as conn:
            sent = self._sent(conn, payload)
        changes = webhook_changes(payload, self.config, sent)
        results = itsm_apply.apply(self.db, self.clock, changes, self.vouch) if changes else []
        self.observe(results)
        return results

    # -- polling -----------------------------------------------------------------------------
    def poll(self) -> int:
        """One poll: our issues updated since the cursor, their changelog entries and comments
        since then; the number of changes applied. A Jira that cannot be reached is logged (once
        until it answers again), not raised."""
        if self.notifier is None:
            return 0
        now = self.clock()
        with self.db.read() as conn:
            cursor = store.cursor(conn, self.cursor_name)
        since = cursor - OVERLAP if cursor is not None else now - FIRST_LOOKBACK
        try:
            issues = self._issues(since)
        except DeliveryError as exc:
            if self.last_error != str(exc):
                log.warning("jira poll failed", target=self.name, error=str(exc))
            self.last_error = str(exc)
            return 0
        self.last_error = None
        with self.db.read() as conn:
            changes = [change for issue in issues for payload in poll_payloads(issue, since)
                       for change in webhook_changes(payload, self.config, self._sent(conn, payload))]
        results = itsm_apply.apply(self.db, self.clock, changes, self.vouch) if changes else []
        self.observe(results)
        stamps = [t for t in (parse_time((i.get("fields") or {}).get("updated")) for i in issues) if t is not None]
        newest = max([cursor or since, *stamps])  # read oldest first: a truncated read goes on from here
        with self.db.write() as conn:
            store.set_cursor(conn, self.cursor_name, newest, now)
        return sum(1 for r in results if r.outcome is itsm.Outcome.APPLIED)

    def _issues(self, since: datetime) -> list[Mapping[str, Any]]:
        assert self.notifier is not None
        found: list[Mapping[str, Any]] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            params = {"jql": poll_jql(self.config.labels, since), "fields": POLL_FIELDS, "expand": "changelog",
                      "maxResults": str(PAGE)}
            if token:
                params["nextPageToken"] = token
            page = self.notifier.call("GET", "/search/jql", params=params)
            issues = page.get("issues") if isinstance(page, Mapping) else None
            found += [i for i in issues or [] if isinstance(i, Mapping) and i.get("id")]
            token = page.get("nextPageToken") if isinstance(page, Mapping) else None
            if not token or page.get("isLast"):
                break
        return found
