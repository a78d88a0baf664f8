"""Model governance in ``serve``: every audited decision names the model versions it used (detector,
correlation, RCA); drift is checked on a schedule and a gate acts on the drift event; the forecast
lead time is measured from the forecast events the server stores."""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from fastapi.testclient import TestClient

from conftest import Clock
from watchkeeper.correlate.pipeline_config import PipelineConfig
from watchkeeper.model import Event, EventKind, Severity, Status
from watchkeeper.model_registry import Registry
from watchkeeper.portfolio import Portfolio
from watchkeeper.server import create_app
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.storage import audit
from watchkeeper.value.drift import ModelKind, ModelVersion
from watchkeeper.value.shipped import correlation_identity
from watchkeeper.value.usecase import UseCase
from watchkeeper.watch.config import PrometheusEndpoint, Watch, WatchConfig

RUNBOOK = {
    "id": "restart", "title": "Restart", "risk": "low", "autonomy": "approve",
    "selector": {"alertnames": ["Down", "latency"]},
    "parameters": {"instance": {"from": "alert.resource", "pattern": "[a-z0-9-]+:[0-9]+"}},
    "steps": [{"name": "go", "command": {"argv": [sys.executable, "-c", "print('{{ params.instance }}')"]}}],
}
OWNERS = {"business_sponsor": "d", "technical_lead": "a", "operations_leader": "b"}
WATCHES = WatchConfig(prometheus=[PrometheusEndpoint(url="http://127.0.0.1:9")],
                      watches=[Watch(name="latency", query="q", detector="robust")])


class Client:
    def __init__(self, wk: Watchkeeper, client: TestClient) -> None:
        self.wk, self.client = wk, client
        self.tokens = {role: wk.create_token(role, f"{role.value}-1", "test") for role in Role}
        self.second = wk.create_token(Role.APPROVER, "approver-2", "test")

    def call(self, method: str, path: str, role: Role, body: Any = None, status: int = 200,
             *, second: bool = False) -> Any:
        token = self.second if second else self.tokens[role]
        got = self.client.request(method, path, headers={"Authorization": f"Bearer {token}"}, json=body)
        assert got.status_code == status, (method, path, got.status_code, got.text)
        return got.json() if got.content else None

    def fire(self, body: dict[str, Any]) -> int:
        got = self.client.post("/api/v1/ingest/events", content=orjson.dumps(body), headers={
            "Authorization": f"Bearer {self.tokens[Role.INGEST]}", "Content-Type": "application/json"})
        assert got.status_code == 202, got.text
        return int(got.json()["incidents"][0])


def _app(wk: Watchkeeper) -> Any:
    return create_app(wk, upgrade=False, responder=False, watch=False, rank=False)


@pytest.fixture
def runbooks(tmp_path: Path) -> Path:
    directory = tmp_path / "runbooks"
    directory.mkdir()
    (directory / "restart.yaml").write_text(yaml.safe_dump(RUNBOOK))
    return directory


def _records(wk: Watchkeeper, kind: str) -> list[Any]:
    with wk.db.read() as conn:
        return [r for r in audit.records(conn) if r.kind == kind]


def test_every_audited_decision_names_the_detector_correlation_and_rca_versions(
        runbooks: Path, make_service: Any, db_url: str) -> None:
    wk: Watchkeeper = make_service(db_url, runbooks_dir=runbooks, watch=WATCHES)
    with TestClient(_app(wk)) as client:
        api = Client(wk, client)
        api.call("POST", "/api/v1/models", Role.OPERATOR, {"kind": "rca", "name": "external", "version": "v3"},
                 status=201)
        # an anomaly of the watch "latency" (robust detector) and a plain alert
        anomaly = api.fire({"service": "web", "name": "latency", "summary": "web slow", "resource": "web-1:8080",
                            "fingerprint": "web-latency", "labels": {"watch": "latency"},
                            "source": "watch"})
        plain = api.fire({"service": "db", "name": "Down", "summary": "db down", "resource": "db-1:5432",
                          "fingerprint": "db-down"})
        api.call("PUT", f"/api/v1/incidents/{anomaly}/causes", Role.OPERATOR,
                 {"causes": [{"component": "web", "confidence": 0.97, "model": "external"}]})
        wk.governance.respond()
    name, version = correlation_identity(PipelineConfig())
    made = {r.payload["incident_id"]: r.payload for r in _records(wk, "decision.made")}
    assert made[anomaly]["models"] == {f"correlation:{name}": version, "detector:robust": "robust-v1",
                                       "rca:external": "v3"}
    assert made[anomaly]["inputs"]["model_versions"] == made[anomaly]["models"]
    # no anomaly, no cause: only the correlation that grouped its alerts
    assert made[plain]["models"] == {f"correlation:{name}": version}
    assert wk.verify_audit().ok


