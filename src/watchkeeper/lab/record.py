"""Recorded campaigns: the metrics format (``metrics/<service>.csv``, one wide row per scrape) and
:func:`record_campaign` (``watchkeeper lab record``), which records every signal of a lab run.

``timestamp,request_rate,error_ratio,latency_p90_s,cpu_rate,rss_bytes,disk_used_ratio,up`` with
``timestamp`` in unix seconds and ``nan`` where a value is missing (a service that is down has
only ``up`` = 0). ``eval rca --format lab`` reads it next to the lab's ``faults.jsonl``,
``topology.json`` and ``changes.jsonl``.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The derived per-service metrics, in CSV column order.
COLUMNS = ("request_rate", "error_ratio", "latency_p90_s", "cpu_rate", "rss_bytes", "disk_used_ratio", "up")
HEADER = "timestamp," + ",".join(COLUMNS) + "\n"


def format_row(t: float, values: Mapping[str, float]) -> str:
    """One CSV line; a missing or NaN value is written ``nan``.

    >>> format_row(1700000000.5, {"request_rate": 19.75, "up": 1.0})
    '1700000000.500,19.75,nan,nan,nan,nan,nan,1\\n'
    """
    cells = [f"{t:.3f}"]
    for name in COLUMNS:
        v = values.get(name, math.nan)
        cells.append("nan" if math.isnan(v) else f"{v:.6g}" if name != "rss_bytes" else f"{v:.0f}")
    return ",".join(cells) + "\n"


class Recorder:
    """Append each scrape's derived values to ``<dir>/metrics/<service>.csv`` (header written once).

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> r = Recorder(d)
    >>> r.write(10.0, {"api": {"up": 0.0}})
    >>> print((d / "metrics" / "api.csv").read_text(), end="")
    timestamp,request_rate,error_ratio,latency_p90_s,cpu_rate,rss_bytes,disk_used_ratio,up
    10.000,nan,nan,nan,nan,nan,nan,0
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory) / "metrics"

    def path(self, service: str) -> Path:
        if not service or "/" in service or service.startswith("."):
            raise ValueError(f"not a usable service name for a file: {service!r}")
        return self.directory / f"{service}.csv"

    def write(self, t: float, values: Mapping[str, Mapping[str, float]]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for service, metrics in values.items():
            path = self.path(service)
            new = not path.exists() or path.stat().st_size == 0
            with path.open("a", encoding="utf-8") as fh:
                if new:
                    fh.write(HEADER)
                fh.write(format_row(t, metrics))


# -- recording a campaign ------------------------------------------------------------------------
#: A default campaign of the code-level faults (and three others for contrast), two at a time, each
#: pair on the two branches of the lab (checkout/payment and catalog/store; cache serves both).
DEFAULT_CAMPAIGN = ("exception:checkout,wrong_value:store,"
                    "edge_delay:payment:from=checkout,exception:catalog,"
                    "wrong_value:payment,edge_delay:store:from=catalog,"
                    "exception:store,edge_delay:cache:from=checkout,"
                    "wrong_value:cache,cpu_hog:payment,"
                    "hang:store,error_burst:payment")


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One fault of a campaign: ``KIND:TARGET[:KEY=VALUE...]`` (a value is a number when it reads as one).

    >>> FaultSpec.parse("edge_delay:payment:from=checkout:delay_ms=300")
    FaultSpec(kind='edge_delay', target='payment', params={'from': 'checkout', 'delay_ms': 300.0})
    """

    kind: str
    target: str
    params: dict[str, Any]

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        parts = text.strip().split(":")
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise ValueError(f"a fault is KIND:TARGET[:KEY=VALUE...], not {text!r}")
        params: dict[str, Any] = {}
        for item in parts[2:]:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ValueError(f"{text!r}: a parameter is KEY=VALUE, not {item!r}")
            params[key] = number_or_text(value)
        return cls(parts[0], parts[1], params)


def number_or_text(value: str) -> float | str:
    """``"3"`` → 3.0, ``"checkout"`` → ``"checkout"``."""
    try:
        return float(value)
    except ValueError:
        return value


def parse_campaign(text: str) -> list[FaultSpec]:
    return [FaultSpec.parse(part) for part in text.split(",") if part.strip()]


@dataclass(frozen=True, slots=True)
class CampaignTiming:
    """Seconds: healthy traffic first, each fault's duration, the healthy gap after each group, and
    how many faults run at once (on different services)."""

    warmup: float = 40.0
    fault: float = 30.0
    gap: float = 20.0
    concurrent: int = 2
    interval: float = 2.0


def record_campaign(
    out: Path, faults: Sequence[FaultSpec], timing: CampaignTiming = CampaignTiming(), *, rps: float = 20.0,
    progress: Callable[[str], None] | None = None,
    topology: tuple[Sequence[str], Sequence[Sequence[str]]] | None = None,
) -> dict[str, Any]:
    """Run a lab with every signal on and record a campaign into ``out`` for ``watchkeeper eval rca
    --format lab``: ``metrics/<service>.csv`` (scraped every ``interval``), ``spans.jsonl`` (every span
    the services exported, through a local OTLP receiver), ``logs/<service>.log`` (the services' JSON
    logs), ``faults.jsonl`` (ground truth), ``topology.json`` and ``changes.jsonl``. Faults run in
    groups of ``concurrent`` (overlapping: started together, each ending by itself after
    ``timing.fault`` s; a crash is restarted then). ``topology``: ``(services, edges)`` instead of the
    lab's own (an unseen system for the ranker; see :func:`watchkeeper.lab.control.check_topology`).
    Returns a summary."""
    from watchkeeper.lab.control import EDGES, SERVICES, Lab, LabError, check_topology
    from watchkeeper.lab.signals import Scraper
    from watchkeeper.lab.spans import SpanSink

    say = progress or (lambda _msg: None)
    services, edges = check_topology(*(topology or (SERVICES, EDGES)))
    for spec in faults:
        if spec.target not in services:
            raise LabError(f"{spec.kind}:{spec.target}: the lab has no service {spec.target} "
                           f"(its services: {', '.join(services)})")
        if spec.kind == "crash" and spec.params:
            raise ValueError("a crash takes no parameters")
    groups = [list(faults[i:i + timing.concurrent]) for i in range(0, len(faults), max(1, timing.concurrent))]
    for group in groups:
        targets = [f.target for f in group]
        if len(set(targets)) != len(targets):
            raise ValueError(f"faults that run at once need different targets: {', '.join(targets)}")
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("spans.jsonl", "faults.jsonl", "changes.jsonl"):
        (out / stale).unlink(missing_ok=True)
    shutil.rmtree(out / "metrics", ignore_errors=True)
    shutil.rmtree(out / "logs", ignore_errors=True)
    workdir = Path(tempfile.mkdtemp(prefix="watchkeeper-lab-record-"))
    sink = SpanSink(out / "spans.jsonl").start()
    lab = Lab(workdir / "lab")
    stop = threading.Event()
    started = time.time()
    try:
        say(f"starting the lab (spans to {sink.url})")
        lab.up(rps=rps, monitoring=False, otlp_endpoint=sink.url, services=services, edges=edges)
        scraper, recorder = Scraper.from_lab(lab.dir), Recorder(out)

        def scrape() -> None:
            try:
                while not stop.is_set():
                    now = time.time()
                    recorder.write(now, scraper.scrape(now))
                    stop.wait(max(0.0, timing.interval - (time.time() - now)))
            finally:
                scraper.close()

        thread = threading.Thread(target=scrape, name="campaign-recorder", daemon=True)
        thread.start()
        say(f"warm-up: {timing.warmup:g}s of healthy traffic")
        stop.wait(timing.warmup)
        for n, group in enumerate(groups, 1):
            say(f"group {n}/{len(groups)}: " + ", ".join(f"{f.kind} on {f.target}" for f in group))
            for spec in group:
                lab.inject(spec.kind, spec.target, None if spec.kind == "crash" else timing.fault, **spec.params)
            stop.wait(timing.fault)
            grace = time.monotonic() + 5.0  # the services' expiry threads look every 0.2 s
            while time.monotonic() < grace and any(
                    f["fault"] != "crash" for s in group for f in lab.open_faults(s.target)):
                stop.wait(0.2)
            for spec in group:  # what did not end by itself (a crash; an expiry the service missed)
                if lab.open_faults(spec.target):
                    lab.repair(spec.target)
            stop.wait(timing.gap)
        stop.set()
        thread.join(timeout=30)
    finally:
        stop.set()
        lab.export_ground_truth(out)
        lab.down()
        time.sleep(1.5)  # the services' last span batches
        sink.stop()
        (out / "logs").mkdir(exist_ok=True)
        for log in sorted((lab.dir / "logs").glob("*.log")):
            shutil.copyfile(log, out / "logs" / log.name)
        shutil.rmtree(workdir, ignore_errors=True)
    summary = {"dir": str(out), "faults": len(faults), "groups": len(groups), "spans": sink.received,
               "seconds": round(time.time() - started, 1)}
    say(f"recorded {summary['faults']} faults and {summary['spans']} spans in {summary['seconds']}s: {out}")
    return summary
