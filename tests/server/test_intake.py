"""POST /api/v2/alerts: the journalled intake (SQLite) and its fallback (PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import Api
from watchkeeper.errors import ConfigError, InputError
from watchkeeper.server.app import create_app
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.service.intake import IntakeStage, journal_path
from watchkeeper.storage.journal import Entry, Journal

BODY = [{"labels": {"alertname": "Down", "service": "db", "instance": f"h{k}"},
         "startsAt": "2026-11-22T05:59:00Z"} for k in range(3)]


@pytest.fixture
def api(service: Watchkeeper) -> Iterator[Api]:
    """The journalled intake drained by a thread of this process (``serve`` uses a child process)."""
    a = Api(service, intake="thread")
    with a.client:
        yield a


def _drained(api: Api, within: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:  # bounded
        details = api.client.get("/healthz").json()["details"]
        if details.get("intake", {}).get("backlog", 0) == 0:
            return details
        time.sleep(0.05)
    raise AssertionError("the intake journal was not drained")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_acknowledged_after_the_journal_then_processed(api: Api) -> None:
    answer = api.client.post("/api/v2/alerts", content=orjson.dumps(BODY), headers=api.headers(Role.INGEST))
    assert (answer.status_code, answer.json()) == (202, {"accepted": 3})
    assert "intake" in _drained(api)
    incidents = api.client.get("/api/v1/incidents", headers=api.headers(Role.VIEWER)).json()
    assert [sorted(a["fingerprint"] for a in i.get("alerts", [])) or i["id"] for i in incidents]
    assert sum(i["alert_count"] for i in incidents) == 3


def _metric(api: Api, name: str) -> float | None:
    """One sample of the server's ``/metrics`` (None when it is not there)."""
    for line in api.client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("mode", ["thread", "process"])