def test_a_configured_correlation_is_named_by_its_own_digest(runbooks: Path, make_service: Any, db_url: str,
                                                             tmp_path: Path) -> None:
    config = tmp_path / "correlation.yaml"
    config.write_text(yaml.safe_dump({"window": "10m", "strategies": [{"type": "labels", "group_by": ["service"]}]}))
    wk: Watchkeeper = make_service(db_url, runbooks_dir=runbooks, correlation_config=config)
    assert wk.correlation_model.name == "configured"
    with TestClient(_app(wk)) as client:
        api = Client(wk, client)
        incident = api.fire({"service": "db", "name": "Down", "summary": "db down", "resource": "db-1:5432"})
        wk.governance.respond()
    [made] = _records(wk, "decision.made")
    assert made.payload["incident_id"] == incident
    assert made.payload["models"] == {"correlation:configured": wk.correlation_model.version}
    assert wk.correlation_model.version != correlation_identity(PipelineConfig())[1]


def _model(clock: Clock, kind: ModelKind = ModelKind.CORRELATION, name: str = "edge") -> dict[str, Any]:
    """A model trained on two quiet days (no alerts) ending two days ago."""
    return ModelVersion(kind=kind, name=name, version="v1", train_start=clock.now - timedelta(days=4),
                        train_end=clock.now - timedelta(days=2)).model_dump(mode="json")


def test_drift_on_a_schedule_raises_an_event_the_gate_acts_on(runbooks: Path, make_service: Any, db_url: str,
                                                              clock: Clock) -> None:
    wk: Watchkeeper = make_service(db_url, runbooks_dir=runbooks, gate_guard_seconds=0.05,
                                   drift_check_seconds=0.05, drift_check_days=2)
    with TestClient(_app(wk)) as client:
        api = Client(wk, client)
        api.call("POST", "/api/v1/models", Role.OPERATOR, _model(clock), status=201)
        case = {"id": "edge-noise", "title": "Noise at the edge", "models": ["correlation:edge"], "owners": OWNERS,
                "success_criteria": [{"kpi": "drift_events", "op": "<=", "target": 0, "text": "no drift"}],
                "readiness": [{"name": "support model", "met": True}]}
        api.call("POST", "/api/v1/usecases", Role.OPERATOR, {"use_case": case})
        for stage in ("pilot", "assisted"):
            proposal = api.call("POST", "/api/v1/usecases/edge-noise/propose", Role.OPERATOR, status=201)
            assert proposal["to_stage"] == stage
            api.call("POST", f"/api/v1/gates/{proposal['id']}/approve", Role.APPROVER)
        assert api.call("GET", "/api/v1/drift", Role.VIEWER) == []  # quiet then, quiet now: stable
        for hour in range(24):  # then alerts arrive every hour for a day
            clock.advance(hours=1)
            api.fire({"service": "edge", "name": "Down", "summary": "edge down", "resource": f"edge-{hour}:80",
                      "fingerprint": f"edge-{hour}"})
        deadline = time.monotonic() + 15
        while api.call("GET", "/api/v1/usecases/edge-noise", Role.VIEWER)["stage"] != "pilot":
            assert time.monotonic() < deadline, "no scheduled drift check, or no gate acting on it"
            time.sleep(0.05)
        events = api.call("GET", "/api/v1/drift?model=correlation:edge", Role.VIEWER)
    assert events and events[-1]["signal"] == "alert_rate" and events[-1]["version"] == "v1"
    drifts = _records(wk, "model.drift")
    assert drifts and {r.actor for r in drifts} == {"drift"}
    [demoted] = _records(wk, "usecase.demoted")
    assert demoted.actor == "gate" and demoted.payload["failed"] == ["no drift"]
    assert wk.verify_audit().ok


