"""The console's outbox page: pending and dead-lettered messages with their last error, and a
Retry button for operators (CSRF-checked, audited as the signed-in user)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from fixtures.console import Browser, console_service
from watchkeeper.integrations.config import IntegrationsConfig
from watchkeeper.integrations.routing import Route
from watchkeeper.integrations.runtime import Integrations
from watchkeeper.service import Watchkeeper
from watchkeeper.storage import audit
from watchkeeper.storage import outbox as store


def closed_port() -> int:
    """A local port nothing listens on (a refused connection: retryable, fails at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def wk(make_service: Callable[..., Watchkeeper], sqlite_url: str, tmp_path: Path) -> Watchkeeper:
    config = IntegrationsConfig.model_validate({
        "targets": {"hook": {"type": "webhook", "url": f"http://127.0.0.1:{closed_port()}/hook",
                             "secret": "console-hook-secret-0123456789", "retries": 0, "timeout_seconds": 2}},
        "outbox": {"max_attempts": 1}})
    return console_service(make_service, sqlite_url, tmp_path,
                        integrations=config, routes=[Route.model_validate({"to": ["hook"]})])



def incident(wk: Watchkeeper, service: str) -> int:
    body = orjson.dumps({"service": service, "name": "Down", "summary": f"{service} down", "severity": "critical"})
    return wk.ingest("events", body, "application/json", "test").incidents[0]


def test_pending_then_dead_with_its_error_then_retried_by_an_operator(
        wk: Watchkeeper, browser: Callable[[str], Browser]) -> None:
    first = incident(wk, "checkout")
    operator = browser("operator")
    page = operator.get("/console/outbox")
    assert page.status_code == 200
    assert "<code>GET /api/v1/outbox?status=dead</code>" in page.text
    assert "<code>POST /api/v1/outbox/{id}/retry</code>" in page.text
    assert "No dead messages." in page.text and f'href="/console/incidents/{first}"' in page.text  # pending

    integrations: Integrations = operator.client.app.state.integrations  # type: ignore[attr-defined]
    integrations.delivery.drain()  # refused: with max_attempts 1, dead at once
    with wk.db.read() as conn:
        [dead] = store.messages(conn, status="dead")
    page = operator.get("/console/outbox").text
    assert f'id="message-{dead["id"]}"' in page and "cannot reach http://127.0.0.1" in page
    assert "console-hook-secret" not in page
    assert f'action="/console/outbox/{dead["id"]}/retry"' in page

    refused = operator.post(f"/console/outbox/{dead['id']}/retry", csrf=False)
    assert refused.status_code == 403  # no CSRF token: nothing happens
    with wk.db.read() as conn:
        assert store.get(conn, dead["id"])["status"] == "dead"

    done = operator.post(f"/console/outbox/{dead['id']}/retry")
    assert done.status_code == 303 and done.headers["location"] == f"/console/outbox?done={dead['id']}"
    with wk.db.read() as conn:
        assert store.get(conn, dead["id"])["status"] == "pending"
        retried = [r for r in audit.records(conn) if r.kind == "outbox.retried"]
    assert [r.actor for r in retried] == ["user:operator"]
    assert "is due again" in operator.get(f"/console/outbox?done={dead['id']}").text


def test_a_viewer_sees_the_page_without_a_retry_button(wk: Watchkeeper, browser: Callable[[str], Browser]) -> None:
    incident(wk, "checkout")
    viewer = browser("viewer")
    viewer.client.app.state.integrations.delivery.drain()  # type: ignore[attr-defined]
    page = viewer.get("/console/outbox").text
    assert "cannot reach" in page and "/retry" not in page.split("<h2>Pending</h2>")[0].split("Dead-lettered")[1]
    got = viewer.post("/console/outbox/1/retry")
    assert got.status_code == 403


@pytest.mark.parametrize("path", ["/console/outbox?target=" + "x" * 100, "/console/outbox?done=0",
                                  "/console/outbox?done=abc"])
def test_hostile_reads_are_4xx(browser: Callable[[str], Browser], path: str) -> None:
    got = browser("admin").get(path)
    assert 400 <= got.status_code < 500


def test_retrying_a_missing_or_delivered_message_is_a_4xx(browser: Callable[[str], Browser]) -> None:
    assert browser("admin").post("/console/outbox/999/retry").status_code == 404
