"""The root-cause ranker's log evidence in ``serve`` (``ranking.LogSource``), read from the stored
per-minute template counts the log inputs write (docs/logs.md, docs/rca.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from watchkeeper import rca
from watchkeeper.logs.anomaly import LogAnomaly
from watchkeeper.service.logs import LogIngest


class RankerLogs:
    """The root-cause ranker's log evidence (``ranking.LogSource``) from the stored per-minute counts:
    per service, its strongest log anomaly's z as the score, with the templates that gave it (reason,
    id, text, count against the expected) and the minute the first one began."""

    def __init__(self, logs: LogIngest, limit: int = 5) -> None:
        self.logs, self.limit = logs, limit

    def anomalies(self, services: Sequence[str], start: float, end: float) -> dict[str, rca.LogAnomaly]:
        found: dict[str, rca.LogAnomaly] = {}
        begin, finish = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
        for service in services:
            all_of = self.logs.log_anomalies(service, begin, finish)
            if not all_of:
                continue
            best: dict[tuple[str, str], LogAnomaly] = {}  # each (reason, template) once, at its strongest minute
            for a in all_of:
                key = (a.reason, a.template_id)
                if key not in best or a.z > best[key].z:
                    best[key] = a
            these = sorted(best.values(), key=lambda a: (-a.z, a.minute))
            texts = {t["template_id"]: t["template"] for t in self.logs.store.templates(service=service)}
            templates = tuple({"template_id": a.template_id,
                               "template": texts.get(a.template_id, "") if a.template_id else "(all error lines)",
                               "reason": a.reason, "count": a.count, "expected": round(a.expected, 3),
                               "z": round(a.z, 3), "minute": a.minute.isoformat()} for a in these[:self.limit])
            all_of = these
            found[service] = rca.LogAnomaly(score=these[0].z, templates=templates,
                                            first_at=min(a.minute for a in all_of).timestamp())
        return found
