"""Property tests: random and mutated payloads never cause a 500, and nothing acknowledged is lost."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import PG_DSN, need, pg_available
from fixtures.alertmanager import am_alert, am_webhook
from fixtures.paths import paths
from watchkeeper.server import create_app
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.settings import Settings

SOURCES = ["alertmanager", "grafana", "pagerduty", "events"]

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def harness(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Watchkeeper, str]]:
    schema = f"wk_prop_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('prop') / 'wk.db'}"
    else:
        need(pg_available(), f"PostgreSQL is not reachable at {PG_DSN}")
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    wk = Watchkeeper(Settings(database_url=url, max_body_bytes=64_000))
    try:
        wk.upgrade()
        token = wk.create_token(Role.INGEST, "prop", "test")
        with TestClient(create_app(wk, upgrade=False), raise_server_exceptions=False) as client:
            yield client, wk, token
    finally:
        wk.close()
        if request.param == "postgres":
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def counts(wk: Watchkeeper) -> tuple[int, int]:
    with wk.db.read() as conn:
        events = conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
        dead = conn.execute(sa.text("SELECT count(*) FROM dead_letters")).scalar_one()
    return int(events), int(dead)


def check(harness: tuple[TestClient, Watchkeeper, str], source: str, body: bytes) -> None:
    client, wk, token = harness
    events_before, dead_before = counts(wk)
    r = client.post(f"/api/v1/ingest/{source}", content=body,
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert r.status_code < 500, (r.status_code, r.text, body[:300])
    events_after, dead_after = counts(wk)
    if r.status_code == 202:
        assert events_after - events_before == r.json()["accepted"]
        assert dead_after == dead_before
    else:
        assert r.status_code in (400, 413, 415, 422), r.text
        assert r.json()["error"]
        assert (events_after, dead_after) == (events_before, dead_before + 1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source=st.sampled_from(SOURCES), value=json_values)
def test_random_json(harness: tuple[TestClient, Watchkeeper, str], source: str, value: Any) -> None:
    check(harness, source, json.dumps(value).encode())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source=st.sampled_from(SOURCES), data=st.binary(max_size=300))
def test_random_bytes(harness: tuple[TestClient, Watchkeeper, str], source: str, data: bytes) -> None:
    check(harness, source, data)




def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


VALID = am_webhook(am_alert("InstanceDown", "db", fingerprint="f1"), am_alert("HighLatency", "db"))
MUTANTS = st.one_of(
    json_values,
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=2000),  # unicode, long
    st.just("0001-01-01T00:00:00Z"), st.just("not-a-time"), st.just("$(rm -rf /)"), st.just("../../etc/passwd"),
    st.just("a\x00b"), st.integers(min_value=-(2**70), max_value=2**70),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_alertmanager_webhooks(harness: tuple[TestClient, Watchkeeper, str], data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(paths(VALID)))
    mutant = _replace(VALID, path, data.draw(MUTANTS))
    check(harness, "alertmanager", json.dumps(mutant).encode())


def test_oversized_is_rejected_without_loss(harness: tuple[TestClient, Watchkeeper, str]) -> None:
    check(harness, "alertmanager", b" " * 70_000 + orjson.dumps(VALID))
