"""The Prometheus path end to end: a fake lab service, real Prometheus and Alertmanager started by
``watchkeeper.lab.prometheus.start`` from the generated files, a real ``watchkeeper serve``. The
service starts failing → HighErrorRatio → an open incident; it goes away → ServiceDown joins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.servers import (
    ALERTMANAGER,
    PROMETHEUS,
    Servers,
    WatchkeeperServer,
    http,
    need_binary,
    start_watchkeeper,
    wait_until,
)
from lab.test_signals import FakeService
from watchkeeper.lab.prometheus import JOB, Stack, start

pytestmark = pytest.mark.e2e

SERVICE = "checkout"
DEADLINE = 40.0


@pytest.fixture
def fake() -> Iterator[FakeService]:
    service = FakeService(SERVICE, rps=50.0, seed=5).start()
    yield service
    service.stop()


def _get(url: str, headers: dict[str, str] | None = None, params: dict[str, str] | None = None) -> Any:
    with http() as client:
        response = client.get(url, headers=headers, params=params)
    response.raise_for_status()
    return response.json()


def _alerts(wk: WatchkeeperServer, alertname: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(incident, alert) for every alert ``alertname`` on SERVICE that Watchkeeper holds."""
    incidents = _get(f"{wk.url}/api/v1/incidents", wk.headers("viewer"))
    return [(i, a) for i in incidents for a in i["alerts"]
            if a["labels"].get("alertname") == alertname and a["labels"].get("service") == SERVICE]


def test_a_failing_lab_service_becomes_an_incident(tmp_path: Path, fake: FakeService) -> None:
    need_binary(PROMETHEUS)
    need_binary(ALERTMANAGER)
    with Servers() as servers:
        wk = start_watchkeeper(servers, tmp_path / "watchkeeper", roles=("ingest", "viewer"))
        with start(tmp_path / "lab", targets={SERVICE: [f"127.0.0.1:{fake.port}"]}, interval="2s",
                   webhook_url=f"{wk.url}/api/v1/ingest/alertmanager", bearer_token=wk.tokens["ingest"]) as stack:
            _run(servers, stack, wk, fake)


def _run(servers: Servers, stack: Stack, wk: WatchkeeperServer, fake: FakeService) -> None:
    def logs() -> str:
        return servers.logs() + "\n" + stack.logs()

    prom = stack.prometheus.url
    assert stack.alertmanager is not None

    def scraped() -> bool:
        result = _get(f"{prom}/api/v1/query", params={"query": f'up{{job="{JOB}",service="{SERVICE}"}}'})
        return [r["value"][1] for r in result["data"]["result"]] == ["1"]

    wait_until(scraped, what=f"Prometheus scraping {SERVICE} as up", timeout=DEADLINE, logs=logs)
    wait_until(lambda: _get(f"{prom}/api/v1/alertmanagers")["data"]["activeAlertmanagers"],
               what="Prometheus to know Alertmanager", timeout=DEADLINE, logs=logs)
    assert _get(f"{wk.url}/api/v1/incidents", wk.headers("viewer")) == []

    fake.error_share = 0.5
    incident, alert = wait_until(lambda: next(iter(_alerts(wk, "HighErrorRatio")), None),
                                 what="a HighErrorRatio incident in Watchkeeper", timeout=DEADLINE, logs=logs)
    assert incident["status"] == "open" and SERVICE in incident["services"], incident
    assert alert["status"] == "firing" and alert["labels"]["severity"] == "error", alert
    assert "of requests fail" in alert["summary"], alert

    fake.stop()
    _, down = wait_until(lambda: next(iter(_alerts(wk, "ServiceDown")), None),
                         what="a ServiceDown alert in Watchkeeper", timeout=DEADLINE, logs=logs)
    assert down["labels"]["severity"] == "critical" and down["status"] == "firing", down
