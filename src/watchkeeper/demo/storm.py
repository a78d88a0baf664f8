"""``watchkeeper demo``: a live server on loopback, a realistic Alertmanager storm sent to it over
HTTP, a simulated on-call engineer, and the outcome: incidents, why each alert joined, KPIs and the
audit chain. (The lab with real services and fault injection will replace the recorded storm.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from watchkeeper.server import create_app
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.settings import Settings
from watchkeeper.sources.base import fingerprint_of
from watchkeeper.views import IncidentSummary


@dataclass(frozen=True, slots=True)
class Fault:
    """One thing going wrong: the alerts Prometheus would raise for it, per service."""

    name: str
    start_s: int
    end_s: int
    alerts: tuple[tuple[str, str, str, str, str], ...]  # alertname, service, instance, severity, summary


#: Two unrelated outages overlapping in time, plus a lone warning: what a bad morning looks like.
FAULTS = (
    Fault("payments database down", 0, 420, (
        ("PostgresDown", "payments-db", "db-1:5432", "critical", "payments-db primary is down"),
        ("PostgresReplicationLag", "payments-db", "db-2:5432", "warning", "replica lag above 30 s"),
        ("HighErrorRate", "checkout", "checkout-1:8080", "critical", "5xx ratio above 5% on checkout"),
        ("HighErrorRate", "checkout", "checkout-2:8080", "critical", "5xx ratio above 5% on checkout"),
        ("HighErrorRate", "checkout", "checkout-3:8080", "critical", "5xx ratio above 5% on checkout"),
        ("HighLatency", "frontend", "frontend-1:8080", "warning", "p99 latency above 1 s"),
        ("HighLatency", "frontend", "frontend-2:8080", "warning", "p99 latency above 1 s"),
    )),
    Fault("search cache evictions", 60, 300, (
        ("CacheEvictionsHigh", "search", "redis-1:6379", "warning", "evictions above 1000/s"),
        ("CacheHitRateLow", "search", "redis-1:6379", "warning", "hit rate below 80%"),
        ("SlowQueries", "search", "search-1:9200", "warning", "p95 query time above 500 ms"),
    )),
    Fault("disk filling on a batch node", 120, 600, (
        ("NodeDiskFillingUp", "batch", "batch-7:9100", "warning", "/var will be full within 4 h"),
    )),
)
GROUP_INTERVAL_S = 30  # Alertmanager re-sends a firing group this often
#: The demo's service graph and correlation: a service's alerts group, and so do alerts on services
#: that depend on each other (search and batch are unrelated to the payments path).
CORRELATION = """\
window: 5m
strategies:
  - type: labels
    group_by: [service]
  - type: topology
    hops: 2
    graph:
      frontend: [checkout, catalog]
      checkout: [payments-db]
      search: [search-index]
