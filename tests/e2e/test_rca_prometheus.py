"""The ranker on a real Prometheus: a small exporter serves a latency per service (api calls db);
db degrades; an incident on api (opened by an Alertmanager-style alert, standing in for a watch) is
ranked with db first from ``query_range`` answers, with the watch's direction and floor."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from e2e.servers import Server, Servers, free_port, http, start_prometheus, wait_until
from e2e.shop_exporter import EXPORTER
from fixtures.alertmanager import am_alert, am_webhook
from watchkeeper.ranking import PrometheusSource, Ranker
from watchkeeper.service import Watchkeeper
from watchkeeper.settings import Settings


@pytest.mark.e2e
def test_the_ranker_reads_prometheus_and_ranks_the_degraded_dependency_first(tmp_path: Path) -> None:
    state = tmp_path / "exporter" / "state.json"
    state.parent.mkdir()
    state.write_text(json.dumps({"db": 0.01}))
    (tmp_path / "exporter" / "exporter.py").write_text(EXPORTER)
    with Servers() as servers:
        port = free_port()
        servers.start(Server("exporter", [sys.executable, str(tmp_path / "exporter" / "exporter.py"), str(port)],
                             tmp_path / "exporter", port, ready_path="/metrics"))
        prom = start_prometheus(servers, tmp_path / "prometheus", scrape_jobs={"shop": [f"127.0.0.1:{port}"]},
                                interval="1s")
        with http() as client:
            wait_until(lambda: len(client.get(f"{prom.url}/api/v1/query", params={
                "query": "shop_latency_seconds"}).json()["data"]["result"]) == 3, what="three series scraped",
                servers=servers)
        time.sleep(12)  # some history of normal
        onset = datetime.now(UTC).replace(microsecond=0)
        state.write_text(json.dumps({"db": 2.0}))
        time.sleep(8)
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'wk.db'}",
            watch={"prometheus": [{"url": prom.url}],  # type: ignore[arg-type]
                   "watches": [{"name": "latency", "query": "max by (service) (shop_latency_seconds)",
                                "direction": "up", "floor": 0.05, "interval": "1s"}]},
            topology={"services": {"api": {"depends_on": ["db", "cache"]}}},  # type: ignore[arg-type]
            rca={"window": "30s", "reference": "2m", "delay": "1s"},  # type: ignore[arg-type]
        )
        wk = Watchkeeper(settings)
        wk.upgrade()
        try:
            alert = am_alert("SlowApi", "api", starts=onset.isoformat().replace("+00:00", "Z"))
            incident = wk.ingest("alertmanager", orjson.dumps(am_webhook(alert)), "application/json",
                                 "test").incidents[0]
            ranker = Ranker(wk, PrometheusSource(settings.watch))
            time.sleep(1.2)  # rca.delay
            assert ranker.tick() == 1, ranker.status()
            ranker.stop()
            causes = wk.incident(incident)["causes"]
        finally:
            wk.close()
    assert [c["component"] for c in causes] == ["db", "api", "cache"], causes
    assert causes[0]["evidence"]["top_metrics"][0]["metric"] == "latency"
    assert causes[0]["confidence"] > causes[1]["confidence"]
    # the plot the console draws: Prometheus's own points around the onset, the degradation in it
    points = causes[0]["evidence"]["series"]["latency"]
    assert causes[0]["evidence"]["series_onset"] == onset.timestamp() and 2 <= len(points) <= 60
    assert any(t < onset.timestamp() and v < 0.1 for t, v in points) and max(v for _, v in points) > 1.5
