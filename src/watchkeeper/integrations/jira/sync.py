"""Changes made in Jira, back to our incidents: its webhook (``POST
/api/v1/integrations/jira/webhook``) feeds :func:`watchkeeper.integrations.itsm.apply`. Jira
retries a webhook it got no 2xx for; the keys (changelog and comment ids) make a retry a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from watchkeeper.integrations import itsm, itsm_apply
from watchkeeper.integrations.jira.config import JiraConfig
from watchkeeper.integrations.jira.mapping import claimed_incident, webhook_changes
from watchkeeper.storage import Database
from watchkeeper.storage import outbox as outbox_store


class JiraSync:
    """Inbound for one Jira target (``name`` in ``integrations.targets``)."""

    def __init__(self, db: Database, clock: Callable[[], datetime], name: str, config: JiraConfig) -> None:
        self.db = db
        self.clock = clock
        self.name = name
        self.config = config
        #: told every batch of results (serve counts them on /metrics)
        self.observe: Callable[[list[itsm.Result]], None] = lambda _results: None

    def vouch(self, conn: Connection, claimed: int, external_id: str) -> bool:
        """Whether we created issue ``external_id`` (Jira's numeric id) for incident ``claimed``."""
        ref = outbox_store.get_ref(conn, self.name, claimed)
        return ref is not None and ref.get("id") == external_id

    def receive(self, payload: Mapping[str, Any]) -> list[itsm.Result]:
        issue = payload.get("issue")
        fields = issue.get("fields") if isinstance(issue, Mapping) else None
        claimed = claimed_incident(fields.get("labels") if isinstance(fields, Mapping) else None)
        with self.db.read() as conn:
            ref = outbox_store.get_ref(conn, self.name, claimed) if claimed is not None else None
        changes = webhook_changes(payload, self.config, (ref or {}).get("sent") or {})
        results = itsm_apply.apply(self.db, self.clock, changes, self.vouch) if changes else []
        self.observe(results)
        return results
