"""Log anomalies → events (pure): a new template at warning level or worse, a template's rate
leaving its baseline (spike or drop), an error burst. Each is one :class:`~watchkeeper.model.Event`
of kind ``log`` with a stable fingerprint (so one anomaly is one alert however many lines say it),
the template and up to five sample lines as evidence; it resolves after ``quiet_minutes`` normal
minutes.

Rates are counted per minute of receipt and judged when the minute closes, against an online
robust baseline per (service, template): an exponentially weighted mean and mean absolute
deviation whose updates are clipped at three scales (one burst does not drag the baseline), on a
scale of ``max(1.4826 · MAD, √mean)`` (a count is at least Poisson-noisy).

>>> from datetime import UTC, datetime, timedelta
>>> t0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
>>> found = LogAnomalies(AnomalyConfig(learn_minutes=0))
>>> for m in range(30):
...     for _ in range(50):
...         _ = found.observe("cart", "t1", "GET <*> 200", Severity.INFO, "GET /a 200", t0 + timedelta(minutes=m))
...     _ = found.tick(t0 + timedelta(minutes=m + 1, seconds=10))
>>> for _ in range(400):
...     _ = found.observe("cart", "t1", "GET <*> 200", Severity.INFO, "GET /a 200", t0 + timedelta(minutes=30))
>>> [(e.name, e.status.value, e.raw["evidence"]["count"]) for e in found.tick(t0 + timedelta(minutes=31, seconds=10))]
[('LogRateSpike', 'firing', 400)]
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from watchkeeper.logs.config import AnomalyConfig
from watchkeeper.model import Event, EventKind, Severity, Status

SOURCE = "logs"
_ERROR_RANK = Severity.ERROR.rank
_WARNING_RANK = Severity.WARNING.rank
MAD_TO_SIGMA = 1.4826
SAMPLES = 5
#: A minute is judged this long after it ends (lines still in flight).
GRACE = timedelta(seconds=5)
#: Template texts in evidence and summaries are cut to this many characters.
MAX_TEXT = 1000


class Reason:
    NEW_TEMPLATE = "new_template"
    SPIKE = "rate_spike"
    DROP = "rate_drop"
    BURST = "error_burst"


NAMES = {Reason.NEW_TEMPLATE: "LogNewTemplate", Reason.SPIKE: "LogRateSpike", Reason.DROP: "LogRateDrop",
         Reason.BURST: "LogErrorBurst"}


def minute_of(at: datetime) -> int:
    """Epoch minute."""
    return int(at.timestamp() // 60)


@dataclass(slots=True)
class Baseline:
    """EWMA mean and clipped mean absolute deviation of one per-minute count."""

    mean: float = 0.0
    mad: float = 0.0
    n: int = 0

    def scale(self) -> float:
        return max(MAD_TO_SIGMA * self.mad, math.sqrt(max(self.mean, 1.0)))

    def z(self, x: float) -> float:
        return (x - self.mean) / self.scale()

    def learn(self, x: float, alpha: float) -> None:
        if self.n == 0:
            self.mean, self.n = x, 1
            return
        limit = 3.0 * self.scale()
        err = max(-limit, min(limit, x - self.mean))
        self.mean += alpha * err
        self.mad += alpha * (min(abs(x - self.mean), limit) - self.mad)
        self.n += 1


@dataclass(slots=True)
class _Series:
    service: str
    template_id: str
    template: str
    baseline: Baseline = field(default_factory=Baseline)
    samples: deque[str] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    last_minute: int = 0


class Lines(NamedTuple):
    """The lines of one (service, template) in one batch (see :meth:`LogAnomalies.observe_batch`)."""

    service: str
    template_id: str
    template: str
    lines: int
    errors: int
    #: the last lines (at most :data:`SAMPLES` are kept), in order
    samples: Iterable[str]
    #: the first line, its level, and whether its template was never seen before
    first_line: str
    first_severity: Severity
    new: bool


@dataclass(slots=True)
class _Active:
    event: Event
    last_anomalous: int


def fingerprint(reason: str, service: str, key: str) -> str:
    digest = hashlib.sha256(f"{reason}\x00{service}\x00{key}".encode()).hexdigest()[:40]
    return f"log:{reason}:{digest}"


class LogAnomalies:
    """``observe`` each mined line (returns new-template events at once); ``tick(now)`` closes the
    minutes that ended and returns the rate and burst events (and the resolutions)."""

    def __init__(self, config: AnomalyConfig | None = None) -> None:
        self.config = config or AnomalyConfig()
        self.alpha = 2.0 / (self.config.span_minutes + 1.0)
        self._series: dict[tuple[str, str], _Series] = {}
        self._errors: dict[str, Baseline] = {}
        self._error_samples: dict[str, deque[str]] = {}
        #: counts of the open minutes: minute -> (service, template) -> count; errors per service
        self._counts: dict[int, dict[tuple[str, str], int]] = {}
        self._error_counts: dict[int, dict[str, int]] = {}
        self._first_seen: dict[str, datetime] = {}
        self._active: dict[str, _Active] = {}
        #: (service, template) -> fingerprint of its new-template anomaly while active
        self._new_active: dict[tuple[str, str], str] = {}
        self._closed = 0  # the last minute judged
        self.late = 0  # lines of a minute already judged

    # -- lines ----------------------------------------------------------------------------------
    def observe(self, service: str, template_id: str, template: str, severity: Severity, line: str,
                received: datetime, *, new: bool = False, minute: int | None = None) -> list[Event]:
        """Count one line (``minute``: ``minute_of(received)``, when the caller knows it); the
        new-template event when it is one."""
        if minute is None:
            minute = minute_of(received)
        key = (service, template_id)
        series = self._series.get(key)
        if series is None:
            if len(self._series) >= self.config.max_series:
                self._evict()
            series = self._series[key] = _Series(service, template_id, template, last_minute=minute)
        elif series.template is not template:
            series.template = template
        series.samples.append(line)
        series.last_minute = minute
        error = severity.rank >= _ERROR_RANK
        if minute <= self._closed:
            self.late += 1
        else:
            counts = self._counts.get(minute)
            if counts is None:
                counts = self._counts[minute] = {}
            counts[key] = counts.get(key, 0) + 1
            if error:
                errors = self._error_counts.setdefault(minute, {})
                errors[service] = errors.get(service, 0) + 1
        if error:
            samples = self._error_samples.get(service)
            if samples is None:
                samples = self._error_samples[service] = deque(maxlen=SAMPLES)
            samples.append(line)
        if service not in self._first_seen:
            self._first_seen[service] = received
        return self._new_template(key, template, severity, line, received, minute, new)

    def observe_batch(self, seen: Iterable[Lines], error_lines: Mapping[str, Iterable[str]],
                      received: datetime) -> list[Event]:
        """Count a batch of lines received together, given per (service, template) in the order of
        their first line (``error_lines``: each service's last error lines, in order): what
        :meth:`observe` of each line in turn does, once per (service, template). The new-template
        events, in order."""
        minute = minute_of(received)
        late = minute <= self._closed
        counts: dict[tuple[str, str], int] | None = None
        found: list[Event] = []
        for s in seen:
            service = s.service
            key = (service, s.template_id)
            series = self._series.get(key)
            if series is None:
                if len(self._series) >= self.config.max_series:
                    self._evict()
                series = self._series[key] = _Series(service, s.template_id, s.template, last_minute=minute)
            elif series.template is not s.template:
                series.template = s.template
            series.samples.extend(s.samples)
            series.last_minute = minute
            if late:
                self.late += s.lines
            else:
                if counts is None:
                    counts = self._counts.setdefault(minute, {})
                counts[key] = counts.get(key, 0) + s.lines
                if s.errors:
                    errors = self._error_counts.setdefault(minute, {})
                    errors[service] = errors.get(service, 0) + s.errors
            if service not in self._first_seen:
                self._first_seen[service] = received
            found.extend(self._new_template(key, s.template, s.first_severity, s.first_line, received, minute,
                                            s.new))
        for service, lines in error_lines.items():
            samples = self._error_samples.get(service)
            if samples is None:
                samples = self._error_samples[service] = deque(maxlen=SAMPLES)
            samples.extend(lines)
        return found

    def _new_template(self, key: tuple[str, str], template: str, severity: Severity, line: str,
                      received: datetime, minute: int, new: bool) -> list[Event]:
        """The new-template event of a line (``new``: its template was never seen before), if any."""
        if not new:
            fp = self._new_active.get(key)
            if fp is not None and (active := self._active.get(fp)) is not None:
                active.last_anomalous = minute
            return []
        if not self.config.enabled or severity.rank < _WARNING_RANK:
            return []
        service, template_id = key
        if received - self._first_seen[service] < timedelta(minutes=self.config.learn_minutes):
            return []
        fp = fingerprint(Reason.NEW_TEMPLATE, service, template_id)
        if fp in self._active:
            self._active[fp].last_anomalous = minute
            return []
        event = self._event(Reason.NEW_TEMPLATE, service, template_id, template, severity,
                            f"{service}: a new {severity.value} log template: {template[:200]}", received,
                            {"count": 1, "samples": [line]})
        self._active[fp] = _Active(event, minute)
        self._new_active[key] = fp
        return [event]

    def _evict(self) -> None:
        """Forget the tenth of the series seen longest ago."""
        oldest = sorted(self._series.items(), key=lambda kv: kv[1].last_minute)[: max(1, len(self._series) // 10)]
        for key, _ in oldest:
            del self._series[key]

    # -- minutes --------------------------------------------------------------------------------
    def tick(self, now: datetime) -> list[Event]:
        """Judge every minute that ended at least :data:`GRACE` before ``now``."""
        last = minute_of(now - GRACE) - 1
        if self._closed == 0:
            self._closed = min([last, *self._counts, *self._error_counts]) - 1 if (self._counts or
                                                                                   self._error_counts) else last
        events: list[Event] = []
        if last - self._closed > 24 * 60:  # a long pause: judge no empty day minute by minute
            self._closed = last - 60
        while self._closed < last:
            self._closed += 1
            events.extend(self._judge(self._closed))
        return events

    def _judge(self, minute: int) -> list[Event]:
        cfg = self.config
        counts = self._counts.pop(minute, {})
        errors = self._error_counts.pop(minute, {})
        at = datetime.fromtimestamp((minute + 1) * 60, UTC)
        found: list[Event] = []
        anomalous: set[str] = set()
        for key, series in self._series.items():
            x = float(counts.get(key, 0))
            base = series.baseline
            if cfg.enabled and base.n >= cfg.warmup_minutes:
                z = base.z(x)
                reason = None
                if z >= cfg.spike_z and x - base.mean >= cfg.min_spike:
                    reason = Reason.SPIKE
                elif z <= -cfg.drop_z and base.mean >= cfg.min_drop_rate:
                    reason = Reason.DROP
                if reason is not None:
                    fp = fingerprint(reason, series.service, series.template_id)
                    anomalous.add(fp)
                    if fp not in self._active:
                        word = "spiked" if reason == Reason.SPIKE else "dropped"
                        event = self._event(
                            reason, series.service, series.template_id, series.template,
                            Severity.WARNING, f"{series.service}: log rate {word} to {x:.0f}/min "
                            f"(baseline {base.mean:.1f}/min): {series.template[:200]}", at,
                            {"count": int(x), "expected": round(base.mean, 3), "z": round(z, 2), "minute": minute,
                             "samples": list(series.samples)})
                        self._active[fp] = _Active(event, minute)
                        found.append(event)
            if x > 0 or base.n > 0:
                base.learn(x, self.alpha)
        services = set(errors) | set(self._errors)
        for service in services:
            x = float(errors.get(service, 0))
            base = self._errors.setdefault(service, Baseline())
            warm = base.n >= cfg.warmup_minutes
            if cfg.enabled and x >= cfg.burst_errors and (not warm or base.z(x) >= cfg.spike_z):
                fp = fingerprint(Reason.BURST, service, "")
                anomalous.add(fp)
                if fp not in self._active:
                    event = self._event(
                        Reason.BURST, service, "", "", Severity.ERROR,
                        f"{service}: {x:.0f} error lines in one minute (baseline {base.mean:.1f}/min)", at,
                        {"count": int(x), "expected": round(base.mean, 3), "minute": minute,
                         "samples": list(self._error_samples.get(service, ()))})
                    self._active[fp] = _Active(event, minute)
                    found.append(event)
            base.learn(x, self.alpha)
        for fp, active in list(self._active.items()):
            if fp in anomalous:
                active.last_anomalous = minute
            elif minute - active.last_anomalous >= cfg.quiet_minutes:
                del self._active[fp]
                if active.event.name == NAMES[Reason.NEW_TEMPLATE]:
                    self._new_active.pop((active.event.service, active.event.labels.get("template_id", "")), None)
                e = active.event
                found.append(Event(e.source, e.kind, e.fingerprint, Status.RESOLVED, e.severity, e.name, e.service,
                                   e.resource, e.labels, e.summary, e.starts_at, at, at, e.raw))
        return found

    def _event(self, reason: str, service: str, template_id: str, template: str, severity: Severity,
               summary: str, at: datetime, details: dict[str, Any]) -> Event:
        evidence = {"signal": "logs", "reason": reason, "service": service, "template_id": template_id,
                    "template": template[:MAX_TEXT], **details}
        evidence["samples"] = [s[:MAX_TEXT] for s in evidence.get("samples", [])][:SAMPLES]
        labels = {"alertname": NAMES[reason], "service": service, "reason": reason}
        if template_id:
            labels["template_id"] = template_id
        return Event(SOURCE, EventKind.LOG, fingerprint(reason, service, template_id), Status.FIRING, severity,
                     NAMES[reason], service, template_id or service, labels, summary, at, None, at,
                     {"evidence": evidence})

    # -- state ----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The baselines, as JSON-able values (the open minutes and active anomalies are not kept)."""
        return {"version": 1, "series": [[s.service, s.template_id, s.template[:MAX_TEXT], s.baseline.mean,
                                          s.baseline.mad, s.baseline.n, s.last_minute]
                                         for s in self._series.values()],
                "errors": {k: [b.mean, b.mad, b.n] for k, b in self._errors.items()},
                "first_seen": {k: v.isoformat() for k, v in self._first_seen.items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, config: AnomalyConfig | None = None) -> LogAnomalies:
        found = cls(config)
        if not state or state.get("version") != 1:
            return found
        for service, tid, template, mean, mad, n, last in state.get("series", []):
            found._series[(service, tid)] = _Series(service, tid, template, Baseline(mean, mad, n), last_minute=last)
        for service, (mean, mad, n) in state.get("errors", {}).items():
            found._errors[service] = Baseline(mean, mad, n)
        for service, at in state.get("first_seen", {}).items():
            found._first_seen[service] = datetime.fromisoformat(at)
        return found

    def active(self) -> int:
        return len(self._active)


@dataclass(frozen=True, slots=True)
class LogAnomaly:
    """One log anomaly found in stored per-minute counts (see :func:`anomalies_in`)."""

    service: str
    template_id: str
    reason: str
    minute: datetime
    count: int
    expected: float
    z: float

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "template_id": self.template_id, "reason": self.reason,
                "minute": self.minute.isoformat(), "count": self.count, "expected": round(self.expected, 3),
                "z": round(self.z, 2)}


def anomalies_in(rows: Iterable[Mapping[str, Any]], start: datetime, end: datetime,
                 config: AnomalyConfig | None = None) -> list[LogAnomaly]:
    """The anomalies in ``[start, end)`` of per-minute count rows (``service``, ``template_id``,
    ``minute``, ``count``, ``errors``, as the ``log_counts`` table holds them), judged as
    :class:`LogAnomalies` judges them live; the rows before ``start`` train the baselines. A
    template first seen inside the window with error lines is a ``new_template`` anomaly. Pure.

    >>> from datetime import UTC, datetime, timedelta
    >>> t0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    >>> rows = [{"service": "cart", "template_id": "a", "minute": t0 + timedelta(minutes=m),
    ...          "count": 40 if m != 50 else 300, "errors": 0} for m in range(60)]
    >>> found = anomalies_in(rows, t0 + timedelta(minutes=45), t0 + timedelta(hours=1))
    >>> [(a.reason, a.minute.minute, a.count) for a in found]
    [('rate_spike', 50, 300)]
    """
    cfg = config or AnomalyConfig()
    alpha = 2.0 / (cfg.span_minutes + 1.0)
    series: dict[tuple[str, str], dict[int, tuple[int, int]]] = {}
    for row in rows:
        key = (str(row["service"]), str(row["template_id"]))
        series.setdefault(key, {})[minute_of(row["minute"])] = (int(row["count"]), int(row.get("errors", 0)))
    lo, hi = minute_of(start), minute_of(end)
    found: list[LogAnomaly] = []
    errors_by_service: dict[str, dict[int, int]] = {}
    for (service, tid), points in series.items():
        first = min(points)
        base = Baseline()
        for m in range(first, hi):
            x, errors = points.get(m, (0, 0))
            if errors:
                per = errors_by_service.setdefault(service, {})
                per[m] = per.get(m, 0) + errors
            at = datetime.fromtimestamp(m * 60, UTC)
            if m >= lo:
                if m == first and first > lo - 1 and errors and cfg.enabled:
                    found.append(LogAnomaly(service, tid, Reason.NEW_TEMPLATE, at, x, 0.0, 0.0))
                if base.n >= cfg.warmup_minutes and cfg.enabled:
                    z = base.z(x)
                    if z >= cfg.spike_z and x - base.mean >= cfg.min_spike:
                        found.append(LogAnomaly(service, tid, Reason.SPIKE, at, x, base.mean, z))
                    elif z <= -cfg.drop_z and base.mean >= cfg.min_drop_rate:
                        found.append(LogAnomaly(service, tid, Reason.DROP, at, x, base.mean, z))
            base.learn(float(x), alpha)
    for service, per in errors_by_service.items():
        base = Baseline()
        for m in range(min(per), hi):
            x = per.get(m, 0)
            if m >= lo and cfg.enabled and x >= cfg.burst_errors and (base.n < cfg.warmup_minutes or
                                                                       base.z(x) >= cfg.spike_z):
                found.append(LogAnomaly(service, "", Reason.BURST, datetime.fromtimestamp(m * 60, UTC), x,
                                        base.mean, base.z(x)))
            base.learn(float(x), alpha)
    return sorted(found, key=lambda a: (a.minute, a.service, a.reason, a.template_id))
