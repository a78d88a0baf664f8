"""Changes made in ServiceNow, back to our incidents: pushed by a business rule's outbound REST
call (``POST /api/v1/integrations/servicenow/inbound``), and polled on ``sys_updated_on`` as the
fallback when a call is lost. Both feed :func:`watchkeeper.integrations.itsm.apply`, whose keys
make the second sighting of a change a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection

from watchkeeper.integrations import itsm, itsm_apply
from watchkeeper.integrations.base import DeliveryError
from watchkeeper.integrations.servicenow.config import ServiceNowConfig
from watchkeeper.integrations.servicenow.mapping import (
    POLL_FIELDS,
    SYSTEM,
    claimed_incident,
    journal_changes,
    record_changes,
    value,
)
from watchkeeper.integrations.servicenow.notifier import TABLE, ServiceNowNotifier
from watchkeeper.storage import Database
from watchkeeper.storage import itsm as store
from watchkeeper.storage import outbox as outbox_store

log = structlog.get_logger("watchkeeper.servicenow")
#: A first poll looks this far back (a change seen twice is applied once).
FIRST_LOOKBACK = timedelta(days=1)
PAGE = 100
MAX_PAGES = 20
#: Work notes read per poll (the oldest first; the next poll reads on from the last).
NOTES = 500
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def parse_time(text: str) -> datetime | None:
    """ServiceNow's ``2026-11-22 06:10:00`` (UTC for an integration user set to UTC)."""
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _newest(since: datetime, rows: Sequence[Mapping[str, Any]], key: str) -> datetime:
    """The newest ``key`` time in ``rows``, or ``since``. The next poll reads from it again
    (``>=``): rows of that second a truncated read cut off are read then."""
    stamps = [t for t in (parse_time(value(r, key)) for r in rows) if t is not None]
    return max([since, *stamps])


class ServiceNowSync:
    """Inbound for one ServiceNow target (``name`` in ``integrations.targets``)."""

    def __init__(self, db: Database, clock: Callable[[], datetime], name: str, config: ServiceNowConfig,
                 notifier: ServiceNowNotifier) -> None:
        self.db = db
        self.clock = clock
        self.name = name
        self.config = config
        #: told every batch of results (serve counts them on /metrics)
        self.observe: Callable[[list[itsm.Result]], None] = lambda _results: None
        self.notifier = notifier
        self.cursor_name = f"{SYSTEM}:{name}"
        self.last_error: str | None = None

    def vouch(self, conn: Connection, claimed: int, external_id: str) -> bool:
        """Whether we created ticket ``external_id`` for incident ``claimed``."""
        ref = outbox_store.get_ref(conn, self.name, claimed)
        return ref is not None and ref.get("sys_id") == external_id

    def _sent(self, conn: Connection, record: Mapping[str, Any]) -> Mapping[str, Any]:
        claimed = claimed_incident(value(record, "correlation_id"))
        ref = outbox_store.get_ref(conn, self.name, claimed) if claimed is not None else None
        return (ref or {}).get("sent") or {}

    def receive(self, records: Sequence[Mapping[str, Any]]) -> list[itsm.Result]:
        """Apply what the business rule sent (one record or several)."""
        with self.db.read() as conn:
            changes = [c for r in records for c in record_changes(r, self.config, self._sent(conn, r))]
        results = itsm_apply.apply(self.db, self.clock, changes, self.vouch)
        self.observe(results)
        return results

    # -- polling -----------------------------------------------------------------------------
    def poll(self) -> int:
        """One poll: records updated since the cursor and work notes written since; the number
        of changes applied. A ServiceNow that cannot be reached is logged, not raised."""
        now = self.clock()
        with self.db.read() as conn:
            since = store.cursor(conn, self.cursor_name) or now - FIRST_LOOKBACK
        try:
            records = self._records(since)
            notes = self._notes(since)
        except DeliveryError as exc:
            if self.last_error != str(exc):
                log.warning("servicenow poll failed", target=self.name, error=str(exc))
            self.last_error = str(exc)
            return 0
        self.last_error = None
        claimed = {value(r, "sys_id"): claimed_incident(value(r, "correlation_id")) for r in records}
        numbers = {value(r, "sys_id"): value(r, "number") for r in records}
        with self.db.read() as conn:
            linked = {link.external_id: link for link in store.links_by_external(
                conn, SYSTEM, sorted({value(n, "element_id") for n in notes} - {""}))}
            changes = [c for r in records for c in record_changes(r, self.config, self._sent(conn, r))]
        for entry in notes:  # notes of tickets we know: polled just now, or linked before
            sys_id = value(entry, "element_id")
            link = linked.get(sys_id)
            incident = claimed.get(sys_id) or (link.incident_id if link else None)
            if incident is not None:
                number = numbers.get(sys_id) or (link.external_key if link else sys_id)
                changes += journal_changes(entry, self.config, number, incident)
        results = itsm_apply.apply(self.db, self.clock, changes, self.vouch) if changes else []
        self.observe(results)
        records_full, notes_full = len(records) >= PAGE * MAX_PAGES, len(notes) >= NOTES
        newest = _newest(since, records, "sys_updated_on")
        noted = _newest(since, notes, "sys_created_on")
        # a truncated read moves the cursor only as far as it read: nothing is skipped
        truncated = [t for t, full in ((newest, records_full), (noted, notes_full)) if full]
        newest = min(truncated) if truncated else max(newest, noted)
        with self.db.write() as conn:
            store.set_cursor(conn, self.cursor_name, newest, now)
        return sum(1 for r in results if r.outcome is itsm.Outcome.APPLIED)

    def _records(self, since: datetime) -> list[Mapping[str, Any]]:
        found: list[Mapping[str, Any]] = []
        for page in range(MAX_PAGES):
            rows = self.notifier.call("GET", TABLE, params={
                "sysparm_query": f"correlation_idSTARTSWITHwatchkeeper:^sys_updated_on>={since:{TIME_FORMAT}}"
                                 "^ORDERBYsys_updated_on",
                "sysparm_fields": ",".join(POLL_FIELDS), "sysparm_display_value": "all",
                "sysparm_exclude_reference_link": "true", "sysparm_limit": str(PAGE),
                "sysparm_offset": str(page * PAGE)})
            rows = [r for r in rows if isinstance(r, Mapping)] if isinstance(rows, list) else []
            found += rows
            if len(rows) < PAGE:
                break
        return found

    def _notes(self, since: datetime) -> list[Mapping[str, Any]]:
        try:
            rows = self.notifier.call("GET", "/api/now/table/sys_journal_field", params={
                "sysparm_query": f"name=incident^element=work_notes^sys_created_on>={since:{TIME_FORMAT}}"
                                 "^ORDERBYsys_created_on",
                "sysparm_fields": "sys_id,element_id,value,sys_created_by,sys_created_on",
                "sysparm_limit": str(NOTES)})
        except DeliveryError as exc:
            if exc.status in (401, 403):  # the integration user may not read journals: states still sync
                log.warning("servicenow work notes are not polled: the integration user cannot read "
                            "sys_journal_field", target=self.name, status=exc.status)
                return []
            raise
        return [r for r in rows if isinstance(r, Mapping)] if isinstance(rows, list) else []
