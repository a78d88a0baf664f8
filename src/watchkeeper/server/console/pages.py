"""Sign-in, static assets, and the incident pages (list with keyset paging and live refresh;
detail with alerts, causes, decisions, actions, changes, timeline and every human action)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from starlette.responses import FileResponse, RedirectResponse, Response

from watchkeeper.errors import AuthError, InputError, NotFound
from watchkeeper.lifecycle import Action
from watchkeeper.server.console import charts
from watchkeeper.server.console.accounts import User
from watchkeeper.server.console.web import (
    COOKIE,
    HERE,
    PREFIX,
    ConsoleRoute,
    console_of,
    safe_next,
    signed_in,
)
from watchkeeper.service import Permission
from watchkeeper.storage import console as store
from watchkeeper.storage import governance as gov_store

MAX_ID = 2**31 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
PAGE = 50
STATIC = {"console.css": "text/css", "htmx.min.js": "text/javascript", "htmx.LICENSE.txt": "text/plain"}
Reader = Annotated[User, Depends(signed_in(Permission.READ))]
Operator = Annotated[User, Depends(signed_in(Permission.OPERATE))]
STATUSES = "^(active|open|acknowledged|mitigated|resolved)$"
SEVERITIES = "^(critical|warning|info)$"
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


# -- sign-in -----------------------------------------------------------------------------------
@router.get("")
def home() -> Response:
    return RedirectResponse(f"{PREFIX}/incidents", status_code=303)


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        raise NotFound(f"no console asset {name!r}")
    return FileResponse(HERE / "static" / name, media_type=STATIC[name],
                        headers={"Cache-Control": "public, max-age=3600"})


@router.get("/login")
def login_page(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    if getattr(request.state, "user", None) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return console_of(request).render(request, "login.html", next=safe_next(next), problem="", username="")


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=128)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    console = console_of(request)
    try:
        cookie, user = console.accounts.sign_in(username.strip(), password)
    except AuthError as exc:
        return console.render(request, "login.html", http_status=401, next=safe_next(next), problem=str(exc),
                              username=username)
    response = RedirectResponse(safe_next(next), status_code=303)
    console.cookie(response, COOKIE, cookie, int(console.config.session_hours * 3600))
    request.state.user = user
    return response


@router.post("/logout")
def logout(request: Request, user: Reader) -> Response:
    console = console_of(request)
    console.accounts.sign_out(user)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX, secure=console.config.secure_cookies, httponly=True,
                           samesite="lax")
    return response


# -- incidents ---------------------------------------------------------------------------------
def _day(text: str | None, what: str) -> datetime | None:
    if not text:
        return None
    if not DAY.match(text):
        raise InputError(f"{what}: {text!r} is not a day like 2026-12-03")
    try:
        return datetime.combine(datetime.fromisoformat(text).date(), time(), UTC)
    except ValueError:
        raise InputError(f"{what}: {text!r} is not a day of the calendar") from None


@router.get("/incidents")
def incidents(
    request: Request,
    user: Reader,
    status: Annotated[str | None, Query(pattern=STATUSES)] = None,
    service: Annotated[str | None, Query(max_length=256)] = None,
    severity: Annotated[str | None, Query(pattern=SEVERITIES)] = None,
    since: Annotated[str | None, Query(max_length=10, description="first day, YYYY-MM-DD")] = None,
    until: Annotated[str | None, Query(max_length=10, description="last day, YYYY-MM-DD")] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    console = console_of(request)
    status, service, severity, since, until, q = (v or None for v in (status, service, severity, since, until, q))
    start, end = _day(since, "since"), _day(until, "until")
    if end is not None:
        end = end.replace(hour=23, minute=59, second=59, microsecond=999999)
    if start and end and end < start:
        raise InputError("'until' must not be before 'since'")
    where = store.IncidentFilter(status=status, service=service, severity=severity, since=start, until=end, text=q)
    with console.service.db.read() as conn:
        found = store.incident_page(conn, where, before, PAGE + 1)
        more = len(found) > PAGE
        found = found[:PAGE]
        causes = gov_store.top_causes_of(conn, [i.id for i in found], top=1)
        services = store.known_services(conn)
    filters = {k: v for k, v in {"status": status, "service": service, "severity": severity, "since": since,
                                 "until": until, "q": q}.items() if v}
    older = f"{PREFIX}/incidents?{urlencode({**filters, 'before': found[-1].id})}" if more and found else None
    api = {k: v for k, v in filters.items() if k in ("status", "service") and v != "active"}
    if start:
        api["since"] = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    context: dict[str, Any] = dict(incidents=found, causes=causes, filters=filters, services=services, older=older,
                   first_page=before is None, self_url=f"{PREFIX}/incidents?{urlencode(filters)}",
                   api_url=f"/api/v1/incidents?{urlencode({**api, 'limit': PAGE})}")
    if "hx-request" in request.headers and "hx-boosted" not in request.headers:
        return console.render(request, "incident_rows.html", **context)
    return console.render(request, "incidents.html", **context)


@router.get("/incidents/{incident_id}")
def incident(request: Request, incident_id: Id, user: Reader,
             done: Annotated[str | None, Query(max_length=64)] = None,
             part: Annotated[str | None, Query(pattern="^live$")] = None) -> Response:
    console = console_of(request)
    wk = console.service
    found = wk.incident(incident_id).as_dict()  # the API's JSON form (what the page says it shows)
    if part == "live":  # the status line and the last action, polled by the page every 5 s
        return console.render(request, "incident_live.html", i=found)
    with wk.db.read() as conn:
        past = store.past_incidents_on(conn, incident_id, list(found["services"]))
    approvals = [a for a in wk.governance.approvals("pending") if a["incident_id"] == incident_id]
    plots = {}
    for n, cause in enumerate(found["causes"]):
        series = charts.evidence_series(cause.get("evidence") or {})
        if series:
            onset = charts._time((cause.get("evidence") or {}).get("first_anomaly_at"))
            plots[n] = charts.line_chart(series, marker=onset, title=f"evidence for {cause['component']}")
    flash = {"acknowledge": "Acknowledged.", "mitigate": "Marked mitigated.", "resolve": "Resolved.",
             "reopen": "Reopened.", "assign": "Assigned.", "comment": "Comment added.", "split": "Split off.",
             "merge": "Merged.", "move": "Alert moved.", "approve": "Approval recorded.",
             "reject": "Rejection recorded."}.get(done or "", "")
    return console.render(request, "incident.html", i=found, past=past, approvals=approvals, plots=plots,
                          flash=flash, silence=shared_matchers(found["alerts"]),
                          api_url=f"/api/v1/incidents/{incident_id}")


def shared_matchers(alerts: list[dict[str, Any]]) -> str:
    """Matchers (one per line) for the labels every alert of an incident shares: a silence made
    from the incident mutes its alerts (the preview shows which others too).

    >>> print(shared_matchers([{"labels": {"service": "db", "env": "prod", "pod": "a"}},
    ...                        {"labels": {"service": "db", "env": "prod", "pod": "b"}}]))
    env="prod"
    service="db"
    """
    if not alerts:
        return ""
    common = dict(alerts[0].get("labels") or {})
    for alert in alerts[1:]:
        labels = alert.get("labels") or {}
        common = {k: v for k, v in common.items() if labels.get(k) == v}
    return "\n".join(f'{k}="{v}"' for k, v in sorted(common.items())[:5] if '"' not in str(v))


ACTIONS = "^(acknowledge|mitigate|resolve|reopen|assign|comment|merge|split|move)$"


@router.post("/incidents/{incident_id}/{action}")
def act(
    request: Request,
    incident_id: Id,
    action: Annotated[str, Path(pattern=ACTIONS)],
    user: Operator,
    comment: Annotated[str, Form(max_length=10_000)] = "",
    assignee: Annotated[str, Form(max_length=256)] = "",
    into: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
    fingerprints: Annotated[list[str] | None, Form(max_length=1000)] = None,
    fingerprint: Annotated[str, Form(max_length=256)] = "",
    to: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
    fixed_by: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    wk = console_of(request).service
    target = incident_id
    if action in ("acknowledge", "mitigate", "reopen"):
        wk.act(incident_id, Action(action), user.actor, comment.strip())
    elif action == "resolve":
        wk.act(incident_id, Action.RESOLVE, user.actor, comment.strip(), fixed_by=fixed_by or None)
    elif action == "assign":
        if not assignee.strip():
            raise InputError("name the person to assign the incident to")
        wk.act(incident_id, Action.ASSIGN, user.actor, assignee.strip())
    elif action == "comment":
        if not comment.strip():
            raise InputError("a comment cannot be empty")
        wk.act(incident_id, Action.COMMENT, user.actor, comment.strip())
    elif action == "merge":
        if into is None:
            raise InputError("name the incident to merge this one into")
        target = wk.merge(incident_id, into, user.actor).id
    elif action == "split":
        if not fingerprints:
            raise InputError("tick the alerts to split off into a new incident")
        target = wk.split(incident_id, fingerprints, user.actor).id
    else:  # move
        if to is None or not fingerprint:
            raise InputError("name the alert and the incident to move it to")
        target = wk.move_alert(fingerprint, to, user.actor).id
    return RedirectResponse(f"{PREFIX}/incidents/{target}?done={action}", status_code=303)