"""


def storm(start: datetime) -> Iterator[tuple[int, dict[str, Any]]]:
    """(second, Alertmanager webhook body) in time order, as Alertmanager would send them."""
    sends: list[tuple[int, dict[str, Any]]] = []
    for fault in FAULTS:
        groups: dict[tuple[str, str], list[tuple[str, str, str, str, str]]] = {}
        for alert in fault.alerts:
            groups.setdefault((alert[0], alert[1]), []).append(alert)
        for group in groups.values():
            for t in range(fault.start_s, fault.end_s, GROUP_INTERVAL_S):
                sends.append((t, _webhook(group, start, fault.start_s, None)))
            sends.append((fault.end_s, _webhook(group, start, fault.start_s, fault.end_s)))
    sends.sort(key=lambda pair: pair[0])
    yield from sends


def _webhook(
    group: list[tuple[str, str, str, str, str]], start: datetime, began: int, ended: int | None
) -> dict[str, Any]:
    status = "resolved" if ended is not None else "firing"
    alerts = []
    for name, service, instance, severity, summary in group:
        labels = {"alertname": name, "service": service, "instance": instance, "severity": severity,
                  "job": service}
        alerts.append({
            "status": status, "labels": labels, "annotations": {"summary": summary},
            "startsAt": _iso(start + timedelta(seconds=began)),
            "endsAt": _iso(start + timedelta(seconds=ended)) if ended is not None else "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:9090/graph", "fingerprint": fingerprint_of(labels),
        })
    common = {"alertname": group[0][0], "service": group[0][1]}
    return {
        "receiver": "watchkeeper", "status": status, "alerts": alerts, "groupLabels": common,
        "commonLabels": common, "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093",
        "version": "4", "groupKey": f'{{}}:{{alertname="{common["alertname"]}"}}', "truncatedAlerts": 0,
    }


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class LiveServer:
    """``create_app`` served by uvicorn in a thread, on a free loopback port."""

    def __init__(self, service: Watchkeeper) -> None:
        config = uvicorn.Config(
            create_app(service, upgrade=False), host="127.0.0.1", port=0, log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the demo server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass(frozen=True, slots=True)
class DemoResult:
    url: str
    database: Path
    webhooks: int
    alert_events: int
    incidents: list[IncidentSummary]
    kpis: dict[str, Any]
    audit: str
    audit_ok: bool


class SimClock:
    """The demo's server clock: the storm's simulated time, so MTTA and MTTR read in minutes even
    when the replay itself takes a second."""

    def __init__(self, start: datetime) -> None:
        self.start, self.now = start, start

    def __call__(self) -> datetime:
        return self.now

    def at(self, second: float) -> None:
        self.now = self.start + timedelta(seconds=second)


#: How long the simulated on-call engineer takes to acknowledge a new incident.
ACK_AFTER_S = 150


def run(database: Path, *, speed: float = 0.0, progress: Any = None) -> DemoResult:
    """Replay the storm through a live server; an engineer acknowledges each incident
    ``ACK_AFTER_S`` simulated seconds after it opens. Incidents resolve when their alerts do.

    ``speed`` > 0 sleeps ``1/speed`` seconds per simulated second (0: as fast as possible).
    """
    database.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    start = datetime.now(UTC).replace(microsecond=0)
    clock = SimClock(start)
    correlation = database.with_suffix(".correlation.yaml")
    correlation.write_text(CORRELATION)
    service = Watchkeeper(Settings(database_url=f"sqlite:///{database}", correlation_config=correlation), clock=clock)
    service.upgrade()
    ingest = service.create_token(Role.INGEST, "demo-alertmanager", "demo")
    oncall = service.create_token(Role.OPERATOR, "demo-oncall", "demo")
    sends = list(storm(start))
    alert_events = 0
    to_ack: dict[int, int] = {}  # incident id -> simulated second it opened
    try:
        with LiveServer(service) as live, httpx.Client(base_url=live.url, timeout=10) as http:
            task = progress.add_task("replaying Alertmanager storm", total=len(sends)) if progress else None
            last_t = 0
            for t, body in sends:
                if speed > 0 and t > last_t:
                    time.sleep((t - last_t) / speed)
                last_t = t
                for incident_id, opened in sorted(to_ack.items()):
                    if t - opened >= ACK_AFTER_S:
                        clock.at(opened + ACK_AFTER_S)
                        http.post(f"/api/v1/incidents/{incident_id}/acknowledge",
                                  headers={"Authorization": f"Bearer {oncall}"},
                                  json={"comment": "on it"}).raise_for_status()
                        del to_ack[incident_id]
                clock.at(t)
                r = http.post("/api/v1/ingest/alertmanager", json=body,
                              headers={"Authorization": f"Bearer {ingest}"})
                r.raise_for_status()
                alert_events += len(body["alerts"])
                to_ack.update({incident_id: t for incident_id in r.json()["opened"]})
                if progress is not None and task is not None:
                    progress.advance(task)
            incidents = service.incidents(limit=1000)
            kpis = service.kpis().as_dict()
            verdict = service.verify_audit()
            url = live.url
    finally:
        service.close()
    return DemoResult(url, database, len(sends), alert_events, incidents, kpis, str(verdict), verdict.ok)
