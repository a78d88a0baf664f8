"""Approvals (the queue and signed links), runbooks, silences, KPIs, the audit log and dead
letters. Each acts through the same service call the API uses, as the signed-in user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from starlette.responses import RedirectResponse, Response

from watchkeeper import approval_links, tokens
from watchkeeper.errors import InputError, NotFound
from watchkeeper.server.console import charts
from watchkeeper.server.console.accounts import User
from watchkeeper.server.console.web import PREFIX, ConsoleRoute, console_of, safe_next, signed_in
from watchkeeper.service import Permission
from watchkeeper.storage import console as store
from watchkeeper.storage import queries

MAX_ID = 2**31 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Reader = Annotated[User, Depends(signed_in(Permission.READ))]
Operator = Annotated[User, Depends(signed_in(Permission.OPERATE))]
Approver = Annotated[User, Depends(signed_in(Permission.APPROVE))]
Admin = Annotated[User, Depends(signed_in(Permission.ADMIN))]
APPROVAL_STATUSES = "^(pending|approved|rejected|expired|superseded|all)$"
Token = Annotated[str, Path(max_length=approval_links.MAX_TOKEN)]

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


# -- approvals ---------------------------------------------------------------------------------
@router.get("/approvals")
def approvals(request: Request, user: Reader,
              status: Annotated[str, Query(pattern=APPROVAL_STATUSES)] = "pending",
              done: Annotated[str | None, Query(max_length=16)] = None) -> Response:
    console = console_of(request)
    found = console.service.governance.approvals(None if status == "all" else status)
    flash = {"approve": "Approval recorded.", "reject": "Rejection recorded."}.get(done or "", "")
    return console.render(request, "approvals.html", approvals=found, status=status, flash=flash,
                          api_url=f"/api/v1/approvals?status={status}")


@router.post("/approvals/{approval_id}/{decision}")
def vote(request: Request, approval_id: Id, decision: Annotated[str, Path(pattern="^(approve|reject)$")],
         user: Approver, comment: Annotated[str, Form(max_length=10_000)] = "",
         back: Annotated[str, Form(max_length=2000)] = "") -> Response:
    console_of(request).service.governance.vote(approval_id, user.actor, decision == "approve", comment.strip())
    target = safe_next(back) if back else f"{PREFIX}/approvals"
    return RedirectResponse(f"{target}{'&' if '?' in target else '?'}done={decision}", status_code=303)


def _link_claim(request: Request, token: str) -> tuple[approval_links.LinkClaim, dict[str, Any]]:
    console = console_of(request)
    claim = approval_links.verify(console.accounts.secret(), token, console.service.clock())
    with console.service.db.read() as conn:
        found = store.approval(conn, claim.approval_id)
    if found is None:
        raise NotFound(f"no approval request {claim.approval_id}")
    return claim, found


@router.get("/approve/{token}")
def approve_link(request: Request, token: Token, user: Reader) -> Response:
    """What a signed link would do; never does it (a chat client's link preview fetches this)."""
    console = console_of(request)
    claim, found = _link_claim(request, token)
    incident = console.service.incident(found["incident_id"]).as_dict()
    used = console.accounts.nonce_used(claim.nonce)
    return console.render(request, "approve_link.html", claim=claim, approval=found, incident=incident,
                          used=used, token=token, api_url=f"/api/v1/approvals?status={found['status']}")


@router.post("/approve/{token}")
def approve_link_post(request: Request, token: Token, user: Approver,
                      comment: Annotated[str, Form(max_length=10_000)] = "") -> Response:
    console = console_of(request)
    claim, found = _link_claim(request, token)
    if not console.accounts.use_nonce(claim.nonce, claim.approval_id, user.actor, claim.expires_at):
        raise InputError("this approval link was used already; each link acts once", status=409)
    try:
        console.service.governance.vote(claim.approval_id, user.actor, claim.decision == "approve",
                                        comment.strip() or f"via a signed {claim.decision} link")
    except Exception:
        console.accounts.free_nonce(claim.nonce)  # nothing happened: the link may be tried again
        raise
    return RedirectResponse(f"{PREFIX}/incidents/{found['incident_id']}?done={claim.decision}", status_code=303)


# -- runbooks ----------------------------------------------------------------------------------
@router.get("/runbooks")
def runbooks(request: Request, user: Reader, done: Annotated[str | None, Query(max_length=16)] = None) -> Response:
    console = console_of(request)
    gov = console.service.governance
    evidence = gov.evidence()
    found = [{"id": rb.id, "title": rb.title, "risk": rb.risk.value, "autonomy": rb.autonomy.value,
              "evidence": evidence.get(rb.id) or {}} for rb in gov.catalog.runbooks.values()]
    return console.render(request, "runbooks.html", runbooks=found, api_url="/api/v1/runbooks",
                          flash="Circuit breaker closed." if done == "enable" else "")


@router.post("/runbooks/{runbook_id}/enable")
def enable_runbook(request: Request, runbook_id: Annotated[str, Path(max_length=64)], user: Approver) -> Response:
    console_of(request).service.governance.enable(runbook_id, user.actor)
    return RedirectResponse(f"{PREFIX}/runbooks?done=enable", status_code=303)


# -- silences ----------------------------------------------------------------------------------
def _matchers(text: str) -> list[str]:
    lines = [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]
    if len(lines) > 50:
        raise InputError("a silence takes at most 50 matchers")
    return lines


def _preview(request: Request, matchers: list[str]) -> tuple[list[dict[str, Any]], str]:
    """The firing alerts the matchers would mute now, or a sentence saying what is wrong."""
    from watchkeeper.suppress import parse_matcher

    if not matchers:
        return [], ""
    try:
        parsed = [parse_matcher(m) for m in matchers]
    except InputError as exc:
        return [], str(exc)
    with console_of(request).service.db.read() as conn:
        firing = store.firing_alerts(conn)
    return [a for a in firing if all(m.matches(a["labels"] or {}) for m in parsed)], ""


@router.get("/silences")
def silences(request: Request, user: Reader, expired: bool = False,
             done: Annotated[str | None, Query(max_length=16)] = None) -> Response:
    console = console_of(request)
    found = [s.as_dict() for s in console.service.silences(active=not expired)]
    flash = {"create": "Silence saved.", "expire": "Silence expired."}.get(done or "", "")
    return console.render(request, "silences.html", silences=found, expired=expired, flash=flash,
                          api_url=f"/api/v1/silences{'?expired=true' if expired else ''}")


@router.get("/silences/new")
def new_silence(request: Request, user: Operator,
                matchers: Annotated[str, Query(max_length=5000)] = "",
                duration: Annotated[str, Query(max_length=16)] = "2h",
                comment: Annotated[str, Query(max_length=2000)] = "") -> Response:
    """The form, with a preview of the alerts the matchers would mute (before anything is saved)."""
    console = console_of(request)
    muted, problem = _preview(request, _matchers(matchers))
    context: dict[str, Any] = dict(matchers=matchers, duration=duration, comment=comment, muted=muted[:200],
                                   count=len(muted), problem=problem, api_url="/api/v1/silences")
    if "hx-request" in request.headers:
        return console.render(request, "silence_preview.html", **context)
    return console.render(request, "silence_new.html", **context)


@router.post("/silences")
def create_silence(request: Request, user: Operator,
                   matchers: Annotated[str, Form(max_length=5000)] = "",
                   duration: Annotated[str, Form(max_length=16)] = "2h",
                   comment: Annotated[str, Form(max_length=2000)] = "") -> Response:
    console = console_of(request)
    span = tokens.parse_span(duration, what="duration", limit=timedelta(days=365))
    parsed = _matchers(matchers)
    if not parsed:
        raise InputError("a silence needs at least one matcher, e.g. service=\"db\"")
    ends_at = console.service.clock() + span
    console.service.add_silence(list(parsed), ends_at, user.actor, comment.strip())
    return RedirectResponse(f"{PREFIX}/silences?done=create", status_code=303)


@router.post("/silences/{silence_id}/expire")
def expire_silence(request: Request, silence_id: Id, user: Operator) -> Response:
    console_of(request).service.expire_silence(silence_id, user.actor)
    return RedirectResponse(f"{PREFIX}/silences?done=expire", status_code=303)


# -- KPIs --------------------------------------------------------------------------------------
@router.get("/kpis")
def kpis(request: Request, user: Reader, days: Annotated[int, Query(ge=1, le=90)] = 14) -> Response:
    console = console_of(request)
    wk = console.service
    now = wk.clock()
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=days - 1)
    total = wk.kpis(start, None)
    per_day: list[dict[str, Any]] = []
    for n in range(days):
        lo = start + timedelta(days=n)
        report = wk.kpis(lo, lo + timedelta(days=1))
        per_day.append({"day": lo.strftime("%m-%d"), "alerts": report.alerts, "incidents": report.incidents,
                        "mtta": report.mtta.median, "mttr": report.mttr.median})
    with wk.db.read() as conn:
        counts = store.action_counts(conn, start, None)
        fixed = store.incidents_fixed_by_runbook(conn, start, None)
        resolved = sum(1 for i in queries.incidents_opened_between(conn, start, None) if i.resolved_at is not None)
    finished = sum(n for _, status, n in counts if status in ("succeeded", "failed", "rolled_back",
                                                                "rollback_failed"))
    succeeded = sum(n for _, status, n in counts if status == "succeeded")
    automated = sum(n for trigger, _, n in counts if trigger in ("auto", "approved"))
    rates = {"automation": fixed / resolved if resolved else None,
             "remediation": succeeded / finished if finished else None,
             "runs": sum(n for _, _, n in counts), "automated_runs": automated, "succeeded": succeeded,
             "finished": finished, "fixed": fixed, "resolved": resolved}
    noise = charts.bar_pairs([(d["day"], d["alerts"], d["incidents"]) for d in per_day], ("alerts", "incidents"),
                             title="alerts and incidents per day")
    times = charts.line_chart(
        {f"{key.upper()} (median, min)": [(_ts(start, n), d[key] / 60) for n, d in enumerate(per_day)
                                          if d[key] is not None] for key in ("mtta", "mttr")},
        title="median MTTA and MTTR per day, minutes")
    api = f"/api/v1/kpis?{urlencode({'from': start.strftime('%Y-%m-%dT%H:%M:%SZ')})}"
    return console.render(request, "kpis.html", total=total, per_day=per_day, rates=rates, noise=noise, times=times,
                          days=days, api_url=api)


