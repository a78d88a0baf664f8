"""A generator of labelled Alertmanager alert storms with concurrent faults in neighbouring services.

Not a recording: a simulation, explicit about what it models and with a fixed seed per storm. What it
has, because real storms have it (issue 13):

* a small real-shaped system: a reverse proxy in front of two backends (siblings under one proxy)
  that share a database, one of them also a cache; cache and a database replica share one host
  (``data-1``), the two backends share their hosts (``app-1``, ``app-2``); node-exporter alerts for
  every host (``job="node"``, so they all carry the service ``node``);
* per storm two or three faults at once (start 0–120 s apart) on neighbouring components, picked
  from: crash / error burst / added latency on a service, and a host fault (disk, CPU, memory);
* cascades with onset lags: a dependency's callers fire 5–40 s after it, their callers later; a
  cause's own alert may fire *after* its symptoms (a ``for: 30s`` ServiceDown against a
  ``for: 10s`` HighErrorRate), as it does in real rule sets;
* flapping: a fault may go off and on again 2–3 times (the same fingerprints resolve and refire:
  one incident); a fault may also come back once, minutes later (ground truth: the same fault);
* background alerts from unrelated load (batch, reports, mail, their hosts), each its own truth group;
* Alertmanager-like delivery: ``group_by: [alertname, service]``, a notification when a group's
  alerts change (after 2–10 s), repeats every 120 s while firing, ``send_resolved``; labels
  ``alertname, service, instance, job, severity`` (+ ``dependency`` on DependencyErrors), the
  fingerprint a hash of the labels, ``startsAt`` the rule's onset and ``received_at`` the delivery.

Ground truth: every alert belongs to the injected fault that produced it; an alert (fingerprint)
produced by two concurrent faults belongs to the one that produced it first.

What it does not have: metric noise, rules that fire on only one replica by chance, alerts that
fire without any fault except the background, anything from traces or logs.

    .venv/bin/python benchmarks/storms.py --out benchmarks/data/storms   # writes storm-01 … storm-20
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

#: service → the services it calls
GRAPH: dict[str, list[str]] = {
    "proxy": ["shop", "blog"],
    "shop": ["cache", "db"],
    "blog": ["db"],
    "cache": [],
    "db": [],
    "batch": ["reports"],
    "reports": [],
    "mail": [],
}
INSTANCES: dict[str, list[str]] = {
    "proxy": ["edge-1:443", "edge-2:443", "edge-3:443"],
    "shop": ["app-1:8080", "app-2:8080", "app-3:8080"],
    "blog": ["app-1:8081", "app-2:8081", "app-3:8081"],
    "cache": ["data-1:6379", "data-2:6379"],
    "db": ["data-1:5432", "data-2:5432"],
    "batch": ["work-1:9000"],
    "reports": ["work-1:5433"],
    "mail": ["work-2:2525"],
}
CORE = ["shop", "blog", "cache", "db", "proxy"]
HOSTS = ["data-1", "data-2", "app-1", "app-2"]
SEVERITY = {"ServiceDown": "critical", "HighErrorRate": "critical", "HighLatency": "warning",
            "DependencyErrors": "warning", "NodeFilesystemAlmostFull": "critical", "NodeHighCPU": "warning",
            "NodeMemoryPressure": "warning", "QueueBacklog": "warning", "SlowQueries": "warning",
            "JobDurationHigh": "info"}
SPLIT = {"tuning": [1, 2, 3, *range(11, 21)], "held-out": [4, 5, 6, 7, 8, 9, 10]}
START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def callers(service: str) -> list[str]:
    return sorted(s for s, deps in GRAPH.items() if service in deps)


@dataclass
class Firing:
    """One alert's firing intervals (seconds from the storm start) and its fault."""

    labels: dict[str, str]
    summary: str
    group: str
    intervals: list[tuple[float, float]] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        text = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class Storm:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.alerts: dict[str, Firing] = {}
        self.faults: list[dict[str, Any]] = []

    def fire(self, group: str, name: str, service: str, instance: str, start: float, end: float,
             summary: str, **extra: str) -> None:
        job = "node" if name.startswith("Node") else service
        labels = {"alertname": name, "instance": instance, "job": job, "severity": SEVERITY[name], **extra}
        if job != "node":
            labels["service"] = service
        alert = Firing(labels, summary, group)
        alert = self.alerts.setdefault(alert.fingerprint, alert)
        alert.intervals.append((start, end))

    # -- faults ---------------------------------------------------------------------------------
    def fault(self, group: str, kind: str, target: str, on: list[tuple[float, float]]) -> None:
        """Every symptom of one fault, for each of its ``on`` periods (flapping: several)."""
        rng = self.rng
        self.faults.append({"group": group, "kind": kind, "target": target,
                            "on": [[round(a, 1), round(b, 1)] for a, b in on]})
        lags: dict[str, float] = {}  # per symptom, fixed over flaps: the same rules, the same lags

        def lag(key: str, lo: float, hi: float) -> float:
            return lags.setdefault(key, rng.uniform(lo, hi))

        for start, end in on:
            if kind == "host":
                node_name = self.faults[-1].setdefault("alert", rng.choice(
                    ["NodeFilesystemAlmostFull", "NodeHighCPU", "NodeMemoryPressure"]))
                self.fire(group, node_name, "node", f"{target}:9100", start + lag("n", 10, 40), end + 20,
                          f"{node_name} on {target}")
                for service, instances in INSTANCES.items():
                    for instance in instances:
                        if instance.startswith(target + ":") and (lags.get(instance) or rng.random() < 0.8):
                            lags[instance] = 1.0
                            self.fire(group, "HighLatency", service, instance,
                                      start + lag("l" + instance, 20, 60), end + 10,
                                      f"p90 latency of {service} on {instance} above 300 ms")
                continue
            first = {"crash": "ServiceDown", "errors": "HighErrorRate", "latency": "HighLatency"}[kind]
            for instance in INSTANCES[target]:
                onset = lag("own" + instance, 15, 45) if kind == "crash" else lag("own" + instance, 5, 30)
                self.fire(group, first, target, instance, start + onset, end + 5,
                          f"{target} on {instance}: {first}")
            level = [(target, 0.0)]
            for hop in (1, 2):
                nxt: list[tuple[str, float]] = []
                for dep, dep_lag in level:
                    for caller in callers(dep):
                        base = dep_lag + lag(f"hop{hop}{caller}", 5, 25)
                        nxt.append((caller, base))
                        for instance in INSTANCES[caller]:
                            if kind == "latency":
                                if hop == 1 or lag(f"p{instance}", 0, 1) < 0.6:
                                    self.fire(group, "HighLatency", caller, instance,
                                              start + base + lag("i" + instance, 0, 10), end + 10,
                                              f"p90 latency of {caller} on {instance} above 300 ms")
                                continue
                            if hop == 1 or lag(f"q{instance}", 0, 1) < 0.5:
                                self.fire(group, "DependencyErrors", caller, instance,
                                          start + base + lag("d" + instance, 0, 8), end + 8,
                                          f"{caller} on {instance}: calls to {dep} failing",
                                          dependency=dep)
                            if (hop == 1 and kind == "crash") or lag(f"e{instance}", 0, 1) < 0.5:
                                self.fire(group, "HighErrorRate", caller, instance,
                                          start + base + lag("e" + instance, 3, 15), end + 10,
                                          f"{caller} on {instance}: 5xx ratio above 20%")
                level = nxt

    def background(self, at: float, index: int) -> None:
        """Unrelated load: a short burst of 1–2 alerts on a background service or its host."""
        rng = self.rng
        group = f"background-{index}"
        duration = rng.uniform(60, 240)
        choice = rng.choice(["batch", "reports", "mail", "host"])
        if choice == "batch":
            self.fire(group, "JobDurationHigh", "batch", "work-1:9000", at, at + duration, "nightly job slow")
            if rng.random() < 0.5:
                self.fire(group, "NodeHighCPU", "node", "work-1:9100", at + rng.uniform(5, 30), at + duration,
                          "NodeHighCPU on work-1")
        elif choice == "reports":
            self.fire(group, "SlowQueries", "reports", "work-1:5433", at, at + duration, "reports p95 query > 2 s")
        elif choice == "mail":
            self.fire(group, "QueueBacklog", "mail", "work-2:2525", at, at + duration, "mail queue above 1000")
        else:
            self.fire(group, "NodeMemoryPressure", "node", "work-2:9100", at, at + duration,
                      "NodeMemoryPressure on work-2")

    def plan(self) -> None:
        rng = self.rng
        targets = ["crash:db", "crash:cache", "errors:shop", "errors:blog", "latency:cache", "latency:db",
                   "crash:blog", "errors:cache", "host:data-1", "host:app-1", "host:data-2", "latency:blog",
                   "crash:shop", "errors:proxy"]
        picked: list[str] = []
        for _ in range(rng.choice([2, 3, 3])):
            options = [t for t in targets if t.split(":")[1] not in {p.split(":")[1] for p in picked}]
            picked.append(rng.choice(options))
        offset = 60.0
        for n, spec in enumerate(picked, start=1):
            kind, target = spec.split(":")
            start = offset + (0 if n == 1 else rng.uniform(0, 120))
            duration = rng.uniform(180, 420)
            on: list[tuple[float, float]]
            if rng.random() < 0.3:  # flapping: off and on again, 2–3 times
                on, t = [], start
                for _ in range(rng.randint(2, 3)):
                    length = rng.uniform(50, 100)
                    on.append((t, t + length))
                    t += length + rng.uniform(25, 70)
            else:
                on = [(start, start + duration)]
            if rng.random() < 0.25:  # the same fault comes back once, minutes later
                back = on[-1][1] + rng.uniform(120, 300)
                on.append((back, back + rng.uniform(90, 200)))
            self.fault(f"f{n}-{kind}-{target}", kind, target, on)
        for index in range(rng.randint(2, 4)):
            self.background(rng.uniform(0, 1200), index + 1)

    # -- delivery --------------------------------------------------------------------------------
    def webhooks(self) -> list[tuple[float, dict[str, Any]]]:
        """Alertmanager's notifications, ``group_by: [alertname, service]``."""
        rng = self.rng
        groups: dict[tuple[str, str], list[Firing]] = {}
        for alert in self.alerts.values():
            alert.intervals = _merge(alert.intervals)
            groups.setdefault((alert.labels["alertname"], alert.labels.get("service", "node")), []).append(alert)
        out: list[tuple[float, dict[str, Any]]] = []
        for (name, service), members in groups.items():
            times: set[float] = set()
            for alert in members:
                for a, b in alert.intervals:
                    times.add(round(a + rng.uniform(2, 10), 1))
                    times.add(round(b + rng.uniform(2, 10), 1))
                    times.update(round(t, 1) for t in _frange(a + 120, b, 120))
            last = -1.0
            for at in sorted(times):
                body = []
                for alert in members:
                    for a, b in alert.intervals:
                        if a <= at < b:
                            body.append(_am(alert, a, None))
                        elif last < b <= at:
                            body.append(_am(alert, a, b))
                if body:
                    status = "firing" if any(x["status"] == "firing" for x in body) else "resolved"
                    key = f'{{}}:{{alertname="{name}", service="{service}"}}'
                    out.append((at, {"receiver": "watchkeeper", "status": status, "alerts": body,
                                     "groupLabels": {"alertname": name, "service": service},
                                     "commonLabels": {"alertname": name}, "commonAnnotations": {},
                                     "externalURL": "http://alertmanager:9093", "version": "4",
                                     "groupKey": key, "truncatedAlerts": 0,
                                     "received_at": _stamp(START + timedelta(seconds=at))}))
                last = at
        out.sort(key=lambda x: x[0])
        return out


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _frange(a: float, b: float, step: float) -> list[float]:
    out = []
    while a < b:
        out.append(a)
        a += step
    return out


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _am(alert: Firing, start: float, end: float | None) -> dict[str, Any]:
    return {"status": "firing" if end is None else "resolved", "labels": alert.labels,
            "annotations": {"summary": alert.summary},
            "startsAt": _stamp(START + timedelta(seconds=start)),
            "endsAt": "0001-01-01T00:00:00Z" if end is None else _stamp(START + timedelta(seconds=end)),
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": alert.fingerprint}


def write(out: Path, seed: int) -> dict[str, Any]:
    storm = Storm(seed)
    storm.plan()
    hooks = storm.webhooks()
    name = f"storm-{seed:02d}"
    with (out / f"{name}.jsonl").open("w") as fh:
        for _, body in hooks:
            fh.write(json.dumps(body, separators=(",", ":")) + "\n")
    with (out / f"{name}.truth.jsonl").open("w") as fh:
        for fp, alert in sorted(storm.alerts.items()):
            fh.write(json.dumps({"fingerprint": fp, "group": alert.group}) + "\n")
    return {"storm": name, "seed": seed, "webhooks": len(hooks), "alerts": len(storm.alerts),
            "faults": storm.faults}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data" / "storms")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = {"split": SPLIT, "graph": GRAPH, "instances": INSTANCES,
                "storms": [write(args.out, seed) for seeds in SPLIT.values() for seed in seeds]}
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (args.out / "graph.yaml").write_text("".join(f"{s}: [{', '.join(d)}]\n" for s, d in GRAPH.items()))
    for s in manifest["storms"]:
        print(f"{s['storm']}: {s['alerts']} alerts in {s['webhooks']} webhooks; "
              + ", ".join(f["group"] for f in s["faults"]))


if __name__ == "__main__":
    main()
