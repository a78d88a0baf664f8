"""Posts and updates incident messages through Slack's Web API.

- the first message of an incident: ``chat.postMessage`` (Block Kit) in the channel; its ``ts``
  is kept in ``integration_refs`` (so redeliveries and later changes know the message);
- every later change: ``chat.update`` of that message (status, cause, buttons) and, except for a
  re-ranking, a reply in its thread (``thread_ts``) saying what changed and who did it;
- Slack answers HTTP 200 with ``{"ok": false, "error": …}`` on failure: ``ratelimited`` and
  Slack's own trouble are retried, anything else (``invalid_auth``, ``channel_not_found``) is not;
  HTTP 429 with ``Retry-After`` (Slack's rate limit) is waited out.

A redelivery of the first message after a crash between Slack's answer and our commit posts it
again (Slack has no idempotency key for ``chat.postMessage``): the one duplicate the outbox allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from watchkeeper.integrations.base import Delivered, DeliveryError, EventKind, Message
from watchkeeper.integrations.http import HttpNotifier, Response
from watchkeeper.integrations.slack.blocks import escape, incident_blocks, title, update_line
from watchkeeper.integrations.slack.config import SlackConfig

#: Slack ``error`` codes worth another try.
RETRY_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class SlackNotifier(HttpNotifier):
    config: SlackConfig

    def deliver(self, message: Message) -> Delivered:
        ref = dict(message.ref or {})
        approval = ref.get("approval")
        outcome = ref.get("outcome")
        if message.event is EventKind.APPROVAL_REQUESTED and message.payload.get("approval"):
            approval, outcome = dict(message.payload["approval"]), None
        elif message.event is EventKind.APPROVAL_DECIDED:
            payload = message.change.get("payload") or {}
            if approval is None or str(approval.get("id")) == str(payload.get("approval_id")):
                verdict = str(message.change.get("kind", "")).removeprefix("approval.")
                outcome = (
                    f"Runbook `{escape(payload.get('runbook_id'))}` {verdict} "
                    f"(last vote by {escape(message.change.get('actor', '?'))})."
                )
                approval = None
        if message.incident.get("status") == "resolved":
            approval = None
        blocks = incident_blocks(message, approval, outcome)
        text = escape(title(message))  # the notification text is mrkdwn: no <!channel> from an alert
        if not ref.get("ts"):
            answer = self._call(
                "chat.postMessage",
                {"channel": self.config.channel, "text": text, "blocks": blocks, "unfurl_links": False},
            )
            ref = {"channel": answer.get("channel", self.config.channel), "ts": answer["ts"]}
        else:
            self._call("chat.update", {"channel": ref["channel"], "ts": ref["ts"], "text": text, "blocks": blocks})
            line = update_line(message)
            if line:
                self._call("chat.postMessage", {"channel": ref["channel"], "thread_ts": ref["ts"], "text": line})
        return Delivered(ref={"channel": ref["channel"], "ts": ref["ts"], "approval": approval, "outcome": outcome})

    def _call(self, method: str, body: Mapping[str, Any]) -> dict[str, Any]:
        token = self.config.bot_token.get_secret_value()
        response = self.http.request(
            "POST",
            f"{self.config.api_url.rstrip('/')}/{method}",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"},
            ok=lambda r: self._ok(method, r),
        )
        doc: dict[str, Any] = response.json()
        return doc

    def _ok(self, method: str, response: Response) -> None:
        try:
            doc = response.json()
        except ValueError:
            raise DeliveryError(
                f"{self.name}: Slack's {method} answered something other than JSON",
                retryable=True,
                status=response.status_code,
            ) from None
        if not isinstance(doc, dict) or doc.get("ok") is not True:
            error = str(doc.get("error", "unknown")) if isinstance(doc, dict) else "unknown"
            raise DeliveryError(
                self.redactor.redact(f"{self.name}: Slack's {method} failed: {error}"),
                retryable=error in RETRY_ERRORS,
                status=response.status_code,
            )
        if method == "chat.postMessage" and not doc.get("ts"):
            raise DeliveryError(f"{self.name}: Slack's chat.postMessage answered without a ts", retryable=False)
