"""``watchkeeper replay FILE --prometheus URL --topology FILE --changes FILE --config FILE``: each
replayed incident is ranked with the serve code, on a local server speaking Prometheus' HTTP API."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from typer.testing import CliRunner

from fixtures.alertmanager import am_alert, am_webhook
from watchkeeper.cli import app

ONSET = 1_795_327_200.0  # 2026-11-22T06:00:00Z
LEVELS = {"api": (0.02, 0.3), "db": (0.01, 2.0), "cache": (0.03, 0.03)}


class FakePrometheus(BaseHTTPRequestHandler):
    """``/api/v1/query_range``: one latency series per service, stepping up at ONSET for api and db."""

    asked: list[dict[str, str]] = []  # noqa: RUF012 - shared by the handler instances of one test

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        FakePrometheus.asked.append(q)
        start, end, step = float(q["start"]), float(q["end"]), float(q["step"])
        n = math.floor((end - start) / step) + 1
        result = []
        for service, (before, after) in LEVELS.items():
            values = []
            for i in range(n):
                t = start + i * step
                v = before * (1 + 0.01 * math.sin(t)) if t < ONSET else after
                values.append([t, str(v)])
            result.append({"metric": {"service": service}, "values": values})
        body = orjson.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[str]:
    FakePrometheus.asked = []
    server = HTTPServer(("127.0.0.1", 0), FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_bytes(orjson.dumps(am_webhook(am_alert("SlowApi", "api", starts="2026-11-22T06:00:00Z"))) + b"\n")
    config = tmp_path / "watchkeeper.yaml"
    config.write_text(json.dumps({
        "watch": {"prometheus": [{"url": "http://127.0.0.1:9"}],  # replaced by --prometheus
                  "watches": [{"name": "latency", "query": "max by (service) (latency)", "direction": "up",
                               "floor": 0.05, "interval": "15s"}]},
        "rca": {"window": "5m", "reference": "1h"},
    }))
    topology = tmp_path / "topology.json"
    topology.write_text(json.dumps({"services": ["api", "db", "cache"], "edges": [["api", "db"], ["api", "cache"]]}))
    changes = tmp_path / "changes.jsonl"
    changes.write_text(json.dumps({"service": "cache", "kind": "deploy", "at": "2026-11-22T05:50:00Z"}) + "\n")
    return {"alerts": alerts, "config": config, "topology": topology, "changes": changes, "dir": tmp_path}


def run(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"}, catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def test_replay_ranks_each_incident(prometheus: str, files: dict[str, Path]) -> None:
    out = files["dir"] / "incidents.jsonl"
    run("replay", str(files["alerts"]), "--prometheus", prometheus, "--topology", str(files["topology"]),
        "--changes", str(files["changes"]), "--config", str(files["config"]), "--out", str(out))
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 1
    causes = records[0]["causes"]
    assert [c["component"] for c in causes] == ["db", "api", "cache"]
    assert set(causes[0]) == {"component", "confidence"} and causes[0]["confidence"] > causes[1]["confidence"]
    asked = FakePrometheus.asked[0]
    assert asked["query"] == "max by (service) (latency)"
    assert (float(asked["start"]), float(asked["end"]), float(asked["step"])) == (ONSET - 3600, ONSET + 300, 15.0)


def test_replay_without_watches_is_a_sentence(prometheus: str, files: dict[str, Path]) -> None:
    done = run("replay", str(files["alerts"]), "--prometheus", prometheus, code=2)
    assert "needs watches" in done.stderr


def test_a_bad_changes_file_names_its_line(prometheus: str, files: dict[str, Path]) -> None:
    files["changes"].write_text('{"service": "db", "at": "2026-11-22T05:00:00Z"}\n{"service": "db", "kind": "x"}\n')
    done = run("replay", str(files["alerts"]), "--prometheus", prometheus, "--config", str(files["config"]),
               "--changes", str(files["changes"]), code=2)
    assert "changes.jsonl:2" in done.stderr and "kind" in done.stderr
