"""The self-scrape path on the real lab: quiet while healthy; five faults at once, on five services,
each seen on its target by its SLO rule (within 30 s on a quiet machine with 2 s scrapes; the waits
allow three times that for a loaded CI machine, and end as soon as the condition holds); resolved after the repair."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchkeeper.lab import Lab
from watchkeeper.lab.record import COLUMNS, Recorder
from watchkeeper.lab.signals import Monitor, Scraper
from watchkeeper.model import Event, Status

INTERVAL = 2.0
#: fault -> (target, the rule that must fire on the target). Each signal is the target's own: the
#: others' faults only reach their callers (frontend, checkout, catalog) as errors and latency.
PLAN = {
    "crash": ("payment", "ServiceDown"),
    "hang": ("store", "HighLatency"),
    "error_burst": ("cache", "HighErrorRatio"),
    "memory_leak": ("catalog", "MemoryGrowing"),
    "disk_fill": ("checkout", "DiskAlmostFull"),
}


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    the_lab = Lab(tmp_path / "lab")
    the_lab.up(rps=20, capacity_mb=8)
    try:
        yield the_lab
    finally:
        the_lab.down()


def run(monitor: Monitor, seconds: float, until: object = None) -> list[Event]:
    """Step every INTERVAL (on a fixed grid) for ``seconds`` or until ``until(events)`` is true."""
    events: list[Event] = []
    tick = time.time()
    end = tick + seconds
    while time.time() < end:
        time.sleep(max(0.0, tick - time.time()))
        tick += INTERVAL
        events += monitor.step(time.time())
        if callable(until) and until(events):
            break
    return events


def test_real_lab_faults_are_seen_on_their_targets_and_resolve(lab: Lab) -> None:
    monitor = Monitor(Scraper.from_lab(lab.dir), recorder=Recorder(lab.dir))
    try:
        check(lab, monitor)
    finally:
        monitor.close()


def check(lab: Lab, monitor: Monitor) -> None:
    quiet = run(monitor, 24.0)
    assert quiet == [], [(e.service, e.name, e.summary) for e in quiet]

    for kind, (target, _) in PLAN.items():
        lab.inject(kind, target)
    wanted = {(target, rule) for target, rule in PLAN.values()}

    def seen(events: list[Event]) -> set[tuple[str, str]]:
        return {(e.service, e.name) for e in events if e.status is Status.FIRING} & wanted

    events = run(monitor, 90.0, lambda evs: seen(evs) == wanted)
    assert seen(events) == wanted, sorted((e.service, e.name) for e in events)
    by_rule = {(e.service, e.name): e for e in events if e.status is Status.FIRING}
    assert by_rule[("payment", "ServiceDown")].labels["severity"] == "critical"
    assert by_rule[("checkout", "DiskAlmostFull")].raw["observed"] > 0.9

    for target, _ in PLAN.values():
        lab.repair(target)
    run(monitor, 120.0, lambda _evs: not monitor.firing())
    assert monitor.firing() == []

    rows = (lab.dir / "metrics" / "payment.csv").read_text().splitlines()
    assert rows[0] == "timestamp," + ",".join(COLUMNS)
    assert any(r.endswith(",0") for r in rows[1:]) and rows[-1].endswith(",1")  # down, then back up
