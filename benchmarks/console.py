"""Console server-side render time with 10,000 incidents and 100,000 alerts stored, on SQLite and
PostgreSQL: the incident list (first page, a deep keyset page, a filtered page), an incident's
detail, and a status change (acknowledge) — p50/p95 in milliseconds, each next to a baseline
measured in the same run: the API's JSON for the same data (the same service calls, no HTML).

    .venv/bin/python benchmarks/console.py                 # SQLite and PostgreSQL, a few minutes
    .venv/bin/python benchmarks/console.py --no-postgres --requests 50

Requests go through the whole ASGI app in process (FastAPI's TestClient: routing, the session
lookup, CSRF check, rendering), as a signed-in admin; no network. Figures only: nothing is
asserted. The issue's targets: list and detail <= 200 ms p95, a status change <= 500 ms.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import insert

from watchkeeper import logconfig
from watchkeeper.model import Change
from watchkeeper.server import create_app
from watchkeeper.server.console.accounts import Accounts
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.settings import Settings
from watchkeeper.storage import audit
from watchkeeper.storage.tables import alerts, incident_alerts, incident_services, incidents

PG = "postgresql://postgres@127.0.0.1:5432/test"
SERVICES = [f"svc-{n:02d}" for n in range(40)]
SEVERITIES = ["critical", "warning", "info"]


def populate(wk: Watchkeeper, n_incidents: int, n_alerts: int, seed: int = 7) -> None:
    """Bulk-write incidents, their alerts and memberships, and an audit record per incident."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    per = n_alerts // n_incidents
    with wk.db.write() as conn:
        inc_rows, svc_rows, alert_rows, member_rows, changes = [], [], [], [], []
        for i in range(1, n_incidents + 1):
            opened = start + timedelta(minutes=3 * i)
            service = SERVICES[i % len(SERVICES)]
            status = "resolved" if i < n_incidents * 0.9 else "open"
            resolved = opened + timedelta(minutes=rng.randint(5, 90)) if status == "resolved" else None
            acked = opened + timedelta(minutes=rng.randint(1, 5)) if status != "open" else None
            inc_rows.append({
                "id": i, "title": f"{service} HighLatency", "status": status, "severity": SEVERITIES[i % 3],
                "services": [service], "opened_at": opened, "last_activity_at": resolved or opened,
                "acknowledged_at": acked, "mitigated_at": None, "resolved_at": resolved,
                "firing_count": 0 if resolved else per, "alert_count": per, "assignee": None, "started_at": opened,
                "first_acknowledged_at": acked, "first_mitigated_at": None})
            svc_rows.append({"incident_id": i, "service": service})
            for k in range(per):
                fp = f"{i:06d}-{k:02d}"
                alert_rows.append({
                    "fingerprint": fp, "source": "alertmanager", "name": f"Alert{k}", "service": service,
                    "resource": f"{service}-{k}:9100", "severity": SEVERITIES[i % 3],
                    "status": "resolved" if resolved else "firing",
                    "labels": {"alertname": f"Alert{k}", "service": service, "instance": f"{service}-{k}:9100"},
                    "summary": f"{service} alert {k}", "first_seen": opened, "last_seen": resolved or opened,
                    "count": 1, "resolved_at": resolved, "incident_id": i, "join_reason": "labels", "held": None,
                    "changes": None})
                member_rows.append({"incident_id": i, "fingerprint": fp, "joined_at": opened, "reason": "labels",
                                    "detail": f"same service={service}"})
            changes.append(Change("incident.opened", f"incident:{i}", opened, {"id": i, "reason": "new"}))
            if resolved:
                changes.append(Change("incident.resolved", f"incident:{i}", resolved, {"id": i}))
        for table, rows in ((incidents, inc_rows), (incident_services, svc_rows), (alerts, alert_rows),
                            (incident_alerts, member_rows)):
            for n in range(0, len(rows), 5000):
                conn.execute(insert(table), rows[n:n + 5000])
        for n in range(0, len(changes), 5000):
            audit.append(conn, "bench", changes[n:n + 5000])


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 20 else max(values)


