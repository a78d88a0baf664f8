"""Microsoft Teams through a Workflows webhook: one Adaptive Card per incident change.

An approval request carries Approve and Reject buttons (``Action.OpenUrl``) to the console's
``/console/approve/{token}`` page: the token is signed with the console's secret
(``approval_links``), names one approval and one decision, expires with the approval (at most
``console.link_hours``) and is single-use. Opening the link shows the action and changes nothing;
a signed-in approver's explicit POST on that page decides, with the same four-eyes rules as the
API. Teams cannot edit a message a workflow posted, so each change is a new card. A Workflows
webhook has no idempotency key: a redelivery after a crash may post a card twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from watchkeeper import approval_links
from watchkeeper.integrations import itsm
from watchkeeper.integrations.base import Delivered, EventKind, Message
from watchkeeper.integrations.http import HttpNotifier
from watchkeeper.integrations.teams.card import ApprovalButtons, message
from watchkeeper.integrations.teams.config import TeamsConfig


class TeamsNotifier(HttpNotifier):
    """Posts incident cards to one Teams channel or chat."""

    config: TeamsConfig

    def __init__(self, name: str, config: TeamsConfig, *, link_secret: Callable[[], bytes] | None = None,
                 link_hours: float = 24.0, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 **options: Any) -> None:
        super().__init__(name, config, **options)
        self.link_secret = link_secret
        self.link_hours = link_hours
        self.clock = clock

    def bind(self, link_secret: Callable[[], bytes], link_hours: float, clock: Callable[[], datetime]) -> None:
        """Sign approval links with the console's secret, for at most ``link_hours``."""
        self.link_secret, self.link_hours, self.clock = link_secret, link_hours, clock

    def deliver(self, msg: Message) -> Delivered:
        ticket = itsm.ticket(msg.payload)
        public = self.config.public_url
        buttons = self.buttons(msg)
        incident_url = f"{public}/console/incidents/{ticket.incident.id}" if public else None
        body = message(ticket, buttons, incident_url)
        self.http.request("POST", self.config.webhook_url.get_secret_value(), json=body,
                          headers={"Content-Type": "application/json"})
        return Delivered(detail=f"card posted{' with approval links' if buttons else ''}")

    def buttons(self, msg: Message) -> list[ApprovalButtons]:
        """Approve / Reject links for a pending approval (none without a console address or secret)."""
        approval = msg.payload.get("approval")
        if (msg.event is not EventKind.APPROVAL_REQUESTED or not isinstance(approval, dict)
                or approval.get("status") != "pending" or not self.config.public_url or self.link_secret is None):
            return []
        try:
            approval_id = int(approval["id"])
            expires = min(datetime.fromisoformat(str(approval["expires_at"])),
                          self.clock() + timedelta(hours=self.link_hours))
        except (KeyError, TypeError, ValueError):
            return []
        if expires <= self.clock():
            return []
        secret = self.link_secret()
        urls = {d: f"{self.config.public_url}/console/approve/"
                   f"{approval_links.sign(secret, approval_id, d, expires, approval_links.new_nonce())}"
                for d in ("approve", "reject")}
        return [ApprovalButtons(approval_id, str(approval.get("runbook_id") or "?"), str(approval.get("risk") or "?"),
                                expires, urls["approve"], urls["reject"])]
