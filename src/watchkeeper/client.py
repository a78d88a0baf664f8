"""The CLI's way to a running server: ``watchkeeper --url URL`` (or ``WATCHKEEPER_URL``) with a
token (``--token`` or ``WATCHKEEPER_TOKEN``) sends the incident, KPI, approval, dead-letter and
audit commands to the API instead of opening a database file — operators need no database access,
and the server checks their role and records their token's name as the actor.

:class:`Remote` answers the same calls as :class:`~watchkeeper.service.Watchkeeper` for those
commands, with the same shapes (incidents as :mod:`watchkeeper.views` values, times as ``datetime``),
so each command prints the same either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import httpx

from watchkeeper.errors import AuthError, InputError, NotFound, WatchkeeperError
from watchkeeper.lifecycle import Action
from watchkeeper.views import DeadLetter, IncidentDetail, IncidentSummary

T = TypeVar("T")

#: Incident actions and the route each is sent to (assign and comment carry their text in a body).
_ROUTES = {
    Action.ACKNOWLEDGE: "acknowledge", Action.MITIGATE: "mitigate", Action.RESOLVE: "resolve",
    Action.REOPEN: "reopen",
}


class Remote:
    """A Watchkeeper server's API, spoken for the CLI.

    >>> Remote("ftp://x", "t")
    Traceback (most recent call last):
    ...
    watchkeeper.errors.InputError: --url must be an http:// or https:// URL, got 'ftp://x'
    """

    def __init__(self, url: str, token: str | None, *, timeout: float = 15.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"--url must be an http:// or https:// URL, got {url!r}")
        if not token:
            raise InputError("talking to a server needs a token: pass --token or set WATCHKEEPER_TOKEN "
                             "(create one where serve runs: watchkeeper token create --role operator)")
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport, trust_env=False,
                                  headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
              body: Any = None) -> Any:
        clean = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in (params or {}).items()
                 if v is not None}
        try:
            response = self._http.request(method, path, params=clean, json=body)
        except httpx.HTTPError as exc:
            raise WatchkeeperError(f"cannot reach the server at {self.url}: {exc}") from None
        if response.is_success:
            return _times(response.json())
        try:
            message = str(response.json().get("error") or response.text)
        except ValueError:
            message = response.text[:200]
        status = response.status_code
        if status in (401, 403):
            raise AuthError(f"the server refused: {message}", status=status)
        if status == 404:
            raise NotFound(message)
        if 400 <= status < 500:
            raise InputError(message, status=status)
        raise WatchkeeperError(f"the server at {self.url} answered {status}: {message}")

    def _view(self, parse: Callable[[Any], T], data: Any) -> T:
        """A typed view of the server's JSON; a sentence when it is not what this client reads."""
        try:
            return parse(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise WatchkeeperError(f"the server at {self.url} answered what this client cannot read "
                                   f"({type(exc).__name__}: {exc}); is it another version of Watchkeeper?") from None

    # -- the calls the CLI makes -----------------------------------------------------------
    def incidents(self, *, status: str | None = None, service: str | None = None,
                  since: datetime | None = None, limit: int = 100, offset: int = 0) -> list[IncidentSummary]:
        found = self._call("GET", "/api/v1/incidents", params={
            "status": status, "service": service, "since": since, "limit": limit, "offset": offset})
        return [self._view(IncidentSummary.from_json, i) for i in found]

    def incident(self, incident_id: int) -> IncidentDetail:
        return self._view(IncidentDetail.from_json, self._call("GET", f"/api/v1/incidents/{incident_id}"))

    def act(self, incident_id: int, action: Action, _actor: str, text: str = "", *,
            fixed_by: str | None = None, harmful: Iterable[str] = (), cause: str | None = None) -> IncidentDetail:
        base = f"/api/v1/incidents/{incident_id}"
        if action is Action.ASSIGN:
            done = self._call("POST", f"{base}/assign", body={"assignee": text})
        elif action is Action.COMMENT:
            done = self._call("POST", f"{base}/comments", body={"text": text})
        elif action is Action.RESOLVE:
            done = self._call("POST", f"{base}/resolve", body={
                "comment": text, "fixed_by": fixed_by, "harmful": list(harmful), "cause": cause})
        else:
            done = self._call("POST", f"{base}/{_ROUTES[action]}", body={"comment": text})
        return self._view(IncidentDetail.from_json, done)

    def merge(self, incident_id: int, into: int, _actor: str) -> IncidentDetail:
        done = self._call("POST", f"/api/v1/incidents/{incident_id}/merge", body={"into": into})
        return self._view(IncidentDetail.from_json, done)

    def split(self, incident_id: int, fingerprints: list[str], _actor: str) -> IncidentDetail:
        done = self._call("POST", f"/api/v1/incidents/{incident_id}/split", body={"fingerprints": fingerprints})
        return self._view(IncidentDetail.from_json, done)

    def move_alert(self, fingerprint: str, incident_id: int, _actor: str) -> IncidentDetail:
        done = self._call("POST", f"/api/v1/alerts/{fingerprint}/move", body={"incident": incident_id})
        return self._view(IncidentDetail.from_json, done)

    def kpis(self, start: datetime | None, end: datetime | None) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", "/api/v1/kpis", params={"from": start, "to": end})
        return found

    def dead_letters(self, limit: int = 50) -> list[DeadLetter]:
        rows = self._call("GET", "/api/v1/deadletters", params={"limit": limit})
        return [self._view(DeadLetter.from_json, row) for row in rows]

    def verify_audit(self) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", "/api/v1/audit/verify")
        return found

    def approvals(self, status: str | None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call("GET", "/api/v1/approvals", params={"status": status or "all"})
        return found

    def vote(self, approval_id: int, _actor: str, approve: bool, comment: str = "") -> dict[str, Any]:
        verb = "approve" if approve else "reject"
        done: dict[str, Any] = self._call("POST", f"/api/v1/approvals/{approval_id}/{verb}",
                                          body={"comment": comment})
        return done


def _times(value: Any) -> Any:
    """JSON from the API with every ``…_at`` / ``at`` string back as a ``datetime``."""
    if isinstance(value, list):
        return [_times(v) for v in value]
    if isinstance(value, dict):
        return {k: _time(v) if (k == "at" or k.endswith("_at")) and isinstance(v, str) else _times(v)
                for k, v in value.items()}
    return value


def _time(text: str) -> datetime | str:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
