"""Lines → templates → what storage writes and which log anomalies fire (pure: no IO; the
miners' saved state comes in through ``load``).

One :class:`~watchkeeper.logs.miner.TemplateMiner` per service. :meth:`LogPipeline.process` mines a
batch of records and returns a :class:`LogBatch` (raw lines, template upserts, per-minute counts)
and the new-template events; :meth:`LogPipeline.tick` closes the minutes and returns the rate and
burst events.

>>> from datetime import UTC, datetime
>>> now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
>>> p = LogPipeline(LogsConfig())
>>> rec = [LogRecord("cart", now, f"user {i} logged in", Severity.INFO, "otlp") for i in range(3)]
>>> batch, events = p.process(rec, now)
>>> len(batch.lines), [(k, v[0]) for k, v in batch.templates.items()], events
(3, [(('cart', '8db321b96511'), 'user <*> logged in')], [])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from watchkeeper.logs.anomaly import LogAnomalies, minute_of
from watchkeeper.logs.config import LogsConfig
from watchkeeper.logs.miner import MINER_NAME, MINER_VERSION, MinerConfig, TemplateMiner
from watchkeeper.logs.record import LogRecord
from watchkeeper.logs.tail import Offset
from watchkeeper.model import Event, Severity

#: The version under which a miner's state is saved (a different miner starts afresh).
STATE_VERSION = f"{MINER_NAME}/{MINER_VERSION}"
ANOMALY_STATE = "anomalies"


def miner_key(service: str) -> str:
    return f"miner:{service}"


@dataclass(slots=True)
class LogBatch:
    """What one commit writes: raw lines, template upserts, per-minute counts, file offsets."""

    #: (received_at, at, service, template_id, severity, input, line, size)
    lines: list[tuple[datetime, datetime, str, str, str, str, str, int]] = field(default_factory=list)
    #: (service, template_id) -> [template, first_seen, last_seen, count]
    templates: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    #: (service, template_id, minute start) -> [lines, error lines]
    counts: dict[tuple[str, str, datetime], list[int]] = field(default_factory=dict)
    #: input name -> (offset, lines read)
    offsets: dict[str, tuple[Offset, int]] = field(default_factory=dict)

    def merge(self, other: LogBatch) -> None:
        self.lines.extend(other.lines)
        for key, (template, first, last, count) in other.templates.items():
            mine = self.templates.get(key)
            if mine is None:
                self.templates[key] = [template, first, last, count]
            else:
                mine[0], mine[1], mine[2], mine[3] = template, min(mine[1], first), max(mine[2], last), mine[3] + count
        for ckey, (n, errors) in other.counts.items():
            have = self.counts.setdefault(ckey, [0, 0])
            have[0] += n
            have[1] += errors
        for name, (offset, n) in other.offsets.items():
            self.offsets[name] = (offset, self.offsets.get(name, (offset, 0))[1] + n)


class LogPipeline:
    """Mines lines per service, counts them per template and minute, finds log anomalies."""

    def __init__(self, config: LogsConfig, *, miner_config: MinerConfig | None = None,
                 load: Callable[[str], Mapping[str, Any] | None] = lambda _name: None,
                 known: set[tuple[str, str]] | None = None) -> None:
        self.config = config
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
        batch = LogBatch()
        events: list[Event] = []
        lines, templates, counts = batch.lines, batch.templates, batch.counts
        observe = self.anomalies.observe
        error_rank = Severity.ERROR.rank
        miners: dict[str, TemplateMiner] = {}
        minute = minute_of(received)
        known = self.known
        for rec in records:
            service = rec.service
            miner = miners.get(service)
            if miner is None:
                miner = miners[service] = self.miner(service)
                self.dirty.add(service)
            parsed = miner.add(rec.body)
            tid = parsed.template_id
            key = (service, tid)
            at = rec.at
            have = templates.get(key)
            if have is None:
                templates[key] = [parsed.template, at, at, 1]
            else:
                have[0] = parsed.template
                if at < have[1]:
                    have[1] = at
                if at > have[2]:
                    have[2] = at
                have[3] += 1
            ckey = (service, tid, self._minute(at))
            count = counts.get(ckey)
            if count is None:
                count = counts[ckey] = [0, 0]
            count[0] += 1
            severity = rec.severity
            if severity.rank >= error_rank:
                count[1] += 1
            new = key not in known
            if new:
                known.add(key)
            body = rec.body
            lines.append((received, at, service, tid, severity._value_, rec.input, body, len(body)))
            found = observe(service, tid, parsed.template, severity, body, received, new=new, minute=minute)
            if found:
                events.extend(found)
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
