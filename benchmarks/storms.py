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
            "JobDurationHigh": "info",
            # the rich storms' rules (RichStorm)
            "InstanceDown": "critical", "ErrorBudgetBurn": "critical", "ErrorLogSpike": "warning",
            "LatencySLOBurn": "warning", "UpstreamTimeouts": "warning", "PostgresTooManyConnections": "warning",
            "PostgresReplicationLag": "warning", "RedisEvictions": "warning", "NodeDiskIOSaturation": "warning",
            "NodeLoadHigh": "warning", "NodeOOMKills": "critical", "JobFailed": "warning", "ReportsStale": "info",
            "MailDeliveryErrors": "warning", "NodeSwapHigh": "warning", "CertificateExpiringSoon": "info"}
SPLIT = {"tuning": [1, 2, 3, *range(11, 21)], "held-out": [4, 5, 6, 7, 8, 9, 10],
         # the rich storms (RichStorm, seeds 21-50): several rules per fault, as real rule sets have
         "rich-tuning": list(range(21, 36)), "rich-held-out": list(range(36, 51))}
RICH = range(21, 51)
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
        if not instance:  # a service-level rule (an SLO burn rate over every instance)
            del labels["instance"]
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


#: per host, what a host fault fires there (two node-exporter rules each)
HOST_RULES = {"disk": ["NodeFilesystemAlmostFull", "NodeDiskIOSaturation", "NodeLoadHigh"],
              "cpu": ["NodeHighCPU", "NodeLoadHigh", "NodeMemoryPressure"],
              "memory": ["NodeMemoryPressure", "NodeOOMKills", "NodeSwapHigh"]}
#: rules a fault of a kind fires on its own service, beyond the per-instance first one
OWN_EXTRA = {"db": ["PostgresTooManyConnections", "PostgresReplicationLag"], "cache": ["RedisEvictions"]}


