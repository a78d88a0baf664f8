"""A real outage, end to end: node exporter stops -> Prometheus alert -> Alertmanager webhook ->
a Watchkeeper incident opens; the exporter comes back -> the alert resolves -> the incident resolves.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.servers import (
    HOST,
    Server,
    Servers,
    WatchkeeperServer,
    free_port,
    http,
    start_alertmanager,
    start_node_exporter,
    start_prometheus,
    start_watchkeeper,
    wait_until,
)

pytestmark = pytest.mark.e2e

ALERT = "WatchkeeperE2ETargetDown"
SERVICE = "target-svc"
DEADLINE = 60.0


@pytest.fixture
def servers() -> Iterator[Servers]:
    with Servers() as started:
        yield started


def _get_json(url: str, headers: dict[str, str] | None = None, params: dict[str, str] | None = None) -> Any:
    with http() as client:
        response = client.get(url, headers=headers, params=params)
    response.raise_for_status()
    return response.json()


def _target_up(prometheus: Server) -> bool:
    answer = _get_json(f"{prometheus.url}/api/v1/query", params={"query": 'up{job="target"}'})
    result = answer["data"]["result"]
    return bool(result) and result[0]["value"][1] == "1"


def _alertmanager_known(prometheus: Server) -> bool:
    return bool(_get_json(f"{prometheus.url}/api/v1/alertmanagers")["data"]["activeAlertmanagers"])


def _our_incidents(wk: WatchkeeperServer) -> list[dict[str, Any]]:
    incidents: list[dict[str, Any]] = _get_json(f"{wk.url}/api/v1/incidents", wk.headers("viewer"))
    return [
        i for i in incidents
        if any(a["labels"].get("alertname") == ALERT and a["labels"].get("service") == SERVICE
               for a in i["alerts"])
    ]


def test_target_down_opens_an_incident_that_resolves_when_it_is_back(
    servers: Servers, tmp_path: Path
) -> None:
    # Prometheus first: its scrape manager takes ~5 s to pick up targets, which overlaps with
    # watchkeeper's start (token CLI runs + serve, ~6 s). Alertmanager comes last, on a port
    # chosen now; Prometheus retries it until it is up, and no alert fires before the outage.
    alertmanager_port = free_port()
    target = start_node_exporter(servers, tmp_path / "target")
    prometheus = start_prometheus(
        servers, tmp_path / "prometheus",
        scrape_jobs={"target": [target.address]}, alertmanager=f"{HOST}:{alertmanager_port}",
        alert_rules=[{
            "alert": ALERT, "expr": 'up{job="target"} == 0', "for": "0s",
            "labels": {"service": SERVICE, "severity": "critical"},
            "annotations": {"summary": "the e2e scrape target is down"},
        }],
    )
    wk = start_watchkeeper(servers, tmp_path / "watchkeeper", roles=("ingest", "viewer"))
    start_alertmanager(
        servers, tmp_path / "alertmanager", port=alertmanager_port,
        webhook_url=f"{wk.url}/api/v1/ingest/alertmanager", bearer_token=wk.tokens["ingest"],
    )
    wait_until(lambda: _target_up(prometheus), what="Prometheus to scrape the target as up",
               timeout=DEADLINE, servers=servers)
    wait_until(lambda: _alertmanager_known(prometheus), what="Prometheus to discover Alertmanager",
               timeout=DEADLINE, servers=servers)
    assert _our_incidents(wk) == [], "an incident existed before the outage"

    target.stop()
    opened = wait_until(
        lambda: [i for i in _our_incidents(wk) if i["status"] == "open"],
        what=f"an open incident with alert {ALERT} on {SERVICE}", timeout=DEADLINE, servers=servers,
    )
    assert len(opened) == 1, opened
    incident = opened[0]
    assert SERVICE in incident["services"], incident
    alert = next(a for a in incident["alerts"] if a["labels"]["alertname"] == ALERT)
    assert alert["status"] == "firing", alert
    assert alert["labels"]["severity"] == "critical", alert

    target.start()  # same port, so Prometheus scrapes it again
    resolved = wait_until(
        lambda: [i for i in _our_incidents(wk) if i["id"] == incident["id"] and i["status"] == "resolved"],
        what=f"incident {incident['id']} to resolve", timeout=DEADLINE, servers=servers,
    )
    assert all(a["status"] == "resolved" for a in resolved[0]["alerts"]), resolved
