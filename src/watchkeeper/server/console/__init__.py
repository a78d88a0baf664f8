"""The web console: server-rendered pages under ``/console`` (FastAPI + Jinja2, HTMX for the
live parts, assets served from this package; readable without JavaScript). docs/console.md."""

from __future__ import annotations

from fastapi import FastAPI

from watchkeeper.service import Watchkeeper


def install(app: FastAPI, service: Watchkeeper) -> None:
    """Add the console's routes to ``app``."""
    from watchkeeper.server.console import manage, outbox, pages, value
    from watchkeeper.server.console.web import Console

    app.state.console = Console(service)
    # the routes themselves (their paths carry /console), not a nested router: every tool that
    # walks app.routes (the role table, the OpenAPI checks) sees plain routes
    for router in (pages.router, manage.router, value.router, outbox.router):
        app.router.routes.extend(router.routes)
