"""Every lifecycle time ever set is kept (a reopen does not erase the first acknowledgement), and
MTTA/MTTR are reported both from receipt and from the source's ``startsAt``, labelled."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import sqlalchemy as sa
from typer.testing import CliRunner

from conftest import Api, Clock
from fixtures.alertmanager import am_alert, am_webhook
from watchkeeper.cli import app
from watchkeeper.model import Change
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.storage import Database, audit
from watchkeeper.storage.tables import incidents


def post(api: Api, body: object) -> None:
    r = api.client.post("/api/v1/ingest/alertmanager", content=orjson.dumps(body),
                        headers={**api.headers(Role.INGEST), "Content-Type": "application/json"})
    assert r.status_code == 202, r.text


def act(api: Api, action: str) -> dict[str, object]:
    r = api.client.post(f"/api/v1/incidents/1/{action}", headers=api.headers(Role.OPERATOR))
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_reopen_keeps_the_first_acknowledgement_and_kpis_count_both_origins(api: Api, clock: Clock) -> None:
    # the clock starts at 06:00; the alert fired at the source ten minutes before it reached us
    post(api, am_webhook(am_alert("Down", "db", starts="2026-11-22T05:50:00Z")))
    clock.advance(minutes=2)
    act(api, "acknowledge")
    clock.advance(minutes=3)
    act(api, "resolve")
    clock.advance(minutes=5)
    reopened = act(api, "reopen")
    assert reopened["acknowledged_at"] is None and reopened["status"] == "open"
    assert reopened["first_acknowledged_at"] == "2026-11-22T06:02:00Z"
    assert reopened["first_mitigated_at"] == "2026-11-22T06:05:00Z"
    assert reopened["started_at"] == "2026-11-22T05:50:00Z" and reopened["opened_at"] == "2026-11-22T06:00:00Z"
    timeline = {t["kind"]: t for t in reopened["timeline"]}  # type: ignore[union-attr]
    assert timeline["incident.reopened"]["cleared"]["acknowledged_at"] == "2026-11-22T06:02:00Z"

    k = api.client.get("/api/v1/kpis", headers=api.headers(Role.VIEWER)).json()
    assert k["mtta"] == {"count": 1, "mean": 120.0, "median": 120.0, "p90": 120.0, "measured_from": "receipt"}
    assert k["mtta_from_source_start"]["mean"] == 720.0
    assert k["mtta_from_source_start"]["measured_from"] == "source_start"
    assert k["mttr"]["count"] == 0  # open again: not resolved
    clock.advance(minutes=10)
    act(api, "acknowledge")  # a second acknowledgement does not replace the first
    act(api, "resolve")
    k = api.client.get("/api/v1/kpis", headers=api.headers(Role.VIEWER)).json()
    assert k["mtta"]["mean"] == 120.0
    assert (k["mttr"]["mean"], k["mttr_from_source_start"]["mean"]) == (1200.0, 1800.0)


def test_a_source_clock_ahead_of_ours_starts_the_incident_on_receipt(api: Api) -> None:
    post(api, am_webhook(am_alert("Down", "db", starts="2026-11-22T06:30:00Z")))
    view = api.client.get("/api/v1/incidents/1", headers=api.headers(Role.VIEWER)).json()
    assert view["started_at"] == view["opened_at"] == "2026-11-22T06:00:00Z"


def test_the_kpi_command_labels_where_it_measures_from(api: Api, clock: Clock) -> None:
    post(api, am_webhook(am_alert("Down", "db", starts="2026-11-22T05:59:00Z")))
    clock.advance(minutes=1)
    act(api, "acknowledge")
    env = {"WATCHKEEPER_DATABASE_URL": api.service.settings.database_url, "COLUMNS": "200"}
    shown = CliRunner().invoke(app, ["kpi"], env=env, catch_exceptions=False).stdout
    assert "MTTA from receipt" in shown and "mean 1m00s" in shown.split("MTTA from receipt")[1].splitlines()[0]
    assert "mean 2m00s" in shown.split("MTTA from source start")[1].splitlines()[0]
    data = orjson.loads(CliRunner().invoke(app, ["kpi", "--json"], env=env, catch_exceptions=False).stdout)
    assert data["mtta_from_source_start"]["mean"] == 120.0
    shown = CliRunner().invoke(app, ["incidents", "show", "1"], env=env, catch_exceptions=False).stdout
    assert "started at the source 2026-11-22 05:59:00   first acknowledged 2026-11-22 06:01:00" in shown


def test_migration_0010_restores_first_acknowledgements_from_the_audit_log(
    make_service: Callable[..., Watchkeeper], db_url: str,
) -> None:
    """An incident acknowledged, then reopened before 0010 (acknowledged_at erased): the audit log
    gives its first acknowledgement back."""
    db = Database(db_url)
    db.upgrade("0006")
    t = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
    common = {"severity": "critical", "services": ["db"], "opened_at": t, "last_activity_at": t,
              "firing_count": 1, "alert_count": 1}
    with db.write() as conn:
        conn.execute(sa.insert(incidents).values(id=1, title="db down", status="open", **common))
        conn.execute(sa.insert(incidents).values(id=2, title="web down", status="acknowledged",
                                                 acknowledged_at=t.replace(minute=7), **common))
        audit.append(conn, "cli:alice", [
            Change("incident.acknowledged", "incident:1", t.replace(minute=3), {"id": 1}),
            Change("incident.mitigated", "incident:1", t.replace(minute=4), {"id": 1}),
            Change("incident.reopened", "incident:1", t.replace(minute=9), {"id": 1}),
            Change("incident.acknowledged", "incident:1", t.replace(minute=20), {"id": 1}),
            Change("incident.acknowledged", "incident:2", t.replace(minute=7), {"id": 2}),
        ])
    db.dispose()
    wk = make_service(db_url)
    found = {i["id"]: i for i in wk.incidents()}
    assert found[1]["first_acknowledged_at"] == t.replace(minute=3)
    assert found[1]["first_mitigated_at"] == t.replace(minute=4)
    assert found[1]["acknowledged_at"] is None and found[1]["started_at"] is None
    assert (found[2]["first_acknowledged_at"], found[2]["first_mitigated_at"]) == (t.replace(minute=7), None)
    assert wk.kpis().mtta.mean == (180 + 420) / 2
    assert wk.kpis().mtta_from_source_start is not None and wk.kpis().mtta_from_source_start.count == 0