@contextmanager
def postgres_url() -> Iterator[str | None]:
    try:
        with psycopg.connect(PG, connect_timeout=3, autocommit=True) as conn:
            schema = f"wk_bench_{uuid.uuid4().hex[:10]}"
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.Error as exc:
        print(f"note: PostgreSQL not reachable at {PG} ({str(exc).splitlines()[0]}): its figures are skipped")
        yield None
        return
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def run(label: str, url: str, args: argparse.Namespace) -> None:
    wk = Watchkeeper(Settings(database_url=url, console={"secure_cookies": False}),  # type: ignore[arg-type]
                     metrics=False)
    wk.upgrade()
    t0 = time.perf_counter()
    populate(wk, args.incidents, args.alerts)
    print(f"\n{label}: {args.incidents:,} incidents, {args.alerts:,} alerts written in "
          f"{time.perf_counter() - t0:.0f} s")
    Accounts(wk.db, wk.clock, wk.settings.console, PasswordHasher(time_cost=1, memory_cost=1024)).create(
        "bench", Role.ADMIN, "bench password 123", "bench")
    token = wk.create_token(Role.ADMIN, "bench", "bench")
    api = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    app = create_app(wk, upgrade=False, responder=False, watch=False, rank=False)
    rng = random.Random(1)
    with TestClient(app, headers={"Accept": "text/html"}) as c:
        page = c.get("/console/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        assert c.post("/console/login", data={"csrf": csrf, "username": "bench", "password": "bench password 123"},
                      follow_redirects=False).status_code == 303
        csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/console/incidents").text).group(1)  # type: ignore[union-attr]
        n = args.requests
        deep = args.incidents // 2
        ids = [rng.randint(1, args.incidents) for _ in range(n)]
        open_ids = iter(range(int(args.incidents * 0.9) + 1, args.incidents + 1))
        api_open = iter(reversed(range(int(args.incidents * 0.9) + 1, args.incidents + 1)))
        rows: list[tuple[str, list[float], list[float]]] = []

        def ok(r: Any) -> None:
            assert r.status_code in (200, 303), (r.status_code, r.text[:300])

        rows.append(("incident list, first page (50)",
                     timed(lambda: ok(c.get("/console/incidents")), n),
                     timed(lambda: ok(c.get("/api/v1/incidents?limit=50", headers=api)), n)))
        rows.append((f"incident list, keyset page at id {deep:,}",
                     timed(lambda: ok(c.get(f"/console/incidents?before={deep}")), n),
                     timed(lambda: ok(c.get(f"/api/v1/incidents?limit=50&offset={args.incidents - deep}",
                                            headers=api)), n)))
        rows.append(("incident list, service + status filter",
                     timed(lambda: ok(c.get("/console/incidents?service=svc-07&status=resolved")), n),
                     timed(lambda: ok(c.get("/api/v1/incidents?service=svc-07&status=resolved&limit=50",
                                            headers=api)), n)))
        it = iter(ids)
        it2 = iter(ids)
        rows.append(("incident detail (10 alerts)",
                     timed(lambda: ok(c.get(f"/console/incidents/{next(it)}")), n),
                     timed(lambda: ok(c.get(f"/api/v1/incidents/{next(it2)}", headers=api)), n)))
        m = min(n, (args.incidents - int(args.incidents * 0.9)) // 2)
        rows.append(("status change (acknowledge: POST -> 303)",
                     timed(lambda: ok(c.post(f"/console/incidents/{next(open_ids)}/acknowledge",
                                             data={"csrf": csrf}, follow_redirects=False)), m),
                     timed(lambda: ok(c.post(f"/api/v1/incidents/{next(api_open)}/acknowledge", headers=api)), m)))
    wk.close()
    print(f"{'':46} {'console p50':>11} {'p95':>8}   {'API p50':>8} {'p95':>8}   p95 ratio")
    for name, console, baseline in rows:
        print(f"{name:46} {statistics.median(console):9.1f}ms {p95(console):6.1f}ms   "
              f"{statistics.median(baseline):6.1f}ms {p95(baseline):6.1f}ms   {p95(console) / p95(baseline):5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="requests per measured figure")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    logconfig.configure("error")  # no access-log line per request
    with tempfile.TemporaryDirectory() as tmp:
        run("SQLite", f"sqlite:///{Path(tmp) / 'wk.db'}", args)
    if not args.no_postgres:
        with postgres_url() as url:
            if url is not None:
                run("PostgreSQL", url, args)


if __name__ == "__main__":
    main()
