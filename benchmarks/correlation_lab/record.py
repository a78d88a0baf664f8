"""Record a labelled benchmark of real alert traffic for correlation.

Starts, all on 127.0.0.1: a mini service topology (``svc.py`` once per replica), a load generator,
real Prometheus (scrape and rule evaluation every second) and real Alertmanager, whose webhook
receiver is a recorder in this process. Then it runs a campaign of fault scenarios separated by
quiet gaps and writes, into ``--out``:

* ``webhooks.jsonl`` — every webhook body Alertmanager sent, with a top-level ``received_at``;
* ``truth.jsonl`` — ``{fingerprint, group}``: the fault each alert belongs to;
* ``scenarios.json`` — the timeline (faults, targets, affected services, start/end times);
* ``README.md`` — what was recorded, when, and how to re-record.

    .venv/bin/python benchmarks/correlation_lab/record.py --out benchmarks/data/correlation

Every alert rule carries an ``epoch`` label (the scenario number; the rules are rewritten and
Prometheus reloaded in each quiet gap), so the same symptom in two scenarios is two fingerprints
and the ground truth is unambiguous: an alert belongs to the fault of its epoch whose target is
its service or a (transitive) upstream dependent of it. Concurrent faults touch disjoint services.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from e2e.servers import (  # noqa: E402 - after the sys.path insert
    ALERTMANAGER,
    HOST,
    PROMETHEUS,
    Server,
    Servers,
    clean_env,
    free_port,
    http,
    wait_until,
)

SVC = Path(__file__).resolve().parent / "svc.py"

#: service -> the services it calls (the lab topology; also the correlation graph in configs/)
TOPOLOGY: dict[str, list[str]] = {
    "frontend": ["checkout", "catalog"],
    "checkout": ["payments-db"],
    "payments-db": [],
    "catalog": ["cache"],
    "cache": [],
    "search": ["index"],
    "index": [],
    "batch": [],
}
ENTRY = ["frontend", "search", "batch"]
LOAD_PERIOD = 0.1

GROUP_WAIT, GROUP_INTERVAL, REPEAT_INTERVAL = "2s", "5s", "30s"
RULES: list[dict[str, Any]] = [
    {
        "alert": "ServiceDown",
        "expr": "up == 0",
        "for": "2s",
        "labels": {"severity": "critical"},
        "annotations": {"summary": "{{ $labels.job }} instance {{ $labels.instance }} is down"},
    },
    {
        "alert": "HighErrorRate",
        "expr": 'sum by (job, instance) (rate(lab_requests_total{code=~"5.."}[10s])) '
                "/ sum by (job, instance) (rate(lab_requests_total[10s])) > 0.2",
        "for": "3s",
        "labels": {"severity": "warning"},
        "annotations": {"summary": "{{ $labels.job }} on {{ $labels.instance }}: "
                                   "{{ $value | humanizePercentage }} of requests fail"},
    },
    {
        "alert": "HighLatency",
        "expr": "histogram_quantile(0.9, sum by (job, instance, le) "
                "(rate(lab_request_duration_seconds_bucket[10s]))) > 0.3",
        "for": "3s",
        "labels": {"severity": "warning"},
        "annotations": {"summary": "{{ $labels.job }} on {{ $labels.instance }}: "
                                   "p90 latency {{ $value | humanizeDuration }}"},
    },
    {
        "alert": "DependencyErrors",
        "expr": 'sum by (job, instance, dependency) (rate(lab_dependency_calls_total{result="error"}[10s])) '
                "/ sum by (job, instance, dependency) (rate(lab_dependency_calls_total[10s])) > 0.2",
        "for": "3s",
        "labels": {"severity": "warning"},
        "annotations": {"summary": "{{ $labels.job }} on {{ $labels.instance }}: "
                                   "{{ $value | humanizePercentage }} of calls to {{ $labels.dependency }} fail"},
    },
]


@dataclass(frozen=True)
class Fault:
    id: str
    target: str
    kind: str  # crash | error | latency | flap
    value: float = 0.0  # error ratio, added latency (s), or flap half-period (s)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    faults: tuple[Fault, ...]
    duration: float


SCENARIOS = [
    Scenario("payments-db-crash", "crash payments-db (cascade: checkout and frontend fail)",
             (Fault("f1-payments-db-crash", "payments-db", "crash"),), 40),
    Scenario("cache-latency", "0.6 s added latency on cache (catalog and frontend slow)",
             (Fault("f2-cache-latency", "cache", "latency", 0.6),), 40),
    Scenario("index-errors", "error burst (80 % 500s) on index (search fails)",
             (Fault("f3-index-errors", "index", "error", 0.8),), 40),
    Scenario("batch-crash", "crash batch (no dependents)",
             (Fault("f4-batch-crash", "batch", "crash"),), 30),
    Scenario("concurrent", "two unrelated faults at once: crash payments-db + 0.6 s latency on index",
             (Fault("f5-payments-db-crash", "payments-db", "crash"),
              Fault("f6-index-latency", "index", "latency", 0.6)), 45),
    Scenario("batch-flapping", "batch crashes and comes back every 8 s for 64 s",
             (Fault("f7-batch-flapping", "batch", "flap", 8.0),), 64),
    Scenario("storm", "three unrelated faults at once: errors on cache, errors on index, crash batch",
             (Fault("f8-cache-errors", "cache", "error", 0.8),
              Fault("f9-index-errors", "index", "error", 0.8),
              Fault("f10-batch-crash", "batch", "crash")), 45),
]


def dependents(target: str) -> list[str]:
    """``target`` and every service that (transitively) calls it."""
    found, frontier = {target}, [target]
    while frontier:
        nxt = [s for s, deps in TOPOLOGY.items() for d in frontier if d in deps and s not in found]
        found.update(nxt)
        frontier = nxt
    return sorted(found)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


# -- the webhook recorder ----------------------------------------------------------------------
class Recorder:
    """An HTTP server appending each POSTed body, plus ``received_at``, to a JSONL file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.count = 0
        self.fh = path.open("w", encoding="utf-8")
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body)
                    payload["received_at"] = now_iso()
                except (ValueError, TypeError) as exc:
                    self.send_response(400)
                    self.end_headers()
                    log(f"recorder: bad body ({exc})")
                    return
                recorder.write(payload)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}/hook"

    def write(self, payload: dict[str, Any]) -> None:
        with self.lock:
            self.fh.write(json.dumps(payload, separators=(",", ":")) + "\n")
            self.fh.flush()
            self.count += 1

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
        self.fh.close()


