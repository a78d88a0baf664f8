"""The whole loop in ``watchkeeper serve`` on a user's own telemetry: a real Prometheus scrapes a small
test exporter; serve has one watch and a topology (api depends on db); the test degrades db's
latency; the watch turns it into anomaly events, an incident opens with db as its top cause, and an
``auto`` runbook repairs db, verifies it and resolves the incident. Nothing is mocked."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.servers import Server, Servers, free_port, http, start_prometheus, wait_until, watchkeeper_command
from e2e.shop_exporter import EXPORTER

HEALTHY = {"db": 0.01}


def _runbook(state: Path, exporter_port: int) -> dict[str, Any]:
    repair = f"import json,sys; p={str(state)!r}; json.dump({{sys.argv[1]: {HEALTHY['db']}}}, open(p, 'w'))"
    return {
        "id": "repair-shop", "title": "Bring the ranked service's latency back", "risk": "low", "autonomy": "auto",
        "confidence_threshold": 0.5,
        "selector": {"causes": {"kinds": ["service"]}},
        "parameters": {"service": {"from": "cause.component", "pattern": "[a-z]{1,10}"}},
        "steps": [{"name": "repair", "command": {"argv": [sys.executable, "-c", repair, "{{ params.service }}"],
                                                 "timeout": "10s"}}],
        "verify": {"check": {"name": "healthy", "http": {
            "url": f"http://127.0.0.1:{exporter_port}/healthy?service={{{{ params.service }}}}", "timeout": "1s"}},
            "deadline": "10s", "interval": "500ms"},
        "on_success": "resolve",
    }


@pytest.mark.e2e
def test_serve_ranks_the_degraded_service_and_repairs_it(tmp_path: Path) -> None:
    state = tmp_path / "exporter" / "state.json"
    state.parent.mkdir()
    state.write_text(json.dumps(HEALTHY))
    (tmp_path / "exporter" / "exporter.py").write_text(EXPORTER)
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    with Servers() as servers:
        exporter_port = free_port()
        servers.start(Server("exporter", [sys.executable, str(tmp_path / "exporter" / "exporter.py"),
                                          str(exporter_port)], tmp_path / "exporter", exporter_port,
                             ready_path="/metrics"))
        prom = start_prometheus(servers, tmp_path / "prometheus", scrape_jobs={"shop": [f"127.0.0.1:{exporter_port}"]},
                                interval="1s")
        (runbooks / "repair.yaml").write_text(yaml.safe_dump(_runbook(state, exporter_port)))
        port = free_port()
        config = tmp_path / "watchkeeper.yaml"
        config.write_text(yaml.safe_dump({
            "database_url": f"sqlite:///{tmp_path / 'watchkeeper.db'}",
            "port": port,
            "runbooks_dir": str(runbooks),
            "responder_interval_seconds": 0.2,
            "watch": {
                "prometheus": [{"url": prom.url}],
                "watches": [{"name": "latency", "query": "max by (service) (shop_latency_seconds)",
                             "service_label": "service", "direction": "up", "floor": 0.05, "detector": "robust",
                             "options": {"window": 32, "season": "none", "warmup": 8}, "interval": "1s"}],
            },
            "topology": {"services": {"api": {"depends_on": ["db"]}, "db": {}}},
            "rca": {"window": "30s", "reference": "2m", "delay": "2s", "rerank": "1s"},
        }))
        command = watchkeeper_command()
        wk = Server("watchkeeper", [str(command), "--config", str(config), "serve"], tmp_path / "wk", port,
                    ready_path="/healthz")
        done = subprocess.run([str(command), "--config", str(config), "token", "create", "--role", "admin"],
                              capture_output=True, timeout=60, check=True, env=wk.env)
        headers = {"Authorization": f"Bearer {done.stdout.decode().strip().splitlines()[-1]}"}
        servers.start(wk)
        with http() as client:
            def learned() -> bool:
                health = client.get(f"{wk.url}/healthz").json()
                watch = (health.get("details") or {}).get("watch") or {}
                return "latency" in json.dumps(watch) and client.get(
                    f"{prom.url}/api/v1/query", params={"query": "count(shop_latency_seconds)"}).json()["data"]["result"]

            wait_until(learned, what="serve watching the exporter through Prometheus", servers=servers)
            time.sleep(15)  # the detectors learn what normal looks like
            assert client.get(f"{wk.url}/api/v1/incidents", headers=headers).json() == []
            state.write_text(json.dumps({"db": 2.0}))  # db degrades; api, which calls it, suffers

            def ranked() -> dict[str, Any] | None:
                for incident in client.get(f"{wk.url}/api/v1/incidents", headers=headers).json():
                    detail = client.get(f"{wk.url}/api/v1/incidents/{incident['id']}", headers=headers).json()
                    if detail.get("causes") and detail["causes"][0]["component"] == "db":
                        return dict(detail)
                return None

            incident = wait_until(ranked, what="an incident ranked with db as its top cause", timeout=90,
                                  servers=servers)
            top = incident["causes"][0]
            assert top["model"] and top["evidence"]

            def repaired() -> dict[str, Any] | None:
                # db's and api's alerts may open an incident each, both ranked db: one of them runs the
                # repair (the other waits, the service busy), whichever the responder decided first
                for listed in client.get(f"{wk.url}/api/v1/incidents", headers=headers).json():
                    detail = client.get(f"{wk.url}/api/v1/incidents/{listed['id']}", headers=headers).json()
                    done = [a for a in detail.get("actions", []) if a["status"] == "succeeded" and a["service"] == "db"]
                    if done and detail["status"] == "resolved":
                        return dict(detail)
                return None

            final = wait_until(repaired, what="the runbook repairing db and resolving the incident", timeout=90,
                               servers=servers)
            assert json.loads(state.read_text())["db"] == HEALTHY["db"]
            assert any(d["verdict"] == "auto" for d in final["decisions"])
            verdict = client.get(f"{wk.url}/api/v1/audit/verify", headers=headers).json()
            assert verdict["ok"], verdict
