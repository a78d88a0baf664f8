"""The demo's live terminal view, drawn from the server's API alone: open incidents with their
ranked cause, what governance decided and did, requests waiting for a human, and each fault's
outcome so far."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from watchkeeper.demo.closed_loop import Observer, Outcome


def _fmt(value: float | None, unit: str = "", scale: float = 1.0, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value * scale:.{digits}f}{unit}"


def kpi_line(kpis: Mapping[str, Any], audit: str) -> str:
    """The KPIs' means (MTTA, MTTR) and the audit's verdict, as the demo's last line.

    >>> kpi_line({"mtta": {"mean": 28.399933}, "mttr": {}, "incidents": 8}, "OK")
    'KPIs: MTTA 28.4 s, MTTR – over 8 incidents · audit: OK'
    """
    def mean(name: str) -> str:
        return _fmt((kpis.get(name) or {}).get("mean"), " s")

    return f"KPIs: MTTA {mean('mtta')}, MTTR {mean('mttr')} over {kpis.get('incidents')} incidents · audit: {audit}"


def incidents_table(observer: Observer) -> Table:
    table = Table("id", "status", "services", "alerts", "top cause (confidence)", "decision", "action",
                  title="incidents (GET /api/v1/incidents)", expand=True)
    for incident in observer.api.incidents(limit=6):
        detail = observer.api.incident(incident["id"])
        cause = detail["causes"][0] if detail.get("causes") else None
        decision = detail["decisions"][-1] if detail.get("decisions") else None
        action = detail["actions"][-1] if detail.get("actions") else None
        table.add_row(
            str(incident["id"]), incident["status"], ",".join(incident["services"]), str(incident["alert_count"]),
            f"{cause['component']} ({cause['confidence']:.2f})" if cause else "–",
            f"{decision['runbook_id']}: {decision['verdict']}" if decision else "–",
            f"{action['runbook_id']}: {action['status']}" if action else "–",
        )
    return table


def outcomes_table(outcomes: list[Outcome], blind: bool = False) -> Table:
    """``blind``: a fault still open shows neither its kind, its target nor whether the top cause is
    right (someone is fixing it by hand and must find out as on call)."""
    table = Table("fault", "target", "detected", "top cause", "action", "resolved", "MTTR", title="faults",
                  expand=True)
    for o in outcomes:
        hide = blind and not o.resolved
        style = "" if hide else "green" if o.cause_correct else "red"
        table.add_row(
            "?" if hide else o.fault, "?" if hide else o.target,
            f"after {o.detected_after_s:.0f}s" if o.detected_after_s is not None else "…",
            Text(f"{o.top_cause} ({o.confidence:.2f})", style=style) if o.top_cause else Text("…"),
            o.action or "…", "yes" if o.resolved else "…", _fmt(o.mttr_s, " s", 1, 0),
        )
    return table


def render(phase: str, observer: Observer | None, outcomes: list[Outcome], approve_hint: str,
           blind: bool = False) -> Any:
    parts: list[Any] = [Text(f"▶ {phase}", style="bold cyan")]
    if observer is not None:
        parts.append(incidents_table(observer))
        pending = observer.api.approvals("pending")
        if pending:
            lines = [f"approval {p['id']}: {p['runbook_id']} on incident {p['incident_id']} — "
                     f"{approve_hint.format(id=p['id'])}" for p in pending]
            parts.append(Panel("\n".join(lines), title="waiting for a human", style="yellow"))
    if outcomes:
        parts.append(outcomes_table(outcomes, blind))
    return Group(*parts)


def summary_table(outcomes: list[Outcome], totals: Mapping[str, Any]) -> Group:
    table = Table("fault", "target", "detected after", "top cause", "right?", "action", "mode", "MTTR",
                  title="what happened to each fault")
    for o in outcomes:
        table.add_row(o.fault, o.target, _fmt(o.detected_after_s, " s", 1, 0) if o.detected else "missed",
                      f"{o.top_cause} ({o.confidence:.2f})" if o.top_cause else "–",
                      "yes" if o.cause_correct else "no", o.action or "–", o.mode or "–",
                      _fmt(o.mttr_s, " s", 1, 0) if o.resolved else "unresolved")
    line = Text(f"{totals['detected']}/{totals['faults']} detected · top-1 {totals['top1']} · "
                f"{totals['resolved']} resolved · mean time to detect {totals['mean_detected_after_s']} s · "
                f"mean MTTR {totals['mean_mttr_s']} s", style="bold")
    return Group(table, line)
