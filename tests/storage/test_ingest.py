"""Ingest through the database (SQLite and PostgreSQL) equals the in-memory replay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import orjson
import pytest

from conftest import Clock
from fixtures.alertmanager import am_alert, am_webhook
from watchkeeper.replay import incident_records, replay
from watchkeeper.service import Watchkeeper
from watchkeeper.sources import registry


def storm() -> list[dict[str, object]]:
    """Two services failing, repeats, a resolution, a refire, a third service much later."""
    db1 = am_alert("InstanceDown", "payments-db", instance="db-1:5432")
    db2 = am_alert("HighLatency", "payments-db", instance="db-1:5432", severity="warning")
    web = am_alert("HighErrorRate", "checkout", instance="checkout-1:8080")
    resolved = {**db1, "status": "resolved", "endsAt": "2026-11-22T06:04:00Z"}
    late = am_alert("DiskFull", "payments-db", instance="db-2:5432", starts="2026-11-22T07:00:00Z")
    return [am_webhook(db1), am_webhook(db1, db2), am_webhook(web), am_webhook(resolved, db2), am_webhook(late)]


@pytest.mark.parametrize("keep", [None, 1])
def test_database_ingest_matches_offline_replay(
    service: Watchkeeper, clock: Clock, monkeypatch: pytest.MonkeyPatch, keep: int | None
) -> None:
    """Also when the kept state forgets every alert it may after each commit (``KEEP_ALERTS``: 1):
    a forgotten alert is read back from the database when named again, with the same result."""
    if keep is not None:
        monkeypatch.setattr("watchkeeper.service.ingest.KEEP_ALERTS", keep)
    many = [am_alert("Errors", "cart", instance=f"cart-{k}:8080", starts="2026-11-22T07:00:00Z")
            for k in range(8)]
    resolved = [{**a, "status": "resolved", "endsAt": "2026-11-22T07:09:00Z"} for a in many]
    bodies = [*storm(), am_webhook(*many[:4]), am_webhook(*many[4:]), am_webhook(*many), am_webhook(*resolved)]
    lines = []
    for offset, body in zip([0, 30, 40, 240, 3600, 3610, 3620, 3700, 4000], bodies, strict=True):
        clock.now = clock.now.replace(minute=0, second=0) + timedelta(seconds=offset)
        service.ingest("alertmanager", orjson.dumps(body), "application/json", "test")
        lines.append(orjson.dumps({**body, "received_at": clock.now.isoformat()}))
        assert service._kept is not None
        if keep is not None:  # only what a footprint names stays
            named = {fp for f in service._kept[1].footprints.values() for fp in (f.origin, *f.members)}
            assert set(service._kept[1].alerts) <= named
    offline = {r["id"]: r for r in incident_records(replay(lines, registry(), service.config))}
    online = {i["id"]: i for i in service.incidents()}
    assert set(offline) == set(online) and len(online) >= 3
    if keep is not None:  # something was forgotten and read back
        assert service._kept is not None and len(service._kept[1].alerts) < sum(len(i["alerts"]) for i in online.values())
    for incident_id, record in offline.items():
        assert [a["fingerprint"] for a in online[incident_id]["alerts"]] == [
            a["fingerprint"] for a in record["alerts"]
        ]
        assert [a["reason"] for a in online[incident_id]["alerts"]] == [a["reason"] for a in record["alerts"]]
        assert online[incident_id]["status"] == record["status"]
        assert online[incident_id]["services"] == record["services"]


def test_a_new_alert_is_written_once(service: Watchkeeper) -> None:
    """An alert first seen in a batch is inserted, not inserted and then updated with the very
    same values; a repeat is an update."""
    from sqlalchemy import event

    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(" ".join(statement.split()))

    body = orjson.dumps(storm()[1])
    event.listen(service.db.engine, "before_cursor_execute", seen)
    try:
        service.ingest("alertmanager", body, "application/json", "test")
        first, statements[:] = list(statements), []
        service.ingest("alertmanager", body, "application/json", "test")
    finally:
        event.remove(service.db.engine, "before_cursor_execute", seen)
    assert [s for s in first if s.startswith("INSERT INTO alerts ")] != []
    assert [s for s in first if s.startswith("UPDATE alerts ")] == []
    assert [s for s in statements if s.startswith("UPDATE alerts ")] != []
    assert [a["count"] for a in service.incidents()[0]["alerts"]] == [2, 2]


def test_repeats_update_count_and_resolution_closes(service: Watchkeeper) -> None:
    alert = am_alert("InstanceDown", "db", fingerprint="f1")
    for _ in range(3):
        service.ingest("alertmanager", orjson.dumps(am_webhook(alert)), "application/json", "t")
    [incident] = service.incidents()
    assert incident["alerts"][0]["count"] == 3 and incident["status"] == "open"
    done = {**alert, "status": "resolved", "endsAt": "2026-11-22T06:10:00Z"}
    service.ingest("alertmanager", orjson.dumps(am_webhook(done)), "application/json", "t")
    [incident] = service.incidents()
    assert incident["status"] == "resolved" and incident["alerts"][0]["status"] == "resolved"


def test_state_survives_a_restart(service: Watchkeeper, make_service: Callable[..., Watchkeeper], db_url: str) -> None:
    alert = am_alert("InstanceDown", "db", fingerprint="f1")
    service.ingest("alertmanager", orjson.dumps(am_webhook(alert)), "application/json", "t")
    service.close()
    again = make_service(db_url)
    again.ingest("alertmanager", orjson.dumps(am_webhook(alert)), "application/json", "t")
    [incident] = again.incidents()
    assert incident["alerts"][0]["count"] == 2


@pytest.mark.parametrize("window", [60.0, 600.0])
def test_window_setting_applies(make_service: Callable[..., Watchkeeper], db_url: str, clock: Clock, window: float) -> None:
    wk = make_service(db_url, correlation_window_seconds=window)
    wk.ingest("alertmanager", orjson.dumps(am_webhook(am_alert("A", "db"))), "application/json", "t")
    clock.advance(seconds=120)
    wk.ingest("alertmanager", orjson.dumps(am_webhook(am_alert("B", "db"))), "application/json", "t")
    assert len(wk.incidents()) == (2 if window == 60.0 else 1)


def test_kept_state_is_dropped_when_someone_else_writes(
    make_service: Callable[..., Watchkeeper], db_url: str
) -> None:
    """Two processes on one database: the first keeps its pipeline state between requests; the
    second resolves the incident behind its back; the first must notice (the audit head moved)."""
    from watchkeeper.lifecycle import Action

    first, second = make_service(db_url), make_service(db_url)
    first.ingest("alertmanager", orjson.dumps(am_webhook(am_alert("A", "db", fingerprint="a"))), "application/json", "t")
    first.ingest("alertmanager", orjson.dumps(am_webhook(am_alert("A", "db", fingerprint="a"))), "application/json", "t")
    assert first._kept is not None
    second.act(1, Action.RESOLVE, "cli:alice")
    result = first.ingest("alertmanager", orjson.dumps(am_webhook(am_alert("B", "db", fingerprint="b"))),
                          "application/json", "t")
    assert result.opened == [2]  # not joined to the incident the other process resolved
    second.ingest("alertmanager", orjson.dumps(am_webhook(am_alert("C", "db", fingerprint="c"))), "application/json", "t")
    result = first.ingest("alertmanager", orjson.dumps(am_webhook(am_alert("B", "db", fingerprint="b"))),
                          "application/json", "t")
    [incident] = [i for i in first.incidents() if i["id"] == 2]
    assert [a["fingerprint"] for a in incident["alerts"]] == ["b", "c"]
    assert incident["alerts"][0]["count"] == 2  # the repeat counted on top of what is stored
    assert first.verify_audit().ok


def test_a_failed_request_leaves_nothing_kept(make_service: Callable[..., Watchkeeper], db_url: str) -> None:
    wk = make_service(db_url)
    wk.ingest("alertmanager", orjson.dumps(am_webhook(am_alert("A", "db", fingerprint="a"))), "application/json", "t")
    assert wk._kept is not None
    original = wk.db.write

    def broken(**_kw):  # type: ignore[no-untyped-def]
        raise RuntimeError("database went away")

    wk.db.write = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        wk.ingest("alertmanager", orjson.dumps(am_webhook(am_alert("B", "db", fingerprint="b"))), "application/json", "t")
    assert wk._kept is None
    wk.db.write = original  # type: ignore[method-assign]
    wk.ingest("alertmanager", orjson.dumps(am_webhook(am_alert("B", "db", fingerprint="b"))), "application/json", "t")
    assert [a["fingerprint"] for a in wk.incidents()[0]["alerts"]] == ["a", "b"]


def test_concurrent_requests_share_commits_but_keep_their_own_results(
    make_service: Callable[..., Watchkeeper], db_url: str
) -> None:
    import threading

    import sqlalchemy as sa

    wk = make_service(db_url)
    results: dict[tuple[int, int], object] = {}
    errors: list[BaseException] = []

    def client(worker: int) -> None:
        try:
            for n in range(15):
                body = am_webhook(am_alert(f"A{n % 3}", f"svc{worker}", fingerprint=f"w{worker}-{n % 3}"))
                results[(worker, n)] = wk.ingest("alertmanager", orjson.dumps(body), "application/json", f"token:w{worker}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    incidents = {i["services"][0]: i for i in wk.incidents()}
    assert len(incidents) == 6
    for (worker, _n), result in results.items():
        assert result.accepted == 1  # type: ignore[attr-defined]
        assert result.incidents == [incidents[f"svc{worker}"]["id"]]  # type: ignore[attr-defined]
    assert sum(1 for r in results.values() if r.opened) == 6  # type: ignore[attr-defined]
    with wk.db.read() as conn:
        actors = conn.execute(sa.text("SELECT actor, count(*) FROM audit_log WHERE kind = 'ingest.accepted' "
                                      "GROUP BY actor")).all()
        events = conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
    assert dict(actors) == {f"token:w{w}": 15 for w in range(6)} and events == 90
    assert all(i["alerts"][0]["count"] == 5 for i in incidents.values())
    assert wk.verify_audit().ok
