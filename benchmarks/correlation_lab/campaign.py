"""Record storms of *concurrent faults in neighbouring services* from the lab, with real Prometheus
and Alertmanager, for correlation — the kind of storm the lab benchmark (``record.py``) never has.

Same machinery as ``record.py`` (its services, rules, load, recorder and quiet gaps), but each
epoch is one **storm**, drawn from a seeded generator: two or three faults (crash, error burst,
added latency, flapping) whose targets are preferably *neighbours* — siblings under one caller
(``checkout`` and ``catalog`` under ``frontend``), a caller and its own dependency, two
dependencies of one service — starting 4–25 s apart, some ending and coming back (a returning
fault is the same incident), and sometimes a short background burst on an unrelated service.
Rules add a slow error-budget burn alert that fires late, as real SLO rules do.

Writes, per storm, ``storm-NN.jsonl`` (the webhook bodies of that epoch, with ``received_at``) and
``storm-NN.truth.jsonl`` (``{fingerprint, group}``), plus ``graph.yaml`` (the lab's true service
graph), ``manifest.json`` (the split: the first half of the storms for tuning, the second half
held out — never used to choose a parameter) and ``storms.json`` (each storm's faults and timing),
in the layout ``benchmarks/correlation_storms.py --data DIR`` reads.

Ground truth, by what each fault can physically cause: an alert belongs to a fault of its epoch
whose affected services (its target and every service that transitively calls it) include the
alert's service, and whose kind can raise it — ``ServiceDown`` only a crash or flap *of that
service*; latency alerts only added latency; error alerts (``HighErrorRate``, ``DependencyErrors``,
``ErrorBudgetBurn``) only crashes, flaps and error bursts (the added latencies stay far below the
services' 2 s timeout). When two faults remain: a ``dependency`` label decides if only one of them
lies behind it; otherwise the fault that began last before the alert's ``startsAt`` minus its rule's
``for`` (a new symptom follows the newest cause), else the first. Alerts no fault explains are
singletons (``unexplained:<fingerprint>``). ``--retruth DIR`` recomputes the truth of a recording.

    .venv/bin/python benchmarks/correlation_lab/campaign.py --storms 24 --seed 7 --out benchmarks/data/storms_lab
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import record
from record import TOPOLOGY, Fault, Lab, Recorder, Servers, dependents, log, now_iso

#: a late alert, like an SLO burn-rate rule: errors over a longer window, held longer
BURN_RULE: dict[str, Any] = {
    "alert": "ErrorBudgetBurn",
    "expr": 'sum by (job) (rate(lab_requests_total{code=~"5.."}[30s])) '
            "/ sum by (job) (rate(lab_requests_total[30s])) > 0.1",
    "for": "10s",
    "labels": {"severity": "critical"},
    "annotations": {"summary": "{{ $labels.job }} burns its error budget: {{ $value | humanizePercentage }} errors"},
}


@dataclass(frozen=True)
class Timed:
    fault: Fault
    start: float  # seconds after the storm began
    stop: float
    gap: tuple[float, float] | None = None  # the fault pauses (returns after) within the storm


def neighbours(service: str) -> set[str]:
    """Services that share a caller with ``service``, call it, or are called by it."""
    out = set(TOPOLOGY[service]) | {s for s, deps in TOPOLOGY.items() if service in deps}
    for deps in TOPOLOGY.values():
        if service in deps:
            out |= set(deps)
    out.discard(service)
    return out


def draw(rng: random.Random, n: int) -> list[Timed]:
    """One storm: 2–3 faults, mostly in neighbouring services, staggered, some returning."""
    services = sorted(TOPOLOGY)
    first = rng.choice([s for s in services if neighbours(s)])
    targets = [first]
    while len(targets) < (3 if rng.random() < 0.35 else 2):
        near = sorted(set().union(*(neighbours(t) for t in targets)) - set(targets))
        pool = near if near and rng.random() < 0.8 else [s for s in services if s not in targets]
        targets.append(rng.choice(pool))
    storm: list[Timed] = []
    start = 0.0
    for i, target in enumerate(targets):
        kind = rng.choice(["crash", "error", "error", "latency", "flap"])
        value = {"crash": 0.0, "error": round(rng.uniform(0.5, 0.9), 2), "latency": round(rng.uniform(0.45, 0.8), 2),
                 "flap": float(rng.choice([6, 8, 10]))}[kind]
        length = rng.uniform(25, 40)
        gap = None
        if kind in ("error", "latency") and rng.random() < 0.3:
            pause = rng.uniform(8, 14)
            gap = (round(start + length * 0.45, 1), round(start + length * 0.45 + pause, 1))
            length += pause
        storm.append(Timed(Fault(f"s{n:02d}-f{i + 1}-{kind}-{target}", target, kind, value),
                           round(start, 1), round(start + length, 1), gap))
        start += rng.uniform(4, 25)
    if rng.random() < 0.4:  # background: a short burst on a service no fault of this storm touches
        touched = set().union(*(set(dependents(t.fault.target)) for t in storm))
        quiet = [s for s in services if s not in touched]
        if quiet:
            at = rng.uniform(5, 30)
            storm.append(Timed(Fault(f"s{n:02d}-bg-error-{(s := rng.choice(quiet))}", s, "error", 0.4),
                               round(at, 1), round(at + rng.uniform(10, 16), 1)))
    return storm


def run_storm(lab: Lab, storm: list[Timed]) -> dict[str, Any]:
    """Run the faults on their schedule (1 s ticks; flapping faults toggle on their half-period)."""
    t0 = time.monotonic()
    began = now_iso()
    active: dict[str, bool] = {t.fault.id: False for t in storm}
    started_at: dict[str, list[str]] = {t.fault.id: [] for t in storm}
    last_toggle: dict[str, float] = {}
    end = max(t.stop for t in storm)
    while (now := time.monotonic() - t0) < end:
        for t in storm:
            want = t.start <= now < t.stop and not (t.gap and t.gap[0] <= now < t.gap[1])
            if want and not active[t.fault.id]:
                lab.begin(t.fault)
                active[t.fault.id] = True
                last_toggle[t.fault.id] = now
                started_at[t.fault.id].append(now_iso())
            elif not want and active[t.fault.id]:
                lab.end(t.fault)
                active[t.fault.id] = False
            elif want and t.fault.kind == "flap" and now - last_toggle[t.fault.id] >= t.fault.value:
                running = lab.procs[t.fault.target][0].running
                (lab.crash if running else lab.revive)(t.fault.target)
                last_toggle[t.fault.id] = now
        time.sleep(0.25)
    for t in storm:
        if active[t.fault.id]:
            lab.end(t.fault)
    return {"started_at": began, "ended_at": now_iso(), "faults": [
        {"id": t.fault.id, "target": t.fault.target, "kind": t.fault.kind, "value": t.fault.value,
         "start_s": t.start, "stop_s": t.stop, "gap_s": t.gap, "began_at": started_at[t.fault.id],
         "affected": dependents(t.fault.target)} for t in storm]}


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def can_raise(fault: dict[str, Any], alertname: str, service: str | None) -> bool:
    """Whether a fault of this kind can raise this alert on this service (see the module docstring)."""
    if alertname == "ServiceDown":
        return fault["kind"] in ("crash", "flap") and fault["target"] == service
    if alertname == "HighLatency":
        return fault["kind"] == "latency"
    return fault["kind"] in ("crash", "flap", "error")


def truth_of(bodies: list[dict[str, Any]], storm: dict[str, Any]) -> list[dict[str, str]]:
    """The ground-truth rule of the module docstring, for one storm's webhook bodies."""
    first: dict[str, dict[str, Any]] = {}
    for body in bodies:
        for alert in body.get("alerts", []):
            fp = alert["fingerprint"]
            if fp not in first or _ts(alert["startsAt"]) < _ts(first[fp]["startsAt"]):
                first[fp] = alert
    faults = storm["faults"]
    holds = {r["alert"]: float(r["for"].rstrip("s")) for r in [*record.RULES, BURN_RULE]}
    rows = []
    for fp, alert in sorted(first.items()):
        service, name = alert["labels"].get("service"), alert["labels"].get("alertname", "")
        matches = [f for f in faults if service in f["affected"] and can_raise(f, name, service)]
        dep = alert["labels"].get("dependency")
        if dep and len(matches) > 1:
            behind = [f for f in matches if dep in f["affected"]]
            matches = behind or matches
        if len(matches) > 1:
            at = _ts(alert["startsAt"]) - holds.get(name, 0.0)
            began = [(max((_ts(b) for b in f["began_at"] if _ts(b) <= at + 1.0), default=None), f) for f in matches]
            before = [(b, f) for b, f in began if b is not None]
            matches = [max(before, key=lambda bf: bf[0])[1]] if before else [min(
                matches, key=lambda f: _ts(f["began_at"][0]) if f["began_at"] else float("inf"))]
        group = matches[0]["id"] if matches else f"unexplained:{fp}"
        rows.append({"fingerprint": fp, "group": group})
    return rows


