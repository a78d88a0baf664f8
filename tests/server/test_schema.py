"""The OpenAPI spec tells the truth (issue 12 item 22): schemathesis generates requests from the
spec for every operation, valid and invalid, and runs every check on the answers: no server
error, every status and body as documented, invalid requests refused, valid ones accepted.

Bounded: ``MAX_EXAMPLES`` per operation, no example database. Runs on SQLite (in-process, the
ASGI app) and on PostgreSQL.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from conftest import PG_DSN, need, pg_available
from fixtures.alertmanager import am_alert, am_webhook
from watchkeeper.server import create_app
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.settings import Settings

MAX_EXAMPLES = 15
#: Operations whose bodies are checked beyond what a JSON Schema can say, so a body valid for the
#: spec may still be refused with a 422 naming the reason: a silence's matcher syntax, its regular
#: expression and its end after its start; a split's fingerprints being members of the incident;
#: a merge into another incident; ``/kpis``'s ``to`` after ``from``; a use case's stage and runbooks.
SEMANTIC = {("POST", "/api/v1/silences"), ("POST", "/api/v1/incidents/{incident_id}/split"),
            ("POST", "/api/v1/incidents/{incident_id}/merge"), ("GET", "/api/v1/kpis"),
            # a new use case starts at proposed and covers runbooks that exist; a model's and a use
            # case's windows end after they start (docs/value.md)
            ("POST", "/api/v1/usecases"), ("POST", "/api/v1/models"),
            ("POST", "/api/v1/models/{kind}/{name}/drift"),  # a score check needs the scores
            # ServiceNow's incident record: its fields are ServiceNow's, checked as records (docs/integrations.md)
            ("POST", "/api/v1/integrations/servicenow/inbound")}
# OTLP's fields are checked as OTLP's (a bad export is a 400); RED rows: 'end' after 'start', at most 31 days
SEMANTIC |= {("POST", "/v1/traces"), ("GET", "/api/v1/traces/red")}


def _schema() -> Any:
    wk = Watchkeeper(Settings(database_url="sqlite:///:memory:"), metrics=False)
    try:
        app = create_app(wk, upgrade=False)
        loaded = schemathesis.openapi.from_dict(app.openapi())
    finally:
        wk.close()
    # Requests go in-process to each test's app (``app=`` below); this one only makes schemathesis
    # use its ASGI transport for the requests its checks send on their own (e.g. without the token).
    loaded.app = app
    # NUL characters are refused with a 422 on every route (docs/limits.md), as the spec says.
    loaded.config.generation.update(allow_x00=False, codec="utf-8", allow_extra_parameters=False)
    # A body over max_body_bytes (e.g. 10,001 events) is refused with the documented 413.
    rejection = loaded.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    return loaded


# OTLP/HTTP's protobuf bodies go as bytes, as application/octet-stream's do (POST /v1/traces)
schemathesis.serializer.alias("application/x-protobuf", "application/octet-stream")
schema = _schema()


class Target:
    """A served Watchkeeper with an admin token and a first incident, for the generated requests."""

    def __init__(self, url: str) -> None:
        self.wk = Watchkeeper(Settings(database_url=url), metrics=False)
        self.wk.upgrade()
        self.headers = {"Authorization": f"Bearer {self.wk.create_token(Role.ADMIN, 'schema', 'test')}"}
        self.wk.ingest("alertmanager", orjson.dumps(am_webhook(am_alert("Down", "db"))), None, "test")
        self.app = create_app(self.wk, upgrade=False)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="wk-schema-"))
        made = Target(f"sqlite:///{folder / 'wk.db'}")
        try:
            yield made
        finally:
            made.wk.close()
            shutil.rmtree(folder, ignore_errors=True)
        return
    need(pg_available(), f"PostgreSQL is not reachable at {PG_DSN}")
    name = f"wk_schema_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    made = Target(f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{name}")
    try:
        yield made
    finally:
        made.wk.close()
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: Any, target: Target) -> None:
    excluded = [positive_data_acceptance] if (case.method, case.path) in SEMANTIC else None
    case.call_and_validate(app=target.app, headers=target.headers, excluded_checks=excluded)
