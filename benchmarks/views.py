"""The incident list as the API builds it: what the typed answers (``watchkeeper.views``) cost
next to the dict rows they replaced, measured in the same run on the same rows read from SQLite.

    .venv/bin/python benchmarks/views.py            # about 30 s

Per call of ``GET /api/v1/incidents?limit=N`` minus HTTP and JSON encoding, best of 7 runs: the
storage reads (what every version does, for scale); the baseline, building the old
``dict[str, Any]`` rows from those reads; the typed values (``IncidentSummary.of``); and the typed
values plus ``as_dict()`` (what the server now sends). The last two as ratios to the baseline.
"""

from __future__ import annotations

import argparse
import tempfile
import timeit
from pathlib import Path
from typing import Any

import orjson

from watchkeeper.model import Incident
from watchkeeper.service import Watchkeeper
from watchkeeper.settings import Settings
from watchkeeper.storage import governance as gov_store
from watchkeeper.storage import queries
from watchkeeper.views import IncidentSummary


def per_call(fn: object, number: int, repeat: int = 7) -> float:
    """Best of ``repeat`` runs, in milliseconds per call (the machine is shared)."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e3  # type: ignore[arg-type]


def old_incident_view(incident: Incident, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """The dict row ``service.incident_view`` built before the typed views (copied here as the baseline)."""
    return {
        "id": incident.id, "title": incident.title, "status": incident.status.value,
        "severity": incident.severity.value, "services": incident.services,
        "opened_at": incident.opened_at, "acknowledged_at": incident.acknowledged_at,
        "mitigated_at": incident.mitigated_at, "resolved_at": incident.resolved_at,
        "started_at": incident.started_at, "first_acknowledged_at": incident.first_acknowledged_at,
        "first_mitigated_at": incident.first_mitigated_at,
        "last_activity_at": incident.last_activity_at, "assignee": incident.assignee,
        "firing_alerts": incident.firing_count, "alert_count": incident.alert_count,
        "alerts": alerts,
    }


def seed(wk: Watchkeeper, incidents: int, alerts: int) -> None:
    """``incidents`` incidents (one service each) of ``alerts`` alerts, sent as generic events."""
    for i in range(incidents):
        batch = [{"summary": f"svc-{i} alert {a}", "service": f"svc-{i}", "name": f"A{a}", "fingerprint": f"{i}-{a}"}
                 for a in range(alerts)]
        wk.ingest("events", orjson.dumps(batch), "application/json", "bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--incidents", type=int, default=500, help="incidents listed per call")
    parser.add_argument("--alerts", type=int, default=5, help="alerts per incident")
    parser.add_argument("--calls", type=int, default=5, help="calls per timing run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wk = Watchkeeper(Settings(database_url=f"sqlite:///{Path(tmp) / 'wk.db'}"), metrics=False)
        wk.upgrade()
        seed(wk, args.incidents, args.alerts)
        limit = args.incidents

        def reads() -> tuple[list[Incident], dict[int, list[dict[str, Any]]], dict[int, list[dict[str, Any]]]]:
            with wk.db.read() as conn:
                found = queries.list_incidents(conn, status=None, service=None, since=None, limit=limit, offset=0)
                members = queries.incident_alerts_of(conn, [i.id for i in found])
                causes = gov_store.top_causes_of(conn, [i.id for i in found])
            return found, members, causes

        rows = reads()

        def dict_rows() -> list[dict[str, Any]]:
            found, members, causes = rows
            return [{**old_incident_view(i, members[i.id]), "causes": causes[i.id]} for i in found]

        def typed() -> list[IncidentSummary]:
            found, members, causes = rows
            return [IncidentSummary.of(i, members[i.id], causes[i.id]) for i in found]

        def typed_dicts() -> list[dict[str, Any]]:
            return [i.as_dict() for i in typed()]

        assert len(dict_rows()) == args.incidents, "the seed should open one incident per service"
        assert orjson.dumps(dict_rows(), option=orjson.OPT_UTC_Z) == orjson.dumps(typed_dicts(),
                                                                                   option=orjson.OPT_UTC_Z)
        assert typed() == wk.incidents(limit=limit)
        read = per_call(reads, args.calls)
        baseline = per_call(dict_rows, args.calls * 20)
        values = per_call(typed, args.calls * 20)
        sent = per_call(typed_dicts, args.calls * 20)
        wk.close()
    label = f"{args.incidents} incidents × {args.alerts} alerts"
    print(f"{'storage reads, ' + label + ' (for scale)':52} {read:8.2f} ms/call")
    print(f"{'baseline: dict rows (before)':52} {baseline:8.2f} ms/call")
    print(f"{'typed values (IncidentSummary.of)':52} {values:8.2f} ms/call  ({values / baseline:.1f}x baseline)")
    print(f"{'typed values + as_dict() (what the server sends)':52} {sent:8.2f} ms/call  "
          f"({sent / baseline:.1f}x baseline; +{sent - baseline:.2f} ms, {(sent - baseline) / read:.0%} of the reads)")

if __name__ == "__main__":
    main()
