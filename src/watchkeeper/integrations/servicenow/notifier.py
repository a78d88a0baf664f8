"""ServiceNow's Table API over HTTP: the outbox's notifier (create / update / resolve) and the
reads the poller makes.

Every call sends ``Accept: application/json`` and basic auth, or an OAuth bearer token from
``/oauth_token.do`` (client-credentials grant, kept until a minute before it expires, fetched
again once on a 401). The ref kept per incident is ``{"sys_id", "number", "sent"}``: ``sent``
holds the state, impact and urgency we last set there, so an update sends only what changed and
a poll can tell our echo from a person's change.

Redelivery after a crash cannot make a second ticket: before creating one the notifier looks for
an incident whose ``correlation_id`` is ours. At worst one work note is written twice.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from watchkeeper.integrations import itsm
from watchkeeper.integrations.base import Delivered, DeliveryError, Message, Redactor
from watchkeeper.integrations.http import HttpNotifier
from watchkeeper.integrations.servicenow.config import ServiceNowConfig, basic
from watchkeeper.integrations.servicenow.mapping import (
    OUT_STATE,
    SYSTEM,
    create_body,
    sent_fields,
    update_body,
    value,
)

TABLE = "/api/now/table/incident"


class ServiceNowNotifier(HttpNotifier):
    """Creates, updates and resolves one ServiceNow incident per Watchkeeper incident."""

    config: ServiceNowConfig

    def __init__(self, name: str, config: ServiceNowConfig, **options: Any) -> None:
        super().__init__(name, config, **options)
        self._token: str | None = None
        self._token_until = 0.0

    # -- HTTP --------------------------------------------------------------------------------
    def _auth(self) -> str:
        cfg = self.config
        if cfg.client_id and cfg.client_secret:
            if self._token is None or time.monotonic() >= self._token_until:
                self._token, lifetime = self._oauth()
                self._token_until = time.monotonic() + max(lifetime - 60.0, 1.0)
                # the access token is a secret too: no error may show it
                self.redactor = Redactor((*self.config.secrets(), self._token))
                self.http.redactor = self.redactor
            return f"Bearer {self._token}"
        assert cfg.username is not None
        assert cfg.password is not None
        return "Basic " + basic(cfg.username, cfg.password.get_secret_value())

    def _oauth(self) -> tuple[str, float]:
        cfg = self.config
        assert cfg.client_id is not None
        assert cfg.client_secret is not None
        form = {"grant_type": "client_credentials", "client_id": cfg.client_id,
                "client_secret": cfg.client_secret.get_secret_value()}
        response = self.http.request("POST", f"{cfg.instance_url}/oauth_token.do", content=urlencode(form).encode(),
                                     headers={"Content-Type": "application/x-www-form-urlencoded",
                                              "Accept": "application/json"})
        try:
            doc = response.json()
            return str(doc["access_token"]), float(doc.get("expires_in") or 1800)
        except (ValueError, KeyError, TypeError):
            raise DeliveryError(f"{self.name}: the OAuth token answer holds no access_token",
                                retryable=False, status=response.status_code) from None

    def call(self, method: str, path: str, *, body: Mapping[str, Any] | None = None,
             params: Mapping[str, str] | None = None) -> Any:
        """The ``result`` of one Table API call (a DeliveryError otherwise)."""
        url = f"{self.config.instance_url}{path}" + (f"?{urlencode(params)}" if params else "")
        for attempt in (0, 1):
            headers = {"Accept": "application/json", "Authorization": self._auth()}
            try:
                response = self.http.request(method, url, json=body, headers=headers)
                break
            except DeliveryError as exc:
                if exc.status == 401 and self._token is not None and attempt == 0:
                    self._token = None  # revoked or expired early: one fresh token
                    continue
                raise
        try:
            return response.json()["result"]
        except (ValueError, KeyError, TypeError):
            # a hibernating developer instance answers 200 with a web page: later may work
            raise DeliveryError(f"{self.name}: {method} {path} answered without a JSON 'result'", retryable=True,
                                status=response.status_code) from None

    # -- the outbox --------------------------------------------------------------------------
    def deliver(self, message: Message) -> Delivered:
        ticket = itsm.ticket(message.payload)
        ref = dict(message.ref or {})
        sent = dict(ref.get("sent") or {})
        if itsm.came_from(message.payload) == SYSTEM:
            # made there: nothing to send back; ours now matches what it says there
            if not ref:
                return Delivered(detail="came from ServiceNow; not sent back")
            return Delivered(ref={**ref, "sent": {**sent, "state": OUT_STATE[ticket.incident.status]}},
                             detail="came from ServiceNow; not sent back")
        if not ref.get("sys_id"):
            found = self.find(ticket.ref)
            if found is None:
                body = create_body(ticket, self.config)
                record = self.call("POST", TABLE, body=body)
                made = self._ref(record, sent_fields(body, {}))
                return Delivered(ref=made, detail=f"created {made['number']}")
            ref = self._ref(found, {k: value(found, k) for k in ("state", "impact", "urgency")})
            sent = dict(ref["sent"])
        body = update_body(ticket, self.config, sent)
        if not body:
            return Delivered(ref=ref, detail="nothing to change")
        self.call("PATCH", f"{TABLE}/{ref['sys_id']}", body=body)
        return Delivered(ref={**ref, "sent": sent_fields(body, sent)},
                         detail=f"updated {ref.get('number')}: {', '.join(sorted(body))}")

    def find(self, correlation_id: str) -> Mapping[str, Any] | None:
        """The incident there that carries our ``correlation_id`` (a ticket made before a crash)."""
        found = self.call("GET", TABLE, params={
            "sysparm_query": f"correlation_id={correlation_id}", "sysparm_limit": "1",
            "sysparm_fields": "sys_id,number,state,impact,urgency"})
        return found[0] if isinstance(found, list) and found and isinstance(found[0], Mapping) else None

    def _ref(self, record: Any, sent: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(record, Mapping) or not value(record, "sys_id"):
            raise DeliveryError(f"{self.name}: ServiceNow's answer names no sys_id", retryable=True)
        return {"sys_id": value(record, "sys_id"), "number": value(record, "number"), "sent": dict(sent)}
