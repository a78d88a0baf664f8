"""The console's plumbing: who is signed in, CSRF on every form, templates, errors as pages.

Every console route uses :class:`ConsoleRoute`, which, around the route's own code:

* finds the user (session cookie; else the trusted SSO header, when on and the peer is an
  allowed proxy);
* refuses any POST whose form lacks this session's CSRF token (403 and a sentence) — before
  the route reads anything;
* turns Watchkeeper's errors and invalid input into a 4xx page (HTML for a browser, the API's
  ``{"error", "status"}`` JSON for anything else), never a 500;
* sends a signed-out browser to the sign-in page (303), and an HTMX poll a 401 with
  ``HX-Redirect`` so the page follows.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from watchkeeper import __version__
from watchkeeper.errors import AuthError, WatchkeeperError
from watchkeeper.server.console.accounts import Accounts, User
from watchkeeper.server.responses import error
from watchkeeper.service import GRANTS, Permission, Watchkeeper

COOKIE = "wk_session"
PRE = "wk_pre"  # a signed-out browser's random id: the sign-in form's CSRF token is bound to it
PREFIX = "/console"
HERE = Path(__file__).parent


class SignInNeeded(WatchkeeperError):
    """No live session: a browser is sent to the sign-in page."""


class Console:
    """What the console's routes share: the service, accounts and the template environment."""

    def __init__(self, service: Watchkeeper) -> None:
        self.service = service
        self.config = service.settings.console
        self.accounts = Accounts(service.db, service.clock, self.config)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
            trim_blocks=True, lstrip_blocks=True,
        )
        self.templates.filters.update(when=when, ago=lambda at: ago(at, service.clock()), pct=pct, dur=duration,
                                      num=number, q=quote)

    def render(self, request: Request, name: str, *, http_status: int = 200, **context: Any) -> HTMLResponse:
        user: User | None = getattr(request.state, "user", None)
        page = self.templates.get_template(name).render(
            request=request, user=user, csrf=self.csrf(request), version=__version__, prefix=PREFIX,
            can=lambda p: user is not None and Permission(p) in GRANTS[user.role],
            now=self.service.clock(), **context)
        return HTMLResponse(page, status_code=http_status)

    def csrf(self, request: Request) -> str:
        user: User | None = getattr(request.state, "user", None)
        binding = user.session if user is not None else getattr(request.state, "pre", "")
        return self.accounts.csrf_token(binding) if binding else ""

    def fail(self, request: Request, status: int, message: str) -> Response:
        if wants_html(request):
            return self.render(request, "error.html", http_status=status, status_code=status, message=message)
        return error(status, message)

    def cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, path=PREFIX, httponly=True, samesite="lax",
                            secure=self.config.secure_cookies)


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "") or "hx-request" in request.headers


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            console = console_of(request)
            new_session: str | None = None
            user = await run_in_threadpool(console.accounts.session, request.cookies.get(COOKIE))
            if user is None and console.config.sso_header:
                named = request.headers.get(console.config.sso_header)
                peer = request.client.host if request.client else None
                if named:
                    started = await run_in_threadpool(console.accounts.sign_in_sso, named.strip(), peer)
                    if started is not None:
                        new_session, user = started
            request.state.user = user
            pre = request.cookies.get(PRE)
            fresh_pre = pre is None or not 16 <= len(pre) <= 64
            request.state.pre = secrets.token_urlsafe(24) if fresh_pre else pre
            try:
                refused = await refusal(request, console, user, fresh_pre)
                response = refused if refused is not None else await inner(request)
            except SignInNeeded:
                response = sign_in_redirect(request)
            except WatchkeeperError as exc:
                response = console.fail(request, getattr(exc, "status", 400), str(exc))
            except RequestValidationError as exc:
                parts = [f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()[:5]]
                response = console.fail(request, 422, "invalid input: " + "; ".join(parts))
            if fresh_pre:
                console.cookie(response, PRE, request.state.pre, 60 * 60 * 24 * 30)
            if new_session is not None:
                console.cookie(response, COOKIE, new_session, int(console.config.session_hours * 3600))
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
            return response

        return handler


async def refusal(request: Request, console: Console, user: User | None, fresh_pre: bool) -> Response | None:
    """Why a POST is refused before its route runs (an ended session, an unreadable form, a missing
    or wrong CSRF token), or None."""
    if request.method != "POST":
        return None
    if user is None and request.cookies.get(COOKIE) and request.url.path != f"{PREFIX}/login":
        return console.fail(request, 401, "your session has ended: sign in again (nothing was changed)")
    try:
        form = await request.form()
    except Exception:  # a malformed body: python-multipart's several error types
        return console.fail(request, 400, "the form could not be read (malformed body)")
    given = form.get("csrf")
    binding = user.session if user is not None else request.state.pre
    if (fresh_pre and user is None) or not isinstance(given, str) or not console.accounts.csrf_ok(binding, given):
        return console.fail(request, 403, "this form has no valid CSRF token (it may come from an old page or "
                            "another site): reload the page and submit it again")
    return None


def sign_in_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login = f"{PREFIX}/login?next={quote(target, safe='')}"
    if "hx-request" in request.headers:
        return Response(status_code=401, headers={"HX-Redirect": login})
    if request.method != "GET":
        return console_of(request).fail(request, 401, "your session has ended: sign in again")
    return RedirectResponse(login, status_code=303)


def signed_in(permission: Permission) -> Callable[[Request], User]:
    """A dependency: the signed-in user, who must hold ``permission``."""

    def dependency(request: Request) -> User:
        user: User | None = getattr(request.state, "user", None)
        if user is None:
            raise SignInNeeded("sign in first")
        if permission not in GRANTS[user.role]:
            raise AuthError(f"user {user.name!r} has role {user.role.value}, which may not {permission.value}",
                            status=403)
        return user

    return dependency


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target \
            and ".." not in target:
        return target
    return f"{PREFIX}/incidents"


# -- formatting (template filters) ---------------------------------------------------------------
def when(at: datetime | None) -> str:
    return "" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def ago(at: datetime | None, now: datetime) -> str:
    if at is None:
        return ""
    return duration((now - at).total_seconds()) + " ago" if now >= at else "in " + duration((at - now).total_seconds())


def duration(seconds: float | None) -> str:
    """
    >>> duration(42), duration(125), duration(7300), duration(200000), duration(None)
    ('42 s', '2 min', '2.0 h', '2.3 d', '–')
    """
    if seconds is None:
        return "–"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f} %"


def number(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
