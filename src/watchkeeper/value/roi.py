"""ROI of the AIOps programme: a baseline from an ITSM export, the current state from
Watchkeeper's own data, benefits and costs with the source of every input, payback, and a
sensitivity table for the assumptions a CFO will question.

Benefits per month:

* triage hours saved: alerts that no longer page a human (alerts − incidents) × triage minutes;
* incident hours saved: (baseline MTTR − current MTTR) × incidents × responders;
* both × the loaded hourly cost, plus downtime avoided: (baseline − current MTTR) × incidents ×
  the share of incident time that is customer-facing downtime × the cost per downtime minute.

Costs: platform and people per month, plus a one-time implementation cost. ROI over the horizon
is ``(benefits − costs) / costs``; payback is when cumulative net benefit covers the one-time cost.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from watchkeeper.errors import InputError

# -- the ITSM baseline --------------------------------------------------------------------------
SERVICENOW_TIME = "%d-%m-%Y %H:%M"
#: ServiceNow event-log states that mean nobody has picked the incident up yet.
UNTOUCHED = frozenset({"New", ""})
RESOLVED_STATES = frozenset({"Resolved", "Closed"})
MAX_ROWS = 2_000_000


@dataclass(frozen=True, slots=True)
class ItsmIncident:
    id: str
    priority: str
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class ItsmImport:
    incidents: tuple[ItsmIncident, ...]
    rows: int
    format: str  # servicenow_event_log | incidents
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> incidents left out


def _time(text: str | None) -> datetime | None:
    text = (text or "").strip()
    if not text or text == "?":
        return None
    for fmt in (SERVICENOW_TIME, "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        found = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{text!r} is not a time (dd-mm-yyyy hh:mm as ServiceNow exports, or ISO 8601)") from None
    return found.astimezone(UTC) if found.tzinfo else found.replace(tzinfo=UTC)


def read_itsm_csv(text: str) -> ItsmImport:
    """Incidents from an ITSM CSV export: a ServiceNow incident event log (one row per state
    change: ``number, incident_state, opened_at, sys_updated_at, resolved_at, priority``) or one
    row per incident (``id, opened_at, acknowledged_at, resolved_at[, priority]``).

    Acknowledged is the first state change away from *New* (someone picked it up); resolved is
    ``resolved_at``, else the first *Resolved*/*Closed* state change. Incidents whose times run
    backwards are left out and counted in ``skipped``.
    """
    reader = csv.DictReader(io.StringIO(text))
    header = set(reader.fieldnames or [])
    if {"number", "incident_state", "opened_at", "sys_updated_at"} <= header:
        return _servicenow(reader)
    if {"id", "opened_at", "resolved_at"} <= header:
        return _per_incident(reader)
    raise InputError("the CSV is neither a ServiceNow incident event log (number, incident_state, opened_at, "
                     "sys_updated_at, resolved_at) nor one row per incident (id, opened_at, acknowledged_at, "
                     f"resolved_at); its columns: {', '.join(sorted(header))[:300]}")


def _servicenow(reader: csv.DictReader[str]) -> ItsmImport:
    by_id: dict[str, list[dict[str, str]]] = {}
    rows = 0
    for n, row in enumerate(reader, start=2):
        rows += 1
        if rows > MAX_ROWS:
            raise InputError(f"more than {MAX_ROWS} rows")
        number = (row.get("number") or "").strip()
        if not number:
            raise InputError(f"line {n}: no incident number")
        by_id.setdefault(number, []).append(row)
    incidents: list[ItsmIncident] = []
    skipped: dict[str, int] = {}
    for number, changes in by_id.items():
        opened = _time(changes[0].get("opened_at"))
        if opened is None:
            skipped["no opened_at"] = skipped.get("no opened_at", 0) + 1
            continue
        updates = sorted(((_time(r.get("sys_updated_at")), r) for r in changes),
                         key=lambda p: p[0] or datetime.max.replace(tzinfo=UTC))
        acked = next((t for t, r in updates if t is not None and (r.get("incident_state") or "") not in UNTOUCHED),
                     None)
        resolved = _time(changes[-1].get("resolved_at")) or next(
            (t for t, r in updates if t is not None and r.get("incident_state") in RESOLVED_STATES), None)
        found = _checked(ItsmIncident(number, (changes[-1].get("priority") or "").strip(), opened, acked, resolved),
                         skipped)
        if found is not None:
            incidents.append(found)
    return ItsmImport(tuple(sorted(incidents, key=lambda i: (i.opened_at, i.id))), rows, "servicenow_event_log",
                      skipped)


def _per_incident(reader: csv.DictReader[str]) -> ItsmImport:
    incidents: list[ItsmIncident] = []
    skipped: dict[str, int] = {}
    rows = 0
    for n, row in enumerate(reader, start=2):
        rows += 1
        if rows > MAX_ROWS:
            raise InputError(f"more than {MAX_ROWS} rows")
        try:
            opened = _time(row.get("opened_at"))
            acked, resolved = _time(row.get("acknowledged_at")), _time(row.get("resolved_at"))
        except InputError as exc:
            raise InputError(f"line {n}: {exc}") from None
        if opened is None:
            raise InputError(f"line {n}: opened_at is empty")
        found = _checked(ItsmIncident((row.get("id") or "").strip() or f"line {n}",
                                      (row.get("priority") or "").strip(), opened, acked, resolved), skipped)
        if found is not None:
            incidents.append(found)
    return ItsmImport(tuple(sorted(incidents, key=lambda i: (i.opened_at, i.id))), rows, "incidents", skipped)


def _checked(incident: ItsmIncident, skipped: dict[str, int]) -> ItsmIncident | None:
    for t, why in ((incident.acknowledged_at, "acknowledged before opened"),
                   (incident.resolved_at, "resolved before opened")):
        if t is not None and t < incident.opened_at:
            skipped[why] = skipped.get(why, 0) + 1
            return None
    return incident


#: Priorities that count as major incidents (customer-facing downtime), matched case-blind on the
#: start of the ITSM priority text ("1 - Critical", "P1", "critical" …).
MAJOR = ("1", "2", "p1", "p2", "critical", "high", "sev1", "sev2", "sev-1", "sev-2")


def is_major(priority: str) -> bool:
    """
    >>> is_major("1 - Critical"), is_major("P2"), is_major("3 - Moderate"), is_major("")
    (True, True, False, False)
    """
    text = priority.strip().lower()
    return bool(text) and any(text == m or text.startswith(m + " ") or text.startswith(m + "-") for m in MAJOR)


@dataclass(frozen=True, slots=True)
class Baseline:
    """What the incident history says: volume per month and time to acknowledge / resolve
    (minutes; medians drive the model, as a few tickets open for months would swamp a mean)."""

    incidents: int
    months: float
    per_month: float
    major_per_month: float
    mtta_minutes: float | None
    mttr_minutes: float | None
    median_mtta_minutes: float | None
    median_mttr_minutes: float | None
    major_median_mttr_minutes: float | None
    start: datetime | None
    end: datetime | None
    by_priority: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    by_day: dict[str, int] = field(default_factory=dict)
    source: str = ""


def _minutes(pairs: Iterable[tuple[datetime, datetime | None]]) -> list[float]:
    return [(end - start).total_seconds() / 60 for start, end in pairs if end is not None]


def _med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def baseline(incidents: Iterable[ItsmIncident], source: str) -> Baseline:
    """Volume per month (over the span from the first to the last opening, at least one day) and
    MTTA/MTTR, overall, for major incidents and per priority.

    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> from datetime import timedelta as d
    >>> b = baseline([ItsmIncident("1", "P1", t, t + d(minutes=10), t + d(hours=2)),
    ...               ItsmIncident("2", "P3", t + d(days=30), None, t + d(days=30, hours=4))], "test")
    >>> b.incidents, round(b.per_month, 2), round(b.major_per_month, 2), b.mtta_minutes, b.median_mttr_minutes
    (2, 2.03, 1.01, 10.0, 180.0)
    """
    items = list(incidents)
    if not items:
        return Baseline(0, 0.0, 0.0, 0.0, None, None, None, None, None, None, None, source=source)
    start, end = items[0].opened_at, items[-1].opened_at
    months = max((end - start).total_seconds() / 86400, 1.0) / 30.4375
    ttr = _minutes((i.opened_at, i.resolved_at) for i in items)
    tta = _minutes((i.opened_at, i.acknowledged_at) for i in items)
    major = [i for i in items if is_major(i.priority)]
    by_priority: dict[str, dict[str, float | int | None]] = {}
    for p in sorted({i.priority for i in items}):
        of = [i for i in items if i.priority == p]
        r = _minutes((i.opened_at, i.resolved_at) for i in of)
        a = _minutes((i.opened_at, i.acknowledged_at) for i in of)
        by_priority[p or "(none)"] = {"incidents": len(of), "major": is_major(p), "median_mttr_minutes": _med(r),
                                      "median_mtta_minutes": _med(a)}
    by_day: dict[str, int] = {}
    for i in items:
        key = i.opened_at.strftime("%Y-%m-%d")
        by_day[key] = by_day.get(key, 0) + 1
    return Baseline(len(items), months, len(items) / months, len(major) / months,
                    statistics.fmean(tta) if tta else None, statistics.fmean(ttr) if ttr else None,
                    _med(tta), _med(ttr), _med(_minutes((i.opened_at, i.resolved_at) for i in major)), start, end,
                    by_priority, by_day, source)


# -- the model ------------------------------------------------------------------------------------
class Assumptions(BaseModel):
    """What people estimate (each overridable in an assumptions file; the report names them as
    assumptions, apart from what was measured)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = Field("USD", max_length=8)
    hourly_cost: float = Field(85.0, ge=0, le=10_000, description="loaded cost of an engineer hour")
    addressable_share: float = Field(
        0.2, ge=0, le=1, description="share of the ITSM incidents the use cases can act on (machine-detected ones)")
    hands_on_share: float = Field(
        0.2, ge=0, le=1, description="share of the time to resolve that responders actively work on it")
    responders_per_incident: float = Field(2.0, ge=0, le=100)
    triage_minutes_per_alert: float = Field(4.0, ge=0, le=600)
    downtime_share: float = Field(
        0.1, ge=0, le=1, description="share of a major incident's time to resolve that customers feel")
    downtime_cost_per_minute: float = Field(50.0, ge=0, le=1_000_000)
    mttr_reduction: float = Field(0.3, ge=0, le=1, description="used only when the current MTTR is not measured")
    noise_reduction: float = Field(0.7, ge=0, le=1, description="used only when it is not measured")
    alerts_per_incident: float = Field(
        8.0, ge=1, le=10_000, description="alerts per addressable incident, when alerts are not measured")
    platform_cost_per_month: float = Field(1500.0, ge=0)
    people_cost_per_month: float = Field(3000.0, ge=0, description="time spent running and tuning it")
    one_time_cost: float = Field(40_000.0, ge=0, description="implementation, integration, training")
    horizon_months: int = Field(36, ge=1, le=120)


@dataclass(frozen=True, slots=True)
class Input:
    name: str
    value: float
    unit: str
    source: str  # where it came from: "measured: …", "ITSM export: …", "assumption"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit, "source": self.source}


@dataclass(frozen=True, slots=True)
class Roi:
    inputs: tuple[Input, ...]
    monthly_benefit: float
    monthly_cost: float
    one_time_cost: float
    horizon_months: int
    benefit_lines: dict[str, float]
    roi: float | None  # over the horizon; None when nothing is spent
    payback_months: float | None  # None: never within reach
    cumulative: tuple[float, ...]  # net position at the end of each month (starts at -one_time)

    def as_dict(self) -> dict[str, Any]:
        return {"inputs": [i.as_dict() for i in self.inputs], "monthly_benefit": self.monthly_benefit,
                "monthly_cost": self.monthly_cost, "one_time_cost": self.one_time_cost,
                "horizon_months": self.horizon_months, "benefit_lines": self.benefit_lines, "roi": self.roi,
                "payback_months": self.payback_months}


def compute(inputs: Iterable[Input], horizon_months: int) -> Roi:
    """ROI from named inputs (see :func:`inputs_for`).

    >>> ins = [Input(n, v, "", "") for n, v in (("incidents_per_month", 100), ("major_incidents_per_month", 10),
    ...     ("baseline_mttr_minutes", 120), ("major_baseline_mttr_minutes", 60), ("current_mttr_minutes", 90),
    ...     ("addressable_share", 1), ("hands_on_share", 1), ("responders_per_incident", 2), ("hourly_cost", 60),
    ...     ("alerts_per_month", 1000), ("noise_reduction", 0.5), ("triage_minutes_per_alert", 6),
    ...     ("downtime_share", 1), ("downtime_cost_per_minute", 10), ("platform_cost_per_month", 1000),
    ...     ("people_cost_per_month", 0), ("one_time_cost", 12000))]
    >>> r = compute(ins, 12)
    >>> r.benefit_lines
    {'triage hours saved': 3000.0, 'incident hours saved': 6000.0, 'downtime avoided': 1500.0}
    >>> r.monthly_benefit, r.payback_months, r.roi
    (10500.0, 1.26, 4.25)
    """
    given = {i.name: i for i in inputs}
    v = {name: i.value for name, i in given.items()}
    base = v["baseline_mttr_minutes"]
    reduction = max(1 - v["current_mttr_minutes"] / base, 0.0) if base > 0 else 0.0
    addressable = v["incidents_per_month"] * v["addressable_share"]
    triage_hours = v["alerts_per_month"] * v["noise_reduction"] * v["triage_minutes_per_alert"] / 60
    incident_hours = (addressable * v["baseline_mttr_minutes"] * reduction * v["hands_on_share"]
                      * v["responders_per_incident"] / 60)
    downtime = (v["major_incidents_per_month"] * v["addressable_share"] * v["major_baseline_mttr_minutes"]
                * reduction * v["downtime_share"] * v["downtime_cost_per_minute"])
    lines = {"triage hours saved": triage_hours * v["hourly_cost"],
             "incident hours saved": incident_hours * v["hourly_cost"],
             "downtime avoided": downtime}
    benefit = sum(lines.values())
    cost = v["platform_cost_per_month"] + v["people_cost_per_month"]
    one_time = v["one_time_cost"]
    spent = cost * horizon_months + one_time
    roi = (benefit * horizon_months - spent) / spent if spent > 0 else None
    net = benefit - cost
    payback = one_time / net if net > 0 else None
    cumulative, position = [], -one_time
    for _ in range(horizon_months):
        position += net
        cumulative.append(round(position, 2))
    return Roi(tuple(given.values()), round(benefit, 2), round(cost, 2), one_time, horizon_months,
               {k: round(x, 2) for k, x in lines.items()}, None if roi is None else round(roi, 4),
               None if payback is None else round(payback, 2), tuple(cumulative))


def inputs_for(base: Baseline, a: Assumptions, *, current_mttr_minutes: float | None = None,
               current_source: str = "", alerts_per_month: float | None = None, alerts_source: str = "",
               noise_reduction: float | None = None, noise_source: str = "") -> list[Input]:
    """Every input with where it came from: the ITSM baseline, Watchkeeper's measurements, or an
    assumption (when nothing was measured, the assumption says so)."""
    if base.median_mttr_minutes is None:
        raise InputError("the baseline has no resolved incident: MTTR cannot be measured from it")
    days = (base.end - base.start).total_seconds() / 86400 if base.start and base.end else 0.0
    src = f"ITSM export: {base.source} ({base.incidents} incidents opened over {days:.1f} days)"
    major_mttr = base.major_median_mttr_minutes
    if major_mttr is None:
        major_mttr = base.median_mttr_minutes
    found = [Input("incidents_per_month", round(base.per_month, 3), "incidents", src),
             Input("major_incidents_per_month", round(base.major_per_month, 3), "incidents", src + ", priority 1-2"),
             Input("baseline_mttr_minutes", round(base.median_mttr_minutes, 2), "minutes", src + ", median"),
             Input("major_baseline_mttr_minutes", round(major_mttr, 2), "minutes", src + ", median of priority 1-2")]
    if current_mttr_minutes is not None:
        found.append(Input("current_mttr_minutes", round(current_mttr_minutes, 2), "minutes", current_source))
    else:
        found.append(Input("current_mttr_minutes", round(base.median_mttr_minutes * (1 - a.mttr_reduction), 2),
                           "minutes", f"assumption: baseline MTTR -{a.mttr_reduction:.0%} (not measured yet)"))
    if alerts_per_month is not None:
        found.append(Input("alerts_per_month", round(alerts_per_month, 3), "alerts", alerts_source))
    else:
        found.append(Input("alerts_per_month", round(base.per_month * a.addressable_share * a.alerts_per_incident, 3),
                           "alerts", f"assumption: {a.alerts_per_incident:g} alerts per addressable incident "
                           "(not measured yet)"))
    if noise_reduction is not None:
        found.append(Input("noise_reduction", round(noise_reduction, 4), "share", noise_source))
    else:
        found.append(Input("noise_reduction", a.noise_reduction, "share", "assumption (not measured yet)"))
    for name, unit in (("addressable_share", "share"), ("hands_on_share", "share"),
                       ("responders_per_incident", "people"), ("triage_minutes_per_alert", "minutes"),
                       ("hourly_cost", a.currency), ("downtime_share", "share"),
                       ("downtime_cost_per_minute", a.currency), ("platform_cost_per_month", a.currency),
                       ("people_cost_per_month", a.currency), ("one_time_cost", a.currency)):
        found.append(Input(name, float(getattr(a, name)), unit, "assumption"))
    return found


#: The assumptions a CFO will question, varied in the sensitivity table.
QUESTIONED = ("current_mttr_minutes", "addressable_share", "hands_on_share", "responders_per_incident",
              "hourly_cost", "triage_minutes_per_alert", "noise_reduction", "downtime_share",
              "downtime_cost_per_minute", "people_cost_per_month", "one_time_cost")


@dataclass(frozen=True, slots=True)
class Sensitivity:
    name: str
    low: float
    high: float
    roi_low: float | None
    roi_high: float | None
    payback_low: float | None
    payback_high: float | None

    @property
    def swing(self) -> float:
        return abs((self.roi_high or 0.0) - (self.roi_low or 0.0))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "low": self.low, "high": self.high, "roi_low": self.roi_low,
                "roi_high": self.roi_high, "payback_low": self.payback_low, "payback_high": self.payback_high,
                "swing": round(self.swing, 4)}


def sensitivity(inputs: Iterable[Input], horizon_months: int, factor: float = 0.5) -> list[Sensitivity]:
    """ROI and payback with each questioned input at ``1 - factor`` and ``1 + factor`` of its value
    (the current MTTR between the baseline and half of it), largest swing first.

    >>> ins = [Input(n, v, "", "") for n, v in (("incidents_per_month", 100), ("major_incidents_per_month", 10),
    ...     ("baseline_mttr_minutes", 120), ("major_baseline_mttr_minutes", 60), ("current_mttr_minutes", 90),
    ...     ("addressable_share", 1), ("hands_on_share", 1), ("responders_per_incident", 2), ("hourly_cost", 60),
    ...     ("alerts_per_month", 1000), ("noise_reduction", 0.5), ("triage_minutes_per_alert", 6),
    ...     ("downtime_share", 1), ("downtime_cost_per_minute", 10), ("platform_cost_per_month", 1000),
    ...     ("people_cost_per_month", 0), ("one_time_cost", 12000))]
    >>> rows = sensitivity(ins, 12)
    >>> [r.name for r in rows][:3], rows[0].roi_low < rows[0].roi_high
    (['hourly_cost', 'current_mttr_minutes', 'addressable_share'], True)
    """
    given = list(inputs)
    by_name = {i.name: i for i in given}
    rows = []
    for name in QUESTIONED:
        if name not in by_name:
            continue
        value = by_name[name].value
        if name == "current_mttr_minutes":
            base = by_name["baseline_mttr_minutes"].value
            saved = base - value
            low, high = base - saved * (1 - factor), base - saved * (1 + factor)  # less / more improvement
        else:
            low, high = value * (1 - factor), value * (1 + factor)
            if by_name[name].unit == "share":
                high = min(high, 1.0)
        at_low = compute([replace(i, value=low) if i.name == name else i for i in given], horizon_months)
        at_high = compute([replace(i, value=high) if i.name == name else i for i in given], horizon_months)
        rows.append(Sensitivity(name, round(low, 4), round(high, 4), at_low.roi, at_high.roi, at_low.payback_months,
                                at_high.payback_months))
    return sorted(rows, key=lambda r: -r.swing)
