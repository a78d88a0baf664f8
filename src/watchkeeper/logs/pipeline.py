"""Lines → templates → what storage writes and which log anomalies fire (pure: no IO; the
miners' saved state comes in through ``load``).

One :class:`~watchkeeper.logs.miner.TemplateMiner` per service. :meth:`LogPipeline.process` mines a
batch of records and returns a :class:`LogBatch` (raw lines, template upserts, per-minute counts)
and the new-template events; :meth:`LogPipeline.tick` closes the minutes and returns the rate and
burst events.

>>> from datetime import UTC, datetime, timedelta
>>> now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
>>> p = LogPipeline(LogsConfig())
>>> rec = [LogRecord("cart", now, f"user {i} logged in", Severity.INFO, "otlp") for i in range(3)]
>>> batch, events = p.process(rec, now)
>>> len(batch.lines), [(k, v[0]) for k, v in batch.templates.items()], events
(3, [(('cart', '8db321b96511'), 'user <*> logged in')], [])
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from watchkeeper.logs.anomaly import SAMPLES, Lines, LogAnomalies
from watchkeeper.logs.config import LogsConfig
from watchkeeper.logs.miner import MINER_NAME, MINER_VERSION, MinerConfig, TemplateMiner
from watchkeeper.logs.record import LogRecord
from watchkeeper.logs.tail import Offset
from watchkeeper.model import Event, Severity

#: The version under which a miner's state is saved (a different miner starts afresh).
STATE_VERSION = f"{MINER_NAME}/{MINER_VERSION}"
ANOMALY_STATE = "anomalies"


_MINUTE = timedelta(minutes=1)


def miner_key(service: str) -> str:
    return f"miner:{service}"


@dataclass(slots=True)
class LogBatch:
    """What one commit writes: raw lines, template upserts, per-minute counts, file offsets."""

    #: (received_at, at, service, template_id, severity, input, line, size); the two times as the
    #: pipeline's ``stamp`` made them (the store's own form: the rows go to the driver as they are)
    lines: list[tuple[Any, Any, str, str, str, str, str, int]] = field(default_factory=list)
    #: (service, template_id) -> [template, first_seen, last_seen, count]
    templates: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    #: (service, template_id, minute start) -> [lines, error lines]
    counts: dict[tuple[str, str, datetime], list[int]] = field(default_factory=dict)
    #: input name -> (offset, lines read)
    offsets: dict[str, tuple[Offset, int]] = field(default_factory=dict)
    #: the times in ``lines`` went through a ``stamp`` (else they are datetimes)
    stamped: bool = False


class _Seen:
    """One (service, template) within a batch."""

    __slots__ = ("errors", "first", "first_line", "first_severity", "last", "lines", "minutes", "new", "samples",
                 "template")

    def __init__(self, template: str, at: datetime, line: str, severity: Severity, new: bool) -> None:
        self.template = template
        self.first = self.last = at
        self.first_line, self.first_severity, self.new = line, severity, new
        self.lines = self.errors = 0
        self.samples: deque[str] = deque(maxlen=SAMPLES)
        #: minute of the lines' own time -> [lines, error lines]
        self.minutes: dict[datetime, list[int]] = {}


class LogPipeline:
    """Mines lines per service, counts them per template and minute, finds log anomalies."""

    def __init__(self, config: LogsConfig, *, miner_config: MinerConfig | None = None,
                 load: Callable[[str], Mapping[str, Any] | None] = lambda _name: None,
                 known: set[tuple[str, str]] | None = None, stamp: Callable[[datetime], Any] | None = None) -> None:
        self.config = config
        #: the raw rows' times as the store writes them (None: datetimes), made once per distinct time
        self.stamp = stamp
        self.miner_config = miner_config or MinerConfig()
        self.load = load
        self.miners: dict[str, TemplateMiner] = {}
        self.known = known if known is not None else set()
        self.anomalies = LogAnomalies.from_state(dict(load(ANOMALY_STATE) or {}), config.anomalies)
        self.dirty: set[str] = set()
        self._minutes: dict[int, datetime] = {}

    def miner(self, service: str) -> TemplateMiner:
        found = self.miners.get(service)
        if found is None:
            state = self.load(miner_key(service))
            found = TemplateMiner.from_state(state, self.miner_config) if state else TemplateMiner(self.miner_config)
            self.miners[service] = found
        return found

    def _minute(self, at: datetime) -> datetime:
        epoch = int(at.timestamp() // 60)
        found = self._minutes.get(epoch)
        if found is None:
            if len(self._minutes) > 4096:
                self._minutes.clear()
            found = self._minutes[epoch] = datetime.fromtimestamp(epoch * 60, UTC)
        return found

    def process(self, records: list[LogRecord], received: datetime) -> tuple[LogBatch, list[Event]]:
        """Mine ``records`` (in order) into one batch. Per line only what must be: the miner, the
        raw row and a few counters on the line's (service, template); templates, per-minute counts
        and the anomaly bookkeeping are then done once per (service, template)."""
        stamp = self.stamp
        batch = LogBatch(stamped=stamp is not None)
        lines = batch.lines
        append = lines.append
        known = self.known
        seen: dict[tuple[str, str], _Seen] = {}
        identify: dict[str, Callable[[str], tuple[str, str]]] = {}
        errors: dict[str, deque[str]] = {}  # the last error lines of each service, in order
        critical, error = Severity.CRITICAL, Severity.ERROR
        last_at: datetime | None = None
        minute_at = minute_end = received  # an empty minute: the first line finds its own
        received_value = at_value = received if stamp is None else stamp(received)
        for service, at, body, severity, input_name, _attributes in records:
            mine = identify.get(service)
            if mine is None:
                mine = identify[service] = self.miner(service).identify
                self.dirty.add(service)
            tid, template = mine(body)
            if at is not last_at:  # the lines of a file or syslog drain share one time
                if not minute_at <= at < minute_end:
                    minute_at = self._minute(at)
                    minute_end = minute_at + _MINUTE
                at_value = at if stamp is None else stamp(at)
                last_at = at
            key = (service, tid)
            got = seen.get(key)
            if got is None:
                got = seen[key] = _Seen(template, at, body, severity, key not in known)
                if got.new:
                    known.add(key)
            else:
                got.template = template
                if at < got.first:
                    got.first = at
                elif at > got.last:
                    got.last = at
            got.lines += 1
            got.samples.append(body)
            per = got.minutes.get(minute_at)
            if per is None:
                per = got.minutes[minute_at] = [0, 0]
            per[0] += 1
            if severity is error or severity is critical:
                per[1] += 1
                got.errors += 1
                samples = errors.get(service)
                if samples is None:
                    samples = errors[service] = deque(maxlen=SAMPLES)
                samples.append(body)
            append((received_value, at_value, service, tid, severity._value_, input_name, body, len(body)))
        templates, counts = batch.templates, batch.counts
        for (service, tid), got in seen.items():
            templates[(service, tid)] = [got.template, got.first, got.last, got.lines]
            for minute, per in got.minutes.items():
                counts[(service, tid, minute)] = per
        events = self.anomalies.observe_batch(
            [Lines(service, tid, got.template, got.lines, got.errors, got.samples, got.first_line,
                   got.first_severity, got.new) for (service, tid), got in seen.items()],
            errors, received)
        return batch, events

    def tick(self, now: datetime) -> list[Event]:
        return self.anomalies.tick(now)

    def states(self, *, everything: bool = False) -> dict[str, dict[str, Any]]:
        """The state to save: the miners that mined since the last call (all: ``everything``) and
        the anomaly baselines."""
        names = set(self.miners) if everything else self.dirty
        self.dirty = set()
        out = {miner_key(s): self.miners[s].state() for s in names if s in self.miners}
        out[ANOMALY_STATE] = self.anomalies.state()
        return out
