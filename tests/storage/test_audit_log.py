"""The stored audit log: written with every change, verified, tamper detected, append-only."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest
import sqlalchemy as sa

from fixtures.alertmanager import am_alert, am_webhook
from watchkeeper.lifecycle import Action
from watchkeeper.service import Watchkeeper


def populate(wk: Watchkeeper) -> None:
    wk.ingest("alertmanager", orjson.dumps(am_webhook(am_alert("A", "db"), am_alert("B", "web"))),
              "application/json", "token:ingest")
    wk.act(1, Action.ACKNOWLEDGE, "cli:alice", "on it")
    wk.act(1, Action.RESOLVE, "cli:alice")


def kinds(wk: Watchkeeper) -> list[str]:
    with wk.db.read() as conn:
        return [r.kind for r in conn.execute(sa.text("SELECT kind FROM audit_log ORDER BY seq"))]


def test_every_change_is_audited_in_order(service: Watchkeeper) -> None:
    populate(service)
    assert kinds(service) == [
        "incident.opened", "alert.opened", "incident.opened", "alert.opened", "ingest.accepted",
        "incident.acknowledged", "incident.resolved",
    ]
    assert service.verify_audit().ok
    timeline = service.incident(1)["timeline"]
    assert [t["kind"] for t in timeline] == ["incident.opened", "incident.acknowledged", "incident.resolved"]
    assert timeline[1]["actor"] == "cli:alice" and timeline[1]["comment"] == "on it"


def test_postgres_refuses_update_delete_truncate(make_service: Callable[..., Watchkeeper], pg_url: str) -> None:
    wk = make_service(pg_url)
    populate(wk)
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log WHERE seq = 2",
                      "TRUNCATE audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), wk.db.write() as conn:
            conn.execute(sa.text(statement))
    assert wk.verify_audit().ok


def test_sqlite_refuses_update_and_delete_through_the_app(make_service: Callable[..., Watchkeeper], sqlite_url: str) -> None:
    wk = make_service(sqlite_url)
    populate(wk)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), wk.db.write() as conn:
        conn.execute(sa.text("DELETE FROM audit_log"))


TAMPERING = {
    "edit": (["UPDATE audit_log SET payload = replace(payload, 'on it', 'not me') WHERE seq = 6"], 6),
    "edit-actor": (["UPDATE audit_log SET actor = 'cli:mallory' WHERE seq = 7"], 7),
    "delete": (["DELETE FROM audit_log WHERE seq = 3"], 4),
    "reorder": ([
        "UPDATE audit_log SET seq = 100 WHERE seq = 2",
        "UPDATE audit_log SET seq = 2 WHERE seq = 3",
        "UPDATE audit_log SET seq = 3 WHERE seq = 100",
    ], 2),
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_tampering_is_detected_and_named(make_service: Callable[..., Watchkeeper], sqlite_url: str, how: str) -> None:
    """Someone with the database file drops the guard triggers and rewrites history."""
    wk = make_service(sqlite_url)
    populate(wk)
    statements, broken = TAMPERING[how]
    with wk.db.write() as conn:
        conn.execute(sa.text("DROP TRIGGER audit_log_no_update"))
        conn.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
        for statement in statements:
            assert conn.execute(sa.text(statement)).rowcount == 1
    verdict = wk.verify_audit()
    assert not verdict.ok
    assert verdict.broken_seq == broken, verdict


def test_postgres_superuser_tampering_is_detected(make_service: Callable[..., Watchkeeper], pg_url: str) -> None:
    wk = make_service(pg_url)
    populate(wk)
    with wk.db.write() as conn:
        conn.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        conn.execute(sa.text("UPDATE audit_log SET actor = 'cli:mallory' WHERE seq = 6"))
    assert wk.verify_audit().broken_seq == 6