# -- the lab -----------------------------------------------------------------------------------
@dataclass
class Lab:
    servers: Servers
    workdir: Path
    replicas: int
    ports: dict[str, list[int]] = field(default_factory=dict)
    procs: dict[str, list[Server]] = field(default_factory=dict)
    prometheus: Server | None = None
    alertmanager: Server | None = None
    stop_load: threading.Event = field(default_factory=threading.Event)
    load_threads: list[threading.Thread] = field(default_factory=list)
    load_counts: Counter[str] = field(default_factory=Counter)

    def boot(self, webhook_url: str, quiet_timeout: float = 120.0) -> None:
        """Services, Alertmanager (sending to ``webhook_url``), Prometheus and the load; every target up,
        15 s of warm-up, then quiet (no alert left in Prometheus or Alertmanager)."""
        self.start_services()
        self.start_alertmanager(webhook_url)
        assert self.alertmanager is not None
        self.start_prometheus(self.alertmanager.address)
        self.start_load()
        total = sum(len(p) for p in self.ports.values())
        wait_until(lambda: sum(t["health"] == "up" for t in self.prom_get("/api/v1/targets")["activeTargets"])
                   == total, what="every target up", timeout=60, servers=self.servers)
        log("all targets up; warming up 15 s")
        time.sleep(15)
        self.wait_quiet(timeout=quiet_timeout)

    def urls(self, service: str) -> list[str]:
        return [f"http://{HOST}:{p}" for p in self.ports[service]]

    def start_services(self) -> None:
        self.ports = {s: [free_port() for _ in range(self.replicas)] for s in TOPOLOGY}
        for service, deps in TOPOLOGY.items():
            self.procs[service] = []
            for i, port in enumerate(self.ports[service]):
                argv = [sys.executable, str(SVC), "--name", service, "--port", str(port)]
                for dep in deps:
                    argv += ["--dep", f"{dep}={','.join(self.urls(dep))}"]
                server = Server(f"{service}-{i}", argv, self.workdir / "svc", port, ready_path="/metrics",
                                env=clean_env({"PYTHONUNBUFFERED": "1"}))
                self.procs[service].append(self.servers.start(server))
        log(f"{sum(len(p) for p in self.procs.values())} service processes up ({self.replicas} per service)")

    def start_load(self) -> None:
        def hammer(url: str) -> None:
            with httpx.Client(timeout=3.0, trust_env=False) as client:
                while not self.stop_load.wait(LOAD_PERIOD):
                    try:
                        self.load_counts[str(client.get(url + "/").status_code)] += 1
                    except httpx.HTTPError:
                        self.load_counts["error"] += 1

        for service in ENTRY:
            for url in self.urls(service):
                t = threading.Thread(target=hammer, args=(url,), name=f"load-{service}", daemon=True)
                t.start()
                self.load_threads.append(t)

    def stop_load_threads(self) -> None:
        self.stop_load.set()
        for t in self.load_threads:
            t.join(5)

    def write_rules(self, epoch: int) -> Path:
        rules = [{**r, "labels": {"service": "{{ $labels.job }}", **r["labels"], "epoch": str(epoch)}} for r in RULES]
        path = self.workdir / "prometheus" / "rules.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "lab", "interval": "1s", "rules": rules}]}))
        return path

    def start_prometheus(self, alertmanager: str) -> None:
        workdir = self.workdir / "prometheus"
        workdir.mkdir(parents=True, exist_ok=True)
        rules = self.write_rules(0)
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": s, "static_configs": [{"targets": [f"{HOST}:{p}" for p in ports]}]}
                               for s, ports in self.ports.items()],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        argv = [str(PROMETHEUS), f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address={HOST}:{port}"]
        self.prometheus = self.servers.start(Server("prometheus", argv, workdir, port, ready_path="/-/ready"))

    def start_alertmanager(self, webhook_url: str) -> None:
        workdir = self.workdir / "alertmanager"
        workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "route": {"receiver": "recorder", "group_by": ["alertname", "service"], "group_wait": GROUP_WAIT,
                      "group_interval": GROUP_INTERVAL, "repeat_interval": REPEAT_INTERVAL},
            "receivers": [{"name": "recorder", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}],
        }
        (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        argv = [str(ALERTMANAGER), f"--config.file={workdir / 'alertmanager.yml'}",
                f"--storage.path={workdir / 'data'}", f"--web.listen-address={HOST}:{port}",
                "--cluster.listen-address="]
        self.alertmanager = self.servers.start(Server("alertmanager", argv, workdir, port, ready_path="/-/ready"))

    # -- Prometheus / Alertmanager state --
    def prom_get(self, path: str) -> Any:
        assert self.prometheus is not None
        with http() as client:
            response = client.get(self.prometheus.url + path)
            response.raise_for_status()
            return response.json()["data"]

    def set_epoch(self, epoch: int) -> None:
        """Rewrite the rules with a new ``epoch`` label and reload Prometheus (SIGHUP)."""
        assert self.prometheus is not None
        assert self.prometheus.proc is not None
        self.write_rules(epoch)
        os.kill(self.prometheus.proc.pid, signal.SIGHUP)

        def reloaded() -> bool:
            groups = self.prom_get("/api/v1/rules")["groups"]
            return bool(groups) and all(r["labels"].get("epoch") == str(epoch) for g in groups for r in g["rules"])

        wait_until(reloaded, what=f"Prometheus to load the rules of epoch {epoch}", timeout=30, servers=self.servers)
        # A reload rebuilds the notifier's Alertmanager set, empty until service discovery fills it
        # (up to ~5 s): alerts sent meanwhile are dropped and only resent a minute later.
        wait_until(lambda: self.prom_get("/api/v1/alertmanagers")["activeAlertmanagers"],
                   what="Prometheus to know its Alertmanager again", timeout=30, servers=self.servers)
        time.sleep(6)

    def am_alerts(self) -> list[dict[str, Any]]:
        assert self.alertmanager is not None
        with http() as client:
            response = client.get(self.alertmanager.url + "/api/v2/alerts", params={"active": "true"})
            response.raise_for_status()
            return list(response.json())

    def quiet(self) -> bool:
        return not self.prom_get("/api/v1/alerts")["alerts"] and not self.am_alerts()

    def wait_quiet(self, timeout: float = 120.0) -> None:
        wait_until(self.quiet, what="every alert to resolve", timeout=timeout, interval=1.0, servers=self.servers)
        time.sleep(7)  # Alertmanager sends the resolutions at its next group_interval (5 s)

    # -- faults --
    def crash(self, service: str) -> None:
        for server in self.procs[service]:
            server.stop()

    def revive(self, service: str) -> None:
        for server in self.procs[service]:
            if not server.running:
                server.start()

    def inject(self, service: str, error: float = 0.0, latency: float = 0.0) -> None:
        with http() as client:
            for url in self.urls(service):
                client.post(url + "/fault", json={"error": error, "latency": latency}).raise_for_status()

    def begin(self, fault: Fault) -> None:
        if fault.kind in ("crash", "flap"):
            self.crash(fault.target)
        elif fault.kind == "error":
            self.inject(fault.target, error=fault.value)
        elif fault.kind == "latency":
            self.inject(fault.target, latency=fault.value)
        else:
            raise ValueError(fault.kind)

    def end(self, fault: Fault) -> None:
        if fault.kind in ("crash", "flap"):
            self.revive(fault.target)
        else:
            self.inject(fault.target)

    def run(self, scenario: Scenario) -> dict[str, Any]:
        started = now_iso()
        for fault in scenario.faults:
            self.begin(fault)
        deadline = time.monotonic() + scenario.duration
        flaps = [f for f in scenario.faults if f.kind == "flap"]
        toggles, last_toggle = 0, time.monotonic()
        seen: dict[str, set[str]] = {"prometheus": set(), "alertmanager": set()}
        while time.monotonic() < deadline:  # 1 s ticks: toggle flapping faults, watch the alerts
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            if flaps and time.monotonic() - last_toggle >= flaps[0].value and time.monotonic() < deadline:
                for fault in flaps:
                    if self.procs[fault.target][0].running:
                        self.crash(fault.target)
                    else:
                        self.revive(fault.target)
                toggles, last_toggle = toggles + 1, time.monotonic()
            with contextlib.suppress(httpx.HTTPError, AssertionError):
                seen["prometheus"].update(f"{a['labels']['alertname']}/{a['labels'].get('service')}:{a['state']}"
                                          for a in self.prom_get("/api/v1/alerts")["alerts"])
                seen["alertmanager"].update(f"{a['labels']['alertname']}/{a['labels'].get('service')}"
                                            for a in self.am_alerts())
        for fault in scenario.faults:
            self.end(fault)
        ended = now_iso()
        return {
            "scenario": scenario.name, "description": scenario.description, "started_at": started,
            "ended_at": ended, "toggles": toggles, "seen": {k: sorted(v) for k, v in seen.items()},
            "faults": [{"id": f.id, "target": f.target, "kind": f.kind, "value": f.value,
                        "affected": dependents(f.target)} for f in scenario.faults],
        }


# -- ground truth ------------------------------------------------------------------------------
def ground_truth(webhooks: Path, timeline: list[dict[str, Any]]) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """``{fingerprint, group}`` for every alert fingerprint in the recording, and a summary.

    An alert of epoch ``e`` on service ``s`` belongs to the fault of scenario ``e`` whose affected
    services (target and its upstream dependents) include ``s``; anything else (warm-up noise,
    a symptom no fault explains) is its own group ``unexplained:<fingerprint>``.
    """
    by_epoch = {i + 1: entry for i, entry in enumerate(timeline)}
    seen: dict[str, dict[str, str]] = {}
    with webhooks.open("rb") as fh:
        for line in fh:
            for alert in json.loads(line).get("alerts", []):
                seen.setdefault(alert["fingerprint"], alert["labels"])
    rows, per_fault, unexplained = [], Counter(), []
    for fp, labels in sorted(seen.items(), key=lambda kv: (kv[1].get("epoch", ""), kv[1].get("service", ""), kv[0])):
        entry = by_epoch.get(int(labels.get("epoch", "0")))
        matches = [f["id"] for f in (entry or {}).get("faults", []) if labels.get("service") in f["affected"]]
        if len(matches) == 1:
            group = matches[0]
            per_fault[group] += 1
        else:
            group = f"unexplained:{fp}"
            unexplained.append({"fingerprint": fp, "labels": labels})
        rows.append({"fingerprint": fp, "group": group})
    return rows, {"fingerprints": len(seen), "per_fault": dict(per_fault), "unexplained": unexplained}


# -- README ------------------------------------------------------------------------------------
def readme(out: Path, timeline: list[dict[str, Any]], summary: dict[str, Any], meta: dict[str, Any]) -> str:
    topo = "\n".join(f"    {s} -> {', '.join(d) if d else '(none)'}" for s, d in TOPOLOGY.items())
    scen = []
    for i, entry in enumerate(timeline, start=1):
        faults = "; ".join(
            f"`{f['id']}`: {f['kind']} {f['target']} → affects {', '.join(f['affected'])} "
            f"({summary['per_fault'].get(f['id'], 0)} alerts)" for f in entry["faults"])
        scen.append(f"| {i} | {entry['scenario']} | {entry['description']} | {faults} | "
                    f"{entry['started_at'][11:19]}–{entry['ended_at'][11:19]} |")
    rules = "\n".join(f"* `{r['alert']}` ({r['labels']['severity']}, for {r['for']}): `{r['expr']}`" for r in RULES)
    unexplained = summary["unexplained"]
    noise = ("none" if not unexplained else ", ".join(
        f"{u['labels'].get('alertname')}/{u['labels'].get('service')} (epoch {u['labels'].get('epoch')})"
        for u in unexplained))
    return f"""# Correlation benchmark: recorded Alertmanager traffic with ground truth

Recorded on {meta['recorded_at'][:10]} (UTC, {meta['recorded_at'][11:19]} to {meta['finished_at'][11:19]}) by
`benchmarks/correlation_lab/record.py` with Prometheus {meta['prometheus']} and Alertmanager
{meta['alertmanager']}, all on 127.0.0.1. Nothing here is synthetic: every line of `webhooks.jsonl`
is a body Alertmanager POSTed to the recorder, plus the `received_at` the recorder stamped.

| file | content |
|---|---|
| `webhooks.jsonl` | {meta['webhooks']} webhook bodies (Alertmanager v4), one per line, with `received_at` (UTC ISO) |
| `truth.jsonl` | {summary['fingerprints']} `{{fingerprint, group}}` rows: the fault each alert belongs to |
| `scenarios.json` | the timeline: scenarios, faults, targets, affected services, start/end (UTC) |

## Topology

Each service is one `svc.py` process per replica ({meta['replicas']} replicas each). `GET /` calls one
replica of each dependency (httpx, 2 s timeout) and answers 500 if any call failed or its own
injected fault says so; `/metrics` exports `lab_requests_total{{code}}`,
`lab_request_duration_seconds` (histogram) and `lab_dependency_calls_total{{dependency,result}}`;
`POST /fault` sets `{{"error": ratio, "latency": seconds}}`. A load generator calls every replica of
each entry service ({', '.join(ENTRY)}) every {LOAD_PERIOD * 1000:.0f} ms.

{topo}

## Alerting

Prometheus scrapes every 1 s and evaluates every 1 s. Every rule adds `service="{{{{ $labels.job }}}}"`,
a severity and `epoch` (the scenario number; see below). Rules are per instance (replica):

{rules}

Alertmanager: `group_by: [alertname, service]`, group_wait {GROUP_WAIT}, group_interval {GROUP_INTERVAL},
repeat_interval {REPEAT_INTERVAL}, `send_resolved: true`, one webhook receiver (the recorder).

## Scenarios

Each scenario runs after a quiet gap (every alert resolved in Prometheus and Alertmanager, and the
resolutions delivered), under its own `epoch` (1–{len(timeline)}; the rules are rewritten and Prometheus
reloaded in the gap), so the same symptom in two scenarios gets two fingerprints.

| epoch | scenario | what | faults (ground-truth groups) | UTC |
|---|---|---|---|---|
{chr(10).join(scen)}

## Ground truth

An alert (Alertmanager fingerprint) of epoch *e* on service *s* belongs to the fault of scenario *e*
whose target is *s* or a service *s* (transitively) calls. Concurrent faults touch disjoint sets of
services, so this is unambiguous. Alerts no fault explains get their own group
`unexplained:<fingerprint>`; in this recording: {noise}.

The `epoch` label exists only to make the ground truth well defined; a correlation config must not
group by it (none in `benchmarks/correlation_lab/configs/` does). Note for the "one incident per
Alertmanager group" baseline: the groupKey (`alertname`, `service`) is the same across scenarios, so
that baseline lumps, e.g., frontend's HighErrorRate of scenarios 1, 5 and 7 together, as Alertmanager
itself would.

## Re-recording

Needs the Debian `prometheus` and `prometheus-alertmanager` binaries (`/usr/bin/...`) and the
project venv; takes about {meta['wall_seconds'] / 60:.0f} minutes:

```sh
.venv/bin/python benchmarks/correlation_lab/record.py --out benchmarks/data/correlation
.venv/bin/python benchmarks/correlation_lab/evaluate.py
```

Timing-dependent details (exact alert counts, repeats, which replica fires first) differ from run
to run; the scenario structure and the ground-truth rule do not. After each reload the recorder
waits until Prometheus lists its Alertmanager again, plus 6 s: alerts that fire while a reload
has left the notifier without Alertmanagers are dropped and only resent a minute later, which
once lost a whole 30 s scenario. `scenarios.json` lists, per scenario, the alerts Prometheus and
Alertmanager showed while the faults were on (`seen`), and the recorder warns (and keeps its
work directory) when a fault raised no alert in either.
"""


def binary_version(path: Path) -> str:
    import subprocess

    done = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=10, check=False)
    first = (done.stdout or done.stderr).splitlines()
    return first[0].split("version", 1)[-1].strip().split(" ")[0] if first else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "data" / "correlation")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="run only these scenarios (smoke test; README still written)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply scenario durations (smoke test)")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the process logs and data")
    args = parser.parse_args()
    scenarios = [s for s in SCENARIOS if not args.only or s.name in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="correlation-lab-"))
    webhooks = args.out / "webhooks.jsonl"
    began, t0 = now_iso(), time.monotonic()
    timeline: list[dict[str, Any]] = []
    ok = False
    log(f"workdir {workdir}; recording to {webhooks}")
    with Recorder(webhooks) as recorder, Servers() as servers:
        lab = Lab(servers, workdir, args.replicas)
        try:
            lab.boot(recorder.url)
            for epoch, scenario in enumerate(scenarios, start=1):
                lab.set_epoch(epoch)
                scenario = Scenario(scenario.name, scenario.description, scenario.faults,
                                    scenario.duration * args.scale)
                log(f"epoch {epoch}: {scenario.name} for {scenario.duration:.0f} s — {scenario.description}")
                timeline.append(lab.run(scenario))
                for where, seen in timeline[-1]["seen"].items():
                    for fault in scenario.faults:
                        if not any(x.split("/")[1].split(":")[0] in dependents(fault.target) for x in seen):
                            log(f"WARNING: {where} showed no alert for {fault.id} (seen: {seen})")
                            args.keep_workdir = True
                log(f"epoch {epoch}: faults cleared; waiting for quiet ({recorder.count} webhooks so far)")
                lab.wait_quiet()
            ok = True
        finally:
            lab.stop_load_threads()
            log(f"load generator: {dict(lab.load_counts)}")
            if not ok:
                print(servers.logs(15), file=sys.stderr)
    finished = now_iso()
    rows, summary = ground_truth(webhooks, timeline)
    with (args.out / "truth.jsonl").open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    meta = {"recorded_at": began, "finished_at": finished, "wall_seconds": time.monotonic() - t0,
            "replicas": args.replicas, "webhooks": recorder.count,
            "prometheus": binary_version(PROMETHEUS), "alertmanager": binary_version(ALERTMANAGER)}
    (args.out / "scenarios.json").write_text(json.dumps({"meta": meta, "topology": TOPOLOGY, "rules": RULES,
                                                         "timeline": timeline}, indent=2) + "\n")
    (args.out / "README.md").write_text(readme(args.out, timeline, summary, meta))
    log(f"{recorder.count} webhooks, {summary['fingerprints']} fingerprints; per fault {summary['per_fault']}; "
        f"{len(summary['unexplained'])} unexplained; {meta['wall_seconds']:.0f} s")
    if args.keep_workdir:
        log(f"logs kept in {workdir}")
    else:
        with contextlib.suppress(OSError):
            shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
