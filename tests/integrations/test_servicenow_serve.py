"""ServiceNow through a real ``watchkeeper serve`` (a subprocess) and the Table API stand-in: the
outbox creates and resolves the ticket, the poller thread brings a person's changes back, and
our own updates never come back (bounded in time)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from e2e.servers import Server, clean_env, free_port, wait_until, watchkeeper_command
from integrations.itsm_standins import ServiceNow
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.settings import load_settings


@pytest.mark.e2e
def test_serve_syncs_servicenow_both_ways(tmp_path: Path) -> None:
    sn = ServiceNow(users={"wk.integration": "pw-e2e-0123456789", "beth.anglin": "beth-e2e-0123"}).start()
    config = tmp_path / "watchkeeper.yaml"
    config.write_text(yaml.safe_dump({
        "database_url": f"sqlite:///{tmp_path / 'wk.db'}",
        "integrations": {"targets": {"snow": {
            "type": "servicenow", "instance_url": sn.url, "username": "wk.integration",
            "password": "pw-e2e-0123456789", "poll_interval": "1s", "timeout_seconds": 5}},
            "outbox": {"poll_seconds": 0.1}},
        "routes": [{"to": ["snow"]}],
    }))
    wk = Watchkeeper(load_settings({}, config), metrics=False)
    wk.upgrade()
    token = wk.create_token(Role.ADMIN, "e2e", "test")
    wk.close()
    port = free_port()
    server = Server("serve", [str(watchkeeper_command()), "--config", str(config), "serve", "--port", str(port)],
                    tmp_path, port, ready_path="/healthz", env=clean_env())
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"})
    server.start()
    try:
        got = api.post("/api/v1/ingest/events", json={"service": "billing", "name": "QueueBacklog",
                                                      "summary": "backlog above 10k", "severity": "critical"})
        incident = got.json()["opened"][0]
        wait_until(lambda: len(sn.incidents) == 1, what="the ticket", timeout=20, logs=server.log_tail)
        [sys_id] = sn.incidents
        assert sn.incidents[sys_id]["correlation_id"] == f"watchkeeper:{incident}"
        sn.human(sys_id, "beth.anglin", state="2", assigned_to="Beth Anglin")
        wait_until(lambda: api.get(f"/api/v1/incidents/{incident}").json()["assignee"] == "Beth Anglin",
                   what="the poller's changes", timeout=20, logs=server.log_tail)
        assert api.get(f"/api/v1/incidents/{incident}").json()["status"] == "acknowledged"
        api.post(f"/api/v1/incidents/{incident}/resolve", json={"comment": "consumer scaled"})
        wait_until(lambda: sn.incidents[sys_id]["state"] == "6", what="the resolution", timeout=20,
                   logs=server.log_tail)
        seen = len(api.get(f"/api/v1/incidents/{incident}").json()["timeline"])
        polls = len(sn.calls("GET", "/api/now/table/incident$"))
        wait_until(lambda: len(sn.calls("GET", "/api/now/table/incident$")) >= polls + 3, what="three more polls",
                   timeout=20, logs=server.log_tail)
        view = api.get(f"/api/v1/incidents/{incident}").json()
        assert view["status"] == "resolved" and len(view["timeline"]) == seen  # our update did not come back
        assert sn.incidents[sys_id]["sys_updated_by"] == "wk.integration"
    finally:
        api.close()
        server.stop()
        sn.stop()