def test_metrics_show_the_backlog_and_count_each_alert_once(make_service: Any, db_url: str, mode: str) -> None:
    """A drainer thread counts the alerts it commits; a drainer process counts nothing in the API's
    registry, so the API counts what it appends: either way each alert once."""
    api = Api(make_service(db_url), intake=mode)
    with api.client:
        for _ in range(2):
            answer = api.client.post("/api/v2/alerts", content=orjson.dumps(BODY), headers=api.headers(Role.INGEST))
            assert answer.status_code == 202
        _drained(api, within=60.0)
        assert _metric(api, 'watchkeeper_events_ingested_total{source="prometheus"}') == 6
        assert _metric(api, "watchkeeper_intake_backlog") == 0
        assert _metric(api, "watchkeeper_intake_backlog_limit") == api.service.settings.intake_max_backlog
        assert _metric(api, "watchkeeper_intake_refused_total") == 0
        assert _metric(api, "watchkeeper_intake_oldest_seconds") == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_metrics_show_each_group_commit_of_the_journal(api: Api) -> None:
    """Three requests one after the other: three group commits of one body each; a request's wait to the
    end of its commit is at least the commit."""
    for _ in range(3):
        answer = api.client.post("/api/v2/alerts", content=orjson.dumps(BODY), headers=api.headers(Role.INGEST))
        assert answer.status_code == 202
    assert _metric(api, "watchkeeper_intake_group_bodies_count") == 3
    assert _metric(api, "watchkeeper_intake_group_bodies_sum") == 3
    assert _metric(api, 'watchkeeper_intake_group_bodies_bucket{le="1.0"}') == 3
    assert _metric(api, "watchkeeper_intake_commit_seconds_count") == 3
    commit, wait = _metric(api, "watchkeeper_intake_commit_seconds_sum"), _metric(api, "watchkeeper_intake_wait_seconds_sum")
    assert commit is not None and wait is not None and 0 < commit <= wait


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_journal_closed_under_the_scrape_leaves_out_its_series(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    def closed(_journal: Journal) -> None:
        raise sqlite3.ProgrammingError("Cannot operate on a closed database.")

    monkeypatch.setattr(Journal, "oldest", closed)
    answer = api.client.get("/metrics")
    assert answer.status_code == 200 and "watchkeeper_events_ingested" in answer.text
    assert "watchkeeper_intake_backlog" not in answer.text and "watchkeeper_intake_oldest" not in answer.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b"[{", "application/json", 400),
    (b'{"labels": {}}', "application/json", 422),
    (b'[{"labels": {"a": 1}}]', "application/json", 422),
    (b"[]", "text/plain", 415),
    (b'[{"labels": {"a": "\\u0000"}}]', "application/json", 422),
    (b"[" * 5000 + b"]" * 5000, "application/json", 400),  # as on /api/v1/ingest/*: orjson refuses it
])
def test_bad_input_is_a_4xx_and_a_dead_letter(api: Api, body: bytes, content_type: str, status: int) -> None:
    answer = api.client.post("/api/v2/alerts", content=body,
                             headers={**api.headers(Role.INGEST), "content-type": content_type})
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]
    letters = api.client.get("/api/v1/deadletters", headers=api.headers(Role.ADMIN)).json()
    assert letters and letters[0]["source"] == "prometheus"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_tokens_are_checked(api: Api) -> None:
    missing = api.client.post("/api/v2/alerts", content=orjson.dumps(BODY))
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    viewer = api.client.post("/api/v2/alerts", content=orjson.dumps(BODY), headers=api.headers(Role.VIEWER))
    assert viewer.status_code == 403


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_too_large_is_a_413(make_service: Any, db_url: str) -> None:
    service = make_service(db_url, max_body_bytes=1000)
    api = Api(service, intake="thread")
    with api.client:
        answer = api.client.post("/api/v2/alerts", content=orjson.dumps(BODY * 50), headers=api.headers(Role.INGEST))
    assert answer.status_code == 413


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_backlog_bound_is_a_setting_and_beyond_it_a_503(
        make_service: Any, db_url: str, monkeypatch: pytest.MonkeyPatch, clock: Any) -> None:
    monkeypatch.setattr(IntakeStage, "drain_once", lambda _stage: 0)  # nothing drains: the backlog only grows
    api = Api(make_service(db_url, intake_max_backlog=4), intake="thread")
    with api.client:
        posted = [api.client.post("/api/v2/alerts", content=orjson.dumps(BODY), headers=api.headers(Role.INGEST))
                  for _ in range(3)]
        assert [a.status_code for a in posted] == [202, 202, 503]  # 0, then 3 waiting: taken; 6 >= 4: refused
        assert posted[2].headers["retry-after"] == "1" and "backlog is full" in posted[2].json()["error"]
        assert api.client.get("/healthz").json()["details"]["intake"] == {"backlog": 6}
        assert (_metric(api, "watchkeeper_intake_backlog"), _metric(api, "watchkeeper_intake_backlog_limit"),
                _metric(api, "watchkeeper_intake_refused_total")) == (6, 4, 1)
        clock.advance(seconds=90)
        assert _metric(api, "watchkeeper_intake_oldest_seconds") == 90  # the first body still waits


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_journal_goes_where_intake_journal_dir_says(make_service: Any, db_url: str, tmp_path: Any) -> None:
    where = tmp_path / "journal-device"
    where.mkdir()
    service = make_service(db_url, intake_journal_dir=where)
    api = Api(service, intake="thread")
    with api.client:
        answer = api.client.post("/api/v2/alerts", content=orjson.dumps(BODY), headers=api.headers(Role.INGEST))
        assert answer.status_code == 202
        assert [p.name for p in where.iterdir() if p.name.endswith("-intake")] == [
            Path(service.db.engine.url.database or "").name + "-intake"]
        assert "intake" in _drained(api)
        incidents = api.client.get("/api/v1/incidents", headers=api.headers(Role.VIEWER)).json()
        assert sum(i["alert_count"] for i in incidents) == 3


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_missing_journal_dir_is_a_clear_error(make_service: Any, db_url: str, tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match=r"intake_journal_dir .*nowhere.* is not a directory"):
        create_app(make_service(db_url, intake_journal_dir=tmp_path / "nowhere"), upgrade=False, intake="thread")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_journal_dir_that_would_strand_acknowledged_bodies_is_refused(
        make_service: Any, db_url: str, tmp_path: Any) -> None:
    beside = journal_path(make_service(db_url))  # a body acknowledged by an earlier run, not yet drained
    assert beside is not None
    journal = Journal(beside)
    journal.append([Entry(datetime.now(UTC), "prometheus", "token:t", 3, orjson.dumps(BODY))])
    journal.close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(ConfigError, match="1 acknowledged request bodies wait in the journal"):
        create_app(make_service(db_url, intake_journal_dir=elsewhere), upgrade=False, intake="thread")