class RichStorm(Storm):
    """A storm closer to the issue's real ones: several rules per fault, on the faulty service and on
    its callers, so that an incident holds many alerts (an oracle compresses ≥ 0.85, as on the real
    storms), and faults picked next to each other.

    Per fault, besides what :class:`Storm` fires: ``InstanceDown`` (``up == 0``) per instance of a
    crashed service; service-level SLO burn-rate alerts (``ErrorBudgetBurn`` fast ``window="1h"`` and
    slow ``window="6h"``, ``LatencySLOBurn``) a minute or more after the onset, on the faulty service
    and on its direct callers; ``ErrorLogSpike`` per instance with errors; ``UpstreamTimeouts`` naming
    the slow dependency on its callers; database / cache rules (connections, replication lag,
    evictions). A host fault fires two or three node-exporter rules; the services with an instance on
    the host get slow (sometimes failing), their callers slow on some instances. Single alerts flap on
    their own (a rule near its threshold resolves and fires again within one fault: the same
    fingerprint, the same incident). Background: 1–3 bursts of 1–3 alerts (batch, reports, mail, a
    worker host), and in a third of the storms a long-firing ``CertificateExpiringSoon``.
    The second and third faults start 0–120 s after the first, on a neighbour of an earlier fault
    (caller, dependency, sibling or host-mate) two times in three.
    """

    def flappy(self, start: float, end: float) -> list[tuple[float, float]]:
        """A single rule near its threshold: one interval, or 2–3 with short gaps (p = 0.2)."""
        rng = self.rng
        if rng.random() >= 0.2 or end - start < 90:
            return [(start, end)]
        cuts = sorted(rng.uniform(start + 20, end - 20) for _ in range(rng.randint(1, 2)))
        out, t = [], start
        for cut in cuts:
            if cut - t > 10:
                out.append((t, cut))
                t = cut + rng.uniform(15, 40)
        out.append((t, end)) if end - t > 10 else None
        return out or [(start, end)]

    def fire(self, group: str, name: str, service: str, instance: str, start: float, end: float,
             summary: str, **extra: str) -> None:
        """As :meth:`Storm.fire`, but an alert two faults produce belongs to the one whose symptom
        started first in time (not the one simulated first)."""
        job = "node" if name.startswith("Node") else service
        labels = {"alertname": name, "instance": instance, "job": job, "severity": SEVERITY[name], **extra}
        if not instance:
            del labels["instance"]
        if job != "node":
            labels["service"] = service
        known = self.alerts.get(Firing(labels, summary, group).fingerprint)
        earliest = min((a for a, _ in known.intervals), default=float("inf")) if known else None
        super().fire(group, name, service, instance, start, end, summary, **extra)
        if known is not None and earliest is not None and start < earliest:
            known.group = group

    def rule(self, group: str, name: str, service: str, instance: str, start: float, end: float, summary: str,
             **extra: str) -> None:
        for a, b in self.flappy(start, end):
            self.fire(group, name, service, instance, a, b, summary, **extra)

    def fault(self, group: str, kind: str, target: str, on: list[tuple[float, float]]) -> None:
        rng = self.rng
        self.faults.append({"group": group, "kind": kind, "target": target,
                            "on": [[round(a, 1), round(b, 1)] for a, b in on]})
        lags: dict[str, float] = {}

        def lag(key: str, lo: float, hi: float) -> float:
            return lags.setdefault(key, rng.uniform(lo, hi))

        def burn(service: str, start: float, end: float, base: float, what: str) -> None:
            name = "LatencySLOBurn" if what == "latency" else "ErrorBudgetBurn"
            fast = start + base + lag(f"burn1{service}", 60, 120)
            if fast < end:
                self.rule(group, name, service, "", fast, end + 30, f"{service}: {what} budget burning fast",
                          window="1h")
            slow = start + base + lag(f"burn6{service}", 150, 300)
            if name == "ErrorBudgetBurn" and slow < end:
                self.fire(group, name, service, "", slow, end + 120, f"{service}: error budget burning",
                          window="6h")

        for start, end in on:
            if kind == "host":
                rules = HOST_RULES[self.faults[-1].setdefault("resource", rng.choice(sorted(HOST_RULES)))]
                for n, node_name in enumerate(rules):
                    if n == 0 or lag(f"node2{n}", 0, 1) < 0.75:
                        self.rule(group, node_name, "node", f"{target}:9100", start + lag(f"n{n}", 10, 60), end + 20,
                                  f"{node_name} on {target}")
                for service, instances in INSTANCES.items():
                    for instance in instances:
                        if instance.startswith(target + ":") and lag("on" + instance, 0, 1) < 0.85:
                            self.rule(group, "HighLatency", service, instance, start + lag("l" + instance, 20, 60),
                                      end + 10, f"p90 latency of {service} on {instance} above 300 ms")
                            if lag("x" + instance, 0, 1) < 0.5:
                                self.rule(group, "HighErrorRate", service, instance,
                                          start + lag("le" + instance, 30, 80), end + 10,
                                          f"{service} on {instance}: 5xx ratio above 20%")
                            for caller in callers(service):  # a slow replica slows its callers' requests
                                for other in INSTANCES[caller]:
                                    if lag(f"c{instance}{other}", 0, 1) < 0.3:
                                        self.rule(group, "HighLatency", caller, other,
                                                  start + lag("l" + instance, 20, 60) + lag("cl" + other, 5, 25),
                                                  end + 10, f"p90 latency of {caller} on {other} above 300 ms")
                for service in [s for s, i in INSTANCES.items() if any(x.startswith(target + ":") for x in i)]:
                    if lag(f"hb{service}", 0, 1) < 0.5:
                        burn(service, start, end, 30.0, "latency")
                continue
            first = {"crash": "ServiceDown", "errors": "HighErrorRate", "latency": "HighLatency"}[kind]
            what = "latency" if kind == "latency" else "error"
            for instance in INSTANCES[target]:
                onset = lag("own" + instance, 15, 45) if kind == "crash" else lag("own" + instance, 5, 30)
                self.rule(group, first, target, instance, start + onset, end + 5, f"{target} on {instance}: {first}")
                if kind == "crash":
                    self.fire(group, "InstanceDown", target, instance, start + lag("up" + instance, 30, 70), end + 5,
                              f"{instance} of job {target} is down")
                if kind == "errors" and lag("log" + instance, 0, 1) < 0.7:
                    self.rule(group, "ErrorLogSpike", target, instance, start + lag("lg" + instance, 10, 40),
                              end + 15, f"{target} on {instance}: error log lines above 50/s")
            for extra in OWN_EXTRA.get(target, []):
                if lag("xtra" + extra, 0, 1) < 0.6:
                    self.rule(group, extra, target, INSTANCES[target][0], start + lag("t" + extra, 20, 70), end + 20,
                              f"{extra} on {INSTANCES[target][0]}")
            burn(target, start, end, 0.0, what)
            level = [(target, 0.0)]
            for hop in (1, 2):
                nxt: list[tuple[str, float]] = []
                for dep, dep_lag in level:
                    for caller in callers(dep):
                        base = dep_lag + lag(f"hop{hop}{caller}", 5, 25)
                        nxt.append((caller, base))
                        if hop == 1 or lag(f"b{caller}", 0, 1) < 0.5:
                            burn(caller, start, end, base, what)
                        for instance in INSTANCES[caller]:
                            if kind == "latency":
                                if hop == 1 or lag(f"p{instance}", 0, 1) < 0.6:
                                    self.rule(group, "HighLatency", caller, instance,
                                              start + base + lag("i" + instance, 0, 10), end + 10,
                                              f"p90 latency of {caller} on {instance} above 300 ms")
                                if hop == 1 and lag(f"u{instance}", 0, 1) < 0.7:
                                    self.rule(group, "UpstreamTimeouts", caller, instance,
                                              start + base + lag("ut" + instance, 5, 20), end + 10,
                                              f"{caller} on {instance}: calls to {dep} timing out", dependency=dep)
                                continue
                            if hop == 1 or lag(f"q{instance}", 0, 1) < 0.5:
                                self.rule(group, "DependencyErrors", caller, instance,
                                          start + base + lag("d" + instance, 0, 8), end + 8,
                                          f"{caller} on {instance}: calls to {dep} failing", dependency=dep)
                            if (hop == 1 and kind == "crash") or lag(f"e{instance}", 0, 1) < 0.5:
                                self.rule(group, "HighErrorRate", caller, instance,
                                          start + base + lag("e" + instance, 3, 15), end + 10,
                                          f"{caller} on {instance}: 5xx ratio above 20%")
                level = nxt

    def background(self, at: float, index: int) -> None:
        rng = self.rng
        group = f"background-{index}"
        duration = rng.uniform(60, 300)
        choice = rng.choice(["batch", "reports", "mail", "host"])
        bursts = {"batch": [("JobDurationHigh", "batch", "work-1:9000", "nightly job slow"),
                            ("JobFailed", "batch", "work-1:9000", "nightly job failed on retry"),
                            ("NodeHighCPU", "node", "work-1:9100", "NodeHighCPU on work-1")],
                  "reports": [("SlowQueries", "reports", "work-1:5433", "reports p95 query > 2 s"),
                              ("ReportsStale", "reports", "work-1:5433", "reports older than 1 h")],
                  "mail": [("QueueBacklog", "mail", "work-2:2525", "mail queue above 1000"),
                           ("MailDeliveryErrors", "mail", "work-2:2525", "mail deliveries failing")],
                  "host": [("NodeMemoryPressure", "node", "work-2:9100", "NodeMemoryPressure on work-2"),
                           ("NodeSwapHigh", "node", "work-2:9100", "NodeSwapHigh on work-2")]}[choice]
        for n, (name, service, instance, summary) in enumerate(bursts):
            if n == 0 or rng.random() < 0.6:
                self.fire(group, name, service, instance, at + (0 if n == 0 else rng.uniform(5, 60)), at + duration,
                          summary)

    def plan(self) -> None:
        rng = self.rng
        targets = ["crash:db", "crash:cache", "errors:shop", "errors:blog", "latency:cache", "latency:db",
                   "crash:blog", "errors:cache", "host:data-1", "host:app-1", "host:data-2", "latency:blog",
                   "crash:shop", "errors:proxy", "latency:shop", "errors:db"]
        host_of = {t: {i.split(":")[0] for i in INSTANCES[t]} for t in INSTANCES}

        def near(a: str, b: str) -> bool:
            if a in HOSTS or b in HOSTS:
                host, other = (a, b) if a in HOSTS else (b, a)
                return other in HOSTS or host in host_of.get(other, set())
            return b in GRAPH.get(a, []) or a in GRAPH.get(b, []) or bool(set(callers(a)) & set(callers(b))) \
                or bool(set(GRAPH.get(a, [])) & set(GRAPH.get(b, [])))

        picked: list[str] = []
        for n in range(rng.choice([2, 3, 3])):
            used = {p.split(":")[1] for p in picked}
            options = [t for t in targets if t.split(":")[1] not in used]
            close = [t for t in options if any(near(t.split(":")[1], p.split(":")[1]) for p in picked)]
            picked.append(rng.choice(close if n and close and rng.random() < 2 / 3 else options))
        offset = 60.0
        for n, spec in enumerate(picked, start=1):
            kind, target = spec.split(":")
            start = offset + (0 if n == 1 else rng.uniform(0, 120))
            on: list[tuple[float, float]]
            if rng.random() < 0.3:
                on, t = [], start
                for _ in range(rng.randint(2, 3)):
                    length = rng.uniform(60, 120)
                    on.append((t, t + length))
                    t += length + rng.uniform(25, 70)
            else:
                on = [(start, start + rng.uniform(240, 480))]
            if rng.random() < 0.25:
                back = on[-1][1] + rng.uniform(120, 300)
                on.append((back, back + rng.uniform(120, 240)))
            self.fault(f"f{n}-{kind}-{target}", kind, target, on)
        for index in range(rng.randint(1, 3)):
            self.background(rng.uniform(0, 1200), index + 1)
        if rng.random() < 1 / 3:
            self.fire("background-cert", "CertificateExpiringSoon", "proxy", "edge-1:443", 0, 2400,
                      "TLS certificate of edge-1 expires in 9 days")


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
    storm = RichStorm(seed) if seed in RICH else Storm(seed)
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