def test_scheduled_check_picks_the_signal_and_waits_for_a_reference(make_service: Any, db_url: str,
                                                                     clock: Clock) -> None:
    """Models with a training window are compared with it; a model without one (shipped: trained
    elsewhere) with its first ``days`` here, once they are over and the last ``days`` lie after them."""
    wk: Watchkeeper = make_service(db_url)
    registry = Registry(wk.db, wk.clock)
    registry.register(ModelVersion.model_validate(_model(clock, ModelKind.DETECTOR, "robust")), "test")
    registry.register(ModelVersion.model_validate(_model(clock)), "test")
    registry.register(ModelVersion(kind=ModelKind.RCA, name="external", version="v3"), "test")  # no window
    found = registry.check_scheduled(days=2)
    assert [(r["model"], r["signal"], r["reason"]) for r in found] == [
        ("correlation:edge", "alert_rate", "stable"), ("detector:robust", "anomaly_rate", "stable")]
    assert registry.check_scheduled(days=1)[0]["reason"] == "too_few_samples"  # 24 hourly counts < 30
    clock.advance(hours=3 * 24)  # its first two days here are over, and one more: not yet (they overlap)
    assert "rca:external" not in {r["model"] for r in registry.check_scheduled(days=2)}
    for hour in range(24):  # then alerts every hour for a day: none in its first two days
        clock.advance(hours=1)
        body = {"service": "edge", "name": "Down", "summary": "down", "resource": f"e-{hour}", "fingerprint": f"e{hour}"}
        wk.ingest("events", orjson.dumps(body), "application/json", "test")
    [external] = [r for r in registry.check_scheduled(days=2) if r["model"] == "rca:external"]
    assert external["signal"] == "alert_rate" and external["drifted"] and external["drift_id"] is not None


def test_drift_schedule_off_switch(make_service: Any, db_url: str) -> None:
    def running() -> bool:
        return any(t.name == "watchkeeper-drift-check" for t in threading.enumerate())

    with TestClient(_app(make_service(db_url, drift_check_seconds=0))):
        assert not running()
    with TestClient(_app(make_service(db_url))):
        assert running()


def _forecast(at: datetime, fingerprint: str, status: Status, crossing: float | None) -> Event:
    raw: dict[str, Any] = {"threshold": 90.0}
    if crossing is not None:
        raw["crossing_in_seconds"] = crossing
    return Event(source="watch", kind=EventKind.FORECAST, fingerprint=fingerprint, status=status,
                 severity=Severity.WARNING, name="ForecastThresholdCrossing", service="db", resource="db-1",
                 labels={"service": "db"}, summary="disk", starts_at=at, ends_at=None, received_at=at, raw=raw)


def test_forecast_lead_time_from_the_stored_forecast_events(make_service: Any, db_url: str, clock: Clock) -> None:
    wk: Watchkeeper = make_service(db_url)
    t = clock.now
    events = [  # disk A warned 3 h ahead, then crossed; disk B crossed without warning; C warned, resolved
        _forecast(t, "a", Status.FIRING, 3 * 3600.0), _forecast(t + timedelta(hours=1), "a", Status.FIRING, 7200.0),
        _forecast(t + timedelta(hours=3), "a", Status.FIRING, 0.0),
        _forecast(t + timedelta(hours=4), "b", Status.FIRING, 0.0),
        _forecast(t, "c", Status.FIRING, 3600.0), _forecast(t + timedelta(hours=2), "c", Status.RESOLVED, None),
    ]
    wk.ingest_events("watch", events, "watch")
    clock.advance(hours=5)
    case = UseCase.model_validate({
        "id": "disk", "title": "Disk forecasting", "owners": OWNERS, "services": ["db"], "capabilities": ["forecasting"],
        "success_criteria": [{"kpi": "forecast_lead_time", "op": ">=", "target": 3600, "min_samples": 2}]})
    portfolio = Portfolio.of(wk)
    portfolio.apply(case, "test")
    [evaluated] = portfolio.evaluate("disk")
    [judged] = evaluated.decision.as_dict()["criteria"]
    assert (judged["value"], judged["samples"], judged["result"]) == (5400.0, 2, "met")  # median of 3 h and 0
    assert datetime(2026, 1, 1, tzinfo=UTC) < evaluated.window[0]
