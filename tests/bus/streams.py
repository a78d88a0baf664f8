"""A deterministic alert stream for the bus tests and what a single-process replay makes of it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from sqlalchemy import text

from watchkeeper.model import Event
from watchkeeper.pipeline import Pipeline, State
from watchkeeper.service import Watchkeeper

Grouping = frozenset[frozenset[str]]


def bodies(n: int, services: int = 12, per_body: int = 5) -> Iterator[dict[str, Any]]:
    """``n`` request bodies of ``per_body`` events each, over ``services`` services; each
    fingerprint fires a few times (repeats count), some resolve."""
    for i in range(n):
        events = []
        for j in range(per_body):
            k = i * per_body + j
            svc = f"svc{k % services}"
            fp = f"{svc}-alert{(k // services) % 4}"
            status = "resolved" if k % 17 == 16 else "firing"
            events.append({"service": svc, "name": fp.split("-")[1], "summary": f"{fp} is bad",
                           "fingerprint": fp, "status": status, "severity": "warning"})
        yield {"events": events}


def grouping_of(service: Watchkeeper) -> Grouping:
    """Incidents as sets of alert fingerprints (ids differ between runs; membership must not)."""
    with service.db.read() as conn:
        rows = conn.execute(text("SELECT incident_id, fingerprint FROM incident_alerts")).all()
    found: dict[int, set[str]] = {}
    for incident, fp in rows:
        found.setdefault(int(incident), set()).add(str(fp))
    return frozenset(frozenset(v) for v in found.values())


def replay(service: Watchkeeper, events: list[Event]) -> tuple[Grouping, dict[str, int]]:
    """The same events through the same Pipeline in one process, in memory: the grouping and
    each alert's count."""
    ids = itertools.count(1)
    state = State()
    pipeline = Pipeline(service.config, lambda: next(ids))
    pipeline.observe_all(events, state)
    found: dict[int, set[str]] = {}
    for m in state.memberships:
        found.setdefault(m.incident_id, set()).add(m.fingerprint)
    return frozenset(frozenset(v) for v in found.values()), {fp: a.count for fp, a in state.alerts.items()}


def counts_of(service: Watchkeeper) -> dict[str, int]:
    with service.db.read() as conn:
        return {str(fp): int(c) for fp, c in conn.execute(text("SELECT fingerprint, count FROM alerts")).all()}


def events_stored(service: Watchkeeper) -> int:
    with service.db.read() as conn:
        return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())
