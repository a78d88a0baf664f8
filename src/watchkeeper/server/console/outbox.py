"""The outbox page: what waits to be delivered, what was dead-lettered and why, and a Retry
button (operators) that calls what ``POST /api/v1/outbox/{id}/retry`` calls (audited as the
signed-in user)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import RedirectResponse, Response

from watchkeeper.errors import NotFound
from watchkeeper.server.console.accounts import User
from watchkeeper.server.console.web import PREFIX, ConsoleRoute, console_of, signed_in
from watchkeeper.service import Permission
from watchkeeper.storage import outbox as store

MAX_ID = 2**31 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Reader = Annotated[User, Depends(signed_in(Permission.READ))]
Operator = Annotated[User, Depends(signed_in(Permission.OPERATE))]
#: messages shown per list (pending, dead); the API pages further
SHOWN = 100

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


@router.get("/outbox")
def outbox(request: Request, user: Reader, target: Annotated[str | None, Query(max_length=64)] = None,
           done: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> Response:
    console = console_of(request)
    now = console.service.clock()
    with console.service.db.read() as conn:
        health = store.health(conn)
        pending = store.messages(conn, status=store.Status.PENDING.value, target=target or None, limit=SHOWN)
        dead = store.messages(conn, status=store.Status.DEAD.value, target=target or None, limit=SHOWN)
    targets = [{"name": name, "pending": entry["pending"], "dead": entry["dead"],
                "oldest": entry["oldest_pending_at"],
                "age": (now - entry["oldest_pending_at"]).total_seconds() if entry["oldest_pending_at"] else None}
               for name, entry in sorted(health.items())]
    flash = f"Message #{done} is due again: the outbox delivers it next." if done else ""
    query = f"&target={target}" if target else ""
    return console.render(request, "outbox.html", targets=targets, pending=pending, dead=dead, target=target or "",
                          shown=SHOWN, flash=flash, api_url=f"/api/v1/outbox?status=dead{query}",
                          retry_url="/api/v1/outbox/{id}/retry")


@router.post("/outbox/{message_id}/retry")
def retry(request: Request, message_id: Id, user: Operator) -> Response:
    integrations: Any = getattr(request.app.state, "integrations", None)
    if integrations is None:
        raise NotFound("this server does not serve the outbox")
    integrations.retry(message_id, user.actor)
    return RedirectResponse(f"{PREFIX}/outbox?done={message_id}", status_code=303)
