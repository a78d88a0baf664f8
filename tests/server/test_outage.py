"""While the database is unreachable the API answers 503 with ``Retry-After`` (never a 500 with a
traceback), logs the outage once per burst, and ``/healthz`` answers 503 with the reason."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from structlog.testing import capture_logs

from conftest import Api
from watchkeeper.lab.prometheus import free_port
from watchkeeper.server import create_app
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.settings import Settings


@pytest.fixture
def down() -> Iterator[TestClient]:
    """A server whose PostgreSQL URL points at a closed port (nothing listens there)."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    wk = Watchkeeper(Settings(database_url=url))
    try:
        with TestClient(create_app(wk, upgrade=False), raise_server_exceptions=True) as client:
            yield client
    finally:
        wk.close()


def test_every_route_answers_503_with_retry_after(down: TestClient) -> None:
    auth = {"Authorization": "Bearer wk_not_checked_yet"}
    with capture_logs() as logs:
        answers = [
            down.get("/api/v1/incidents", headers=auth),
            down.post("/api/v1/ingest/events", headers={**auth, "Content-Type": "application/json"},
                      content=orjson.dumps({"service": "web", "name": "Down"})),
            down.get("/api/v1/approvals", headers=auth),
        ]
    for r in answers:
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "5"
        body = r.json()
        assert body["error"] == "the database is unreachable; retry later"
        assert "Traceback" not in r.text and body["reason"].startswith("OperationalError")
    outage_lines = [e for e in logs if e["event"].startswith("database unreachable")]
    assert len(outage_lines) == 1  # one line for the burst, not one per request
    assert "exc_info" not in outage_lines[0]


def test_healthz_says_why(down: TestClient) -> None:
    r = down.get("/healthz")
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert r.json()["status"] == "unavailable"
    assert r.json()["reason"].startswith("database: OperationalError") and "refused" in r.json()["reason"]


def test_healthz_ok_and_recovery_after_the_engine_comes_back(api: Api) -> None:
    """A database that goes away (its pool disposed, its URL now a closed port) and comes back."""
    assert api.client.get("/healthz").json()["status"] == "ok"
    db = api.service.db
    engine = db.engine
    dead = engine.url.set(host="127.0.0.1", port=free_port(), drivername="postgresql+psycopg", database="test",
                          username="postgres", query={})
    db.engine = create_engine(dead)
    try:
        r = api.client.get("/api/v1/incidents", headers=api.headers(Role.VIEWER))
        assert (r.status_code, api.client.get("/healthz").status_code) == (503, 503)
    finally:
        db.engine.dispose()
        db.engine = engine
    assert api.client.get("/healthz").status_code == 200
    assert api.client.get("/api/v1/incidents", headers=api.headers(Role.VIEWER)).status_code == 200
