"""The logs' HTTP side in process: OTLP in (JSON and protobuf), templates and counts out, bad
bodies refused with a 4xx and dead-lettered, and the listeners started and stopped with the app."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from fastapi.testclient import TestClient

from conftest import Api
from watchkeeper.server import create_app
from watchkeeper.service import Role, Watchkeeper

BODY = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]},
                          "scopeLogs": [{"logRecords": [
                              {"severityNumber": 9, "body": {"stringValue": f"item {n} added"}} for n in range(3)]}]}]}


def test_otlp_json_in_templates_and_counts_out(api: Api) -> None:
    ingest = api.client.post("/v1/logs", content=orjson.dumps(BODY),
                             headers={**api.headers(Role.INGEST), "Content-Type": "application/json"})
    assert ingest.status_code == 200 and ingest.json() == {}
    templates = api.client.get("/api/v1/logs/templates", params={"service": "cart"}, headers=api.headers(Role.VIEWER))
    assert [(t["template"], t["count"]) for t in templates.json()] == [("item <*> added", 3)]
    tid = templates.json()[0]["template_id"]
    counts = api.client.get("/api/v1/logs/counts", params={"service": "cart", "template_id": tid},
                            headers=api.headers(Role.VIEWER))
    assert [(c["count"], c["errors"]) for c in counts.json()] == [(3, 0)]


def test_bad_bodies_get_a_4xx_and_a_dead_letter(api: Api, service: Watchkeeper) -> None:
    headers = api.headers(Role.INGEST)
    for content_type, body, status in (("application/x-protobuf", b"\xff\xff\xff", 400),
                                       ("application/json", b"[1]", 400), ("text/plain", b"hello", 415)):
        got = api.client.post("/v1/logs", content=body, headers={**headers, "Content-Type": content_type})
        assert got.status_code == status, got.text
        assert got.json()["error"]
    assert [d.status for d in service.dead_letters()] == [415, 400, 400]
    again = api.client.post("/v1/logs", content=orjson.dumps(BODY), headers={**headers,
                                                                               "Content-Type": "application/json"})
    assert again.status_code == 200


def test_counts_refuse_an_end_before_the_start(api: Api) -> None:
    got = api.client.get("/api/v1/logs/counts", params={"start": "2026-12-03T12:00:00Z", "end": "2026-12-03T11:00:00Z"},
                         headers=api.headers(Role.VIEWER))
    assert got.status_code == 422 and "after" in got.json()["error"]


def test_the_app_starts_and_stops_the_listeners(make_service: Callable[..., Watchkeeper], tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    wk = make_service(f"sqlite:///{tmp_path / 'wk.db'}", logs={"syslog": {"udp": f"127.0.0.1:{port}"}})

    def threads() -> set[str]:
        return {t.name for t in threading.enumerate() if t.name.startswith("watchkeeper-")}

    with TestClient(create_app(wk, upgrade=False)) as client:
        assert {"watchkeeper-syslog-udp", "watchkeeper-logs-ticker", "watchkeeper-retention-logs"} <= threads()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"<11>1 - host billing - - - invoice 7 failed", ("127.0.0.1", port))
        logs = client.app.state.logs  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        while not logs.store.templates("billing") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [t["template"] for t in logs.store.templates("billing")] == ["invoice <*> failed"]
    assert not {"watchkeeper-syslog-udp", "watchkeeper-logs-ticker", "watchkeeper-retention-logs"} & threads()
