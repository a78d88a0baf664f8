"""Shared fixtures: databases (SQLite and the real PostgreSQL), services, API clients.

In CI (``CI=true``) a test whose real component is missing fails; elsewhere it skips, saying why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import structlog
from fastapi.testclient import TestClient

from watchkeeper.server import create_app
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.settings import Settings


@pytest.fixture(autouse=True)
def _structlog_as_configured_by_no_one() -> Iterator[None]:
    """A test that runs the CLI in process configures logging (``logconfig.configure``: loggers cached
    on first use); left so, a later test's ``structlog.testing.capture_logs`` sees nothing from a logger
    first used meanwhile. Every test starts from structlog's defaults."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(condition: bool, why: str) -> None:
    """Skip outside CI when a real component is missing; in CI, fail."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must run this test, but {why}")
    pytest.skip(why)


def pg_available() -> bool:
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def pg_ok() -> bool:
    return pg_available()


@pytest.fixture
def pg_url(pg_ok: bool) -> Iterator[str]:
    """A fresh schema on the real PostgreSQL for one test, dropped afterwards."""
    need(pg_ok, f"PostgreSQL is not reachable at {PG_DSN}")
    schema = f"wk_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wk.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Every storage test runs on SQLite and on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


class Clock:
    """An injectable clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 22, 6, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_service(clock: Clock) -> Iterator[Callable[..., Watchkeeper]]:
    made: list[Watchkeeper] = []

    def make(url: str, **overrides: object) -> Watchkeeper:
        wk = Watchkeeper(Settings(database_url=url, **overrides), clock=clock)  # type: ignore[arg-type]
        wk.upgrade()
        made.append(wk)
        return wk

    yield make
    for wk in made:
        wk.close()


@pytest.fixture
def service(make_service: Callable[..., Watchkeeper], db_url: str) -> Watchkeeper:
    return make_service(db_url)


class Api:
    """A TestClient plus one token per role."""

    def __init__(self, service: Watchkeeper, **app: Any) -> None:
        self.service = service
        self.client = TestClient(create_app(service, upgrade=False, **app), raise_server_exceptions=True)
        self.tokens = {role: service.create_token(role, f"test-{role.value}", "test") for role in Role}

    def headers(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture
def api(service: Watchkeeper) -> Iterator[Api]:
    a = Api(service)
    with a.client:
        yield a