def test_postgres_commits_in_the_request(pg_url: str, make_service: Any) -> None:
    api = Api(make_service(pg_url), intake="thread")  # asked for, yet PostgreSQL commits in the request
    with api.client:
        answer = api.client.post("/api/v2/alerts", content=orjson.dumps(BODY), headers=api.headers(Role.INGEST))
        assert answer.status_code == 202 and answer.json()["accepted"] == 3 and answer.json()["incidents"]
        assert "intake" not in api.client.get("/healthz").json()["details"]


def _events(service: Watchkeeper) -> int:
    from sqlalchemy import text

    with service.db.read() as conn:
        return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())


def test_a_crash_between_commit_and_drop_counts_nothing_twice(make_service: Any, sqlite_url: str,
                                                              tmp_path: Any) -> None:
    service = make_service(sqlite_url)
    path = tmp_path / "wk.db-intake"
    journal = Journal(path)
    at = service.clock()
    journal.append([Entry(at, "prometheus", "token:t", 3, orjson.dumps(BODY)) for _ in range(4)])
    journal.close()
    first = IntakeStage(service, path, batch_alerts=6)  # two bodies per batch
    first.open()
    entries = first.journal.take(6) if first.journal else []
    first._commit(entries)  # committed ... and the process dies before the rows are dropped
    first.journal.close() if first.journal else None
    assert _events(service) == 6
    second = IntakeStage(service, path, batch_alerts=6)
    second.open()
    while second.drain_once():
        pass
    assert _events(service) == 12  # 4 bodies x 3 alerts, each once
    assert second.journal is not None and second.journal.bodies == 0 and second.journal.backlog() == 0
    second.journal.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_journal_that_cannot_take_it_is_a_503_and_the_next_body_is_taken(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(_journal: Journal, _entries: list[Entry]) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(Journal, "append", full)
        answer = api.client.post("/api/v2/alerts", content=orjson.dumps(BODY), headers=api.headers(Role.INGEST))
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert "retry shortly" in answer.json()["error"]
    again = api.client.post("/api/v2/alerts", content=orjson.dumps(BODY), headers=api.headers(Role.INGEST))
    assert (again.status_code, again.json()) == (202, {"accepted": 3})


@pytest.mark.parametrize("body", [
    orjson.dumps(BODY),
    b"[{",
    b'{"labels": {}}',
    b'[{"labels": {"a": 1}}]',
    b'[{"labels": {"a": "\\u0000"}}]',
    orjson.dumps([{"labels": {"alertname": "Down", "instance": "h" * 300}}]),
    orjson.dumps([{"labels": {"alertname": "Down"}, "startsAt": "yesterday"}]),
])
def test_the_request_path_count_says_what_check_says(make_service: Any, sqlite_url: str, body: bytes) -> None:
    service = make_service(sqlite_url)
    at = service.clock()
    try:
        checked: Any = len(service.check("prometheus", body, "application/json", at))
    except InputError as exc:
        checked = (exc.status, str(exc))
    try:
        counted: Any = service.count("prometheus", body, "application/json", at)
    except InputError as exc:
        counted = (exc.status, str(exc))
    assert counted == checked


def test_the_backlog_counts_another_objects_drops(tmp_path: Any) -> None:
    """The API process appends, the drainer drops: the backlog read by the first sees both."""
    at = datetime(2026, 11, 22, tzinfo=UTC)
    earlier = Journal(tmp_path / "j")
    earlier.append([Entry(at, "prometheus", "token:t", 5, b"[]")])  # left by a previous run
    earlier.close()
    api, drainer = Journal(tmp_path / "j"), Journal(tmp_path / "j")
    try:
        api.append([Entry(at, "prometheus", "token:t", n, b"[]") for n in (2, 3)])
        assert api.backlog() == 10
        drainer.drop(drainer.take(7))  # the first two bodies: 5 + 2 alerts
        assert api.backlog() == 3
        drainer.drop(drainer.take(100))
        assert api.backlog() == 0
        again = Journal(tmp_path / "j")  # a restart: the file's counter carries on
        assert again.backlog() == 0 and again.bodies == 0
        again.close()
    finally:
        api.close()
        drainer.close()


@pytest.mark.parametrize(("sizes", "limit", "taken"), [
    ([100, 100, 100], 200, [100, 100]),  # exactly full
    ([100, 100, 100], 150, [100]),  # the next would overflow
    ([500, 1, 1], 10, [500]),  # the oldest alone is bigger than a batch: taken alone
    ([0, 0, 3, 4], 3, [0, 0, 3]),  # empty bodies count nothing
    ([1] * 30, 2_000, [1] * 30),  # everything, when it fits
])
def test_take_returns_the_oldest_bodies_up_to_the_batch(tmp_path: Any, sizes: list[int], limit: int,
                                                        taken: list[int]) -> None:
    """Bodies of many alerts: the batch limit counts alerts, not rows (at 100 alerts a body a batch
    of 2,000 alerts is 20 bodies), and the bodies come back whole and in order."""
    at = datetime(2026, 11, 22, tzinfo=UTC)
    journal = Journal(tmp_path / "j")
    try:
        journal.append([Entry(at, "prometheus", "token:t", n, b"body-%d" % k) for k, n in enumerate(sizes)])
        got = journal.take(limit)
        assert [e.alerts for e in got] == taken
        assert [e.body for e in got] == [b"body-%d" % k for k in range(len(taken))]
        assert [e.id for e in got] == sorted(e.id for e in got) and all(e.received_at == at for e in got)
        journal.drop(got)
        assert [e.alerts for e in journal.take(10**6)] == sizes[len(taken):]  # the rest, untouched
    finally:
        journal.close()


def test_the_appender_thread_commits_groups_and_leaves_when_idle(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from watchkeeper.server.intake import Appender

    class Stage:
        journal = Journal(tmp_path / "j")
        notified = 0

        def __init__(self) -> None:
            self.bodies: list[int] = []

        def notify(self, bodies: int = 1) -> None:
            self.notified += 1
            self.bodies.append(bodies)

    stage = Stage()
    appender = Appender(stage)  # type: ignore[arg-type]
    monkeypatch.setattr(Appender, "IDLE", 0.05)
    at = datetime(2026, 11, 22, tzinfo=UTC)

    async def burst() -> None:
        await asyncio.gather(*(appender.append(Entry(at, "prometheus", "token:t", 2, b"[]")) for _ in range(20)))

    try:
        asyncio.run(burst())
        assert (stage.journal.bodies, stage.journal.backlog()) == (20, 40)  # committed before the answers
        deadline = time.monotonic() + 10  # the drainer is told just after the answers: wait for the last group
        while sum(stage.bodies) < 20 and time.monotonic() < deadline:  # bounded
            time.sleep(0.01)
        assert 1 <= stage.notified < 20  # in groups
        assert sum(stage.bodies) == 20  # each group says how many bodies it held
        deadline = time.monotonic() + 10
        while appender._thread is not None and time.monotonic() < deadline:  # bounded
            time.sleep(0.01)
        assert appender._thread is None  # idle: gone
        asyncio.run(burst())  # and back at the next body
        assert stage.journal.bodies == 40
    finally:
        stage.journal.close()


def test_the_appender_reports_each_group_and_a_failing_report_holds_no_answer(tmp_path: Any) -> None:
    import asyncio

    from watchkeeper.server.intake import Appender

    class Stage:
        journal = Journal(tmp_path / "j")

        def notify(self, bodies: int = 1) -> None:
            pass

    seen: list[tuple[int, float, float]] = []

    def observe(group: int, took: float, waited: float) -> None:
        seen.append((group, took, waited))
        raise RuntimeError("a broken metric")

    stage = Stage()
    appender = Appender(stage, observe)  # type: ignore[arg-type]
    at = datetime(2026, 11, 22, tzinfo=UTC)

    async def burst() -> None:
        await asyncio.wait_for(asyncio.gather(
            *(appender.append(Entry(at, "prometheus", "token:t", 1, b"[]")) for _ in range(10))), timeout=30)

    try:
        asyncio.run(burst())  # answered although every report raised
        assert stage.journal.bodies == 10 and sum(g for g, _, _ in seen) == 10
        assert all(0 < took <= waited for _, took, waited in seen)
    finally:
        stage.journal.close()


def test_a_drainer_thread_defers_while_the_api_is_saturated(make_service: Any, sqlite_url: str, tmp_path: Any) -> None:
    """``intake_drainer: thread``: while group commits hold several bodies (requests queue behind the
    journal) the stage holds its batches back — at most ``MAX_DEFER`` between two, in batches of at most
    ``BUSY_BATCH`` — and drains at full speed once arrivals slow or the backlog nears its bound."""
    from watchkeeper.service import intake

    service = make_service(sqlite_url)
    path = tmp_path / "wk.db-intake"
    clock = [1000.0]
    stage = IntakeStage(service, path, defer=True, max_backlog=100)
    plain = IntakeStage(service, tmp_path / "other-intake", defer=False, max_backlog=100)
    for s in (stage, plain):
        s.clock = lambda: clock[0]
        s.open()
    try:
        assert stage.journal is not None and plain.journal is not None
        stage.journal.append([Entry(service.clock(), "prometheus", "token:t", 3, orjson.dumps(BODY))] * 4)
        assert not stage.deferred()  # nothing drained yet: the first batch goes at once
        stage.notify(1)
        assert stage.drain_once() and not stage.deferred()  # one body a commit: not saturated
        stage._drained_at = clock[0]
        stage.notify(3)
        plain.notify(3)
        assert stage.deferred() and not plain.deferred()  # only a stage told to defer does
        clock[0] += intake.MAX_DEFER + 0.01
        stage.notify(3)
        assert not stage.deferred()  # a batch at least every MAX_DEFER
        stage._drained_at = clock[0]
        assert stage.deferred()
        clock[0] += intake.BUSY_WINDOW + 0.01
        assert not stage.deferred()  # the arrivals slowed down: full speed
        stage.notify(3)
        stage.journal.append([Entry(service.clock(), "prometheus", "token:t", 80, b"[]")])
        assert not stage.deferred()  # the backlog near its bound: full speed
    finally:
        for s in (stage, plain):
            if s.journal is not None:
                s.journal.close()


def test_a_saturated_drainer_thread_takes_short_batches(make_service: Any, sqlite_url: str, tmp_path: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from watchkeeper.service import intake

    monkeypatch.setattr(intake, "BUSY_BATCH", 6)
    service = make_service(sqlite_url)
    stage = IntakeStage(service, tmp_path / "wk.db-intake", defer=True)
    stage.open()
    try:
        assert stage.journal is not None
        stage.journal.append([Entry(service.clock(), "prometheus", "token:t", 3, orjson.dumps(BODY))] * 8)
        stage.notify(2)
        assert stage.drain_once() == 6  # two bodies: BUSY_BATCH alerts
        stage._saturated_at = float("-inf")
        assert stage.drain_once() == 18  # the rest at once
    finally:
        if stage.journal is not None:
            stage.journal.close()