def retruth(directory: Path) -> None:
    """Rewrite ``storm-NN.truth.jsonl`` of a recording from its bodies and ``storms.json``."""
    for storm in json.loads((directory / "storms.json").read_text())["storms"]:
        n = storm["storm"]
        bodies = [json.loads(line) for line in (directory / f"storm-{n:02d}.jsonl").read_text().splitlines()]
        truth = truth_of(bodies, storm)
        (directory / f"storm-{n:02d}.truth.jsonl").write_text("".join(json.dumps(r) + "\n" for r in truth))
        log(f"storm {n}: {len(truth)} alerts, {len({r['group'] for r in truth})} groups")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=record.ROOT / "benchmarks" / "data" / "storms_lab")
    parser.add_argument("--storms", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--retruth", type=Path, help="recompute the truth files of a recording in DIR and exit")
    args = parser.parse_args()
    if args.retruth:
        retruth(args.retruth)
        return
    rng = random.Random(args.seed)
    plans = [draw(rng, n) for n in range(1, args.storms + 1)]
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="correlation-campaign-"))
    webhooks = workdir / "webhooks.jsonl"
    record.RULES.append(BURN_RULE)
    t0, began = time.monotonic(), now_iso()
    storms: list[dict[str, Any]] = []
    with Recorder(webhooks) as recorder, Servers() as servers:
        lab = Lab(servers, workdir, args.replicas)
        try:
            lab.boot(recorder.url, quiet_timeout=180)
            for n, plan in enumerate(plans, start=1):
                lab.set_epoch(n)
                log(f"storm {n}/{len(plans)}: " + "; ".join(
                    f"{t.fault.kind} {t.fault.target} @{t.start:.0f}–{t.stop:.0f}s" for t in plan))
                storms.append({"storm": n, "epoch": n, **run_storm(lab, plan)})
                lab.wait_quiet(timeout=180)
        finally:
            lab.stop_load_threads()
    by_epoch: dict[int, list[dict[str, Any]]] = {}
    with webhooks.open("rb") as fh:
        for line in fh:
            body = json.loads(line)
            epochs = {int(a["labels"].get("epoch", "0")) for a in body.get("alerts", [])}
            for e in epochs:  # Alertmanager groups by (alertname, service): one epoch per body in practice
                by_epoch.setdefault(e, []).append(
                    {**body, "alerts": [a for a in body["alerts"] if int(a["labels"].get("epoch", "0")) == e]})
    for storm in storms:
        n = storm["storm"]
        bodies = by_epoch.get(n, [])
        (args.out / f"storm-{n:02d}.jsonl").write_text("".join(json.dumps(b, separators=(",", ":")) + "\n"
                                                                for b in bodies))
        truth = truth_of(bodies, storm)
        (args.out / f"storm-{n:02d}.truth.jsonl").write_text("".join(json.dumps(r) + "\n" for r in truth))
        storm["alerts"] = len(truth)
        storm["groups"] = len({r["group"] for r in truth})
    half = args.storms // 2
    graph = {s: list(d) for s, d in TOPOLOGY.items()}
    (args.out / "graph.yaml").write_text(yaml.safe_dump(graph, default_flow_style=None, sort_keys=False))
    (args.out / "manifest.json").write_text(json.dumps({
        "split": {"lab-tuning": list(range(1, half + 1)), "lab-held-out": list(range(half + 1, args.storms + 1))},
        "graph": graph, "seed": args.seed}, indent=1) + "\n")
    meta = {"recorded_at": began, "finished_at": now_iso(), "wall_seconds": round(time.monotonic() - t0),
            "seed": args.seed, "replicas": args.replicas, "webhooks": recorder.count,
            "prometheus": record.binary_version(record.PROMETHEUS),
            "alertmanager": record.binary_version(record.ALERTMANAGER), "rules": record.RULES}
    (args.out / "storms.json").write_text(json.dumps({"meta": meta, "storms": storms}, indent=1) + "\n")
    log(f"{recorder.count} webhooks in {meta['wall_seconds']} s; per storm alerts/groups: "
        + ", ".join(f"{s['storm']}:{s['alerts']}/{s['groups']}" for s in storms))
    with contextlib.suppress(OSError):
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