def _ts(start: datetime, n: int) -> float:
    return (start + timedelta(days=n, hours=12)).timestamp()


# -- audit and dead letters --------------------------------------------------------------------
@router.get("/audit")
def audit_log(request: Request, user: Admin,
              before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
              kind: Annotated[str | None, Query(max_length=64)] = None,
              subject: Annotated[str | None, Query(max_length=300)] = None,
              verify: bool = False) -> Response:
    console = console_of(request)
    with console.service.db.read() as conn:
        records = store.audit_page(conn, before, 101, kind or None, subject or None)
    more, records = len(records) > 100, records[:100]
    filters = {k: v for k, v in {"kind": kind, "subject": subject}.items() if v}
    older = f"{PREFIX}/audit?{urlencode({**filters, 'before': records[-1]['seq']})}" if more else None
    verdict = console.service.verify_audit() if verify else None
    return console.render(request, "audit.html", records=records, older=older, verdict=verdict, filters=filters,
                          api_url="/api/v1/audit/verify")


@router.get("/deadletters")
def deadletters(request: Request, user: Admin, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
    console = console_of(request)
    found = [letter.as_dict(4096) for letter in console.service.dead_letters(limit)]
    return console.render(request, "deadletters.html", letters=found, api_url=f"/api/v1/deadletters?limit={limit}")
