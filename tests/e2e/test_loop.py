"""The whole loop in ``watchkeeper serve`` on a user's own telemetry: a real Prometheus scrapes a small
test exporter; serve has one watch and a topology (api depends on db); the test degrades db's
latency; the watch turns it into anomaly events, an incident opens with db as its top cause, and an
``auto`` runbook repairs db, verifies it and resolves the incident. Nothing is mocked."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.servers import Server, Servers, free_port, http, start_prometheus, wait_until, watchkeeper_command

EXPORTER = textwrap.dedent("""\
    # Serves shop_latency_seconds for db (from state.json, read per scrape) and for api, which calls db
    # and so waits for it (0.02 s + a share of db's latency); small jitter. GET /healthy?service=db
    # answers 200 while that service's latency is normal.
    import json, random, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from pathlib import Path
    from urllib.parse import parse_qs, urlsplit

    STATE = Path(__file__).with_name("state.json")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            db = json.loads(STATE.read_text())["db"]
            state = {"db": db, "api": 0.02 + 0.15 * db}
            url = urlsplit(self.path)
            if url.path == "/healthy":
                service = parse_qs(url.query).get("service", [""])[0]
                ok = state.get(service, 1.0) < 0.1
                self.send_response(200 if ok else 503)
                self.end_headers()
                return
            lines = ["# TYPE shop_latency_seconds gauge"]
            for service, value in sorted(state.items()):
                lines.append(f'shop_latency_seconds{{service="{service}"}} {value * random.uniform(0.97, 1.03)}')
            body = ("\\n".join(lines) + "\\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
""")
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
                detail = client.get(f"{wk.url}/api/v1/incidents/{incident['id']}", headers=headers).json()
                done = [a for a in detail.get("actions", []) if a["status"] == "succeeded"]
                return dict(detail) if done and detail["status"] == "resolved" else None

            final = wait_until(repaired, what="the runbook repairing db and resolving the incident", timeout=90,
                               servers=servers)
            assert json.loads(state.read_text())["db"] == HEALTHY["db"]
            assert any(d["verdict"] == "auto" for d in final["decisions"])
            verdict = client.get(f"{wk.url}/api/v1/audit/verify", headers=headers).json()
            assert verdict["ok"], verdict
