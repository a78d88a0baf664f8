"""Logs in ``serve``: inputs → miner → storage (durable before an OTLP request is answered, and a
file's offset committed with its lines) → log anomalies through the same ingest path as alerts.

:class:`LogIngest` owns the listeners, the file followers and a ticker thread that closes the
minutes, sends the anomaly events on and saves the miners' state. Concurrent writers share a
transaction (group commit): whoever takes the lock mines and commits everything pending.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from watchkeeper import retention
from watchkeeper.errors import InputError
from watchkeeper.logs import otlp, syslog
from watchkeeper.logs.anomaly import LogAnomaly, anomalies_in
from watchkeeper.logs.config import FileInput, LogsConfig
from watchkeeper.logs.listeners import TcpListener, UdpListener
from watchkeeper.logs.pipeline import STATE_VERSION, LogPipeline
from watchkeeper.logs.record import LogRecord, from_json_line, level_of
from watchkeeper.logs.tail import Offset, Tailer
from watchkeeper.model import Event
from watchkeeper.service.group import GroupCommit
from watchkeeper.storage.logs import LogStore
from watchkeeper.telemetry import Metrics

if TYPE_CHECKING:
    from watchkeeper.service import Watchkeeper

log = structlog.get_logger("watchkeeper.logs")

#: Dead letters per input and minute at most (beyond it, bad frames are only counted).
DEAD_LETTERS_PER_MINUTE = 60
#: A dead letter keeps this many bytes of the bad frame.
DEAD_LETTER_BYTES = 4096
#: The miners' state is saved this often (and when serve stops).
SAVE_SECONDS = 60.0
#: The history a window's anomalies are judged against.
HISTORY = timedelta(hours=6)
#: The minutes are closed and anomaly events sent on this often.
TICK_SECONDS = 1.0


@dataclass(slots=True)
class _Pending:
    records: list[LogRecord]
    offsets: dict[str, tuple[Offset, int]]


@dataclass(slots=True)
class InputStatus:
    """One input as ``watchkeeper log-sources`` shows it."""

    name: str
    kind: str
    service: str
    address: str = ""
    lines: int = 0
    bad: int = 0
    offset: Offset | None = None
    updated_at: datetime | None = None


class LogMetrics:
    """The logs' counters, on the service's registry (made once per service: ``Metrics.counter``)."""

    def __init__(self, metrics: Metrics) -> None:
        self.lines = metrics.counter("watchkeeper_log_lines", "Log lines stored, by input", ["input"])
        self.bad = metrics.counter("watchkeeper_log_bad_frames",
                                   "Log frames refused (dead-lettered up to a rate), by input", ["input"])
        self.anomalies = metrics.counter("watchkeeper_log_anomalies", "Log anomaly events sent to ingest, by reason",
                                         ["reason"])


class LogIngest:
    """Everything the logs do in a server process (docs/logs.md)."""

    def __init__(self, service: Watchkeeper, config: LogsConfig | None = None) -> None:
        self.service = service
        self.config = config or service.settings.logs
        self.clock: Callable[[], datetime] = service.clock
        self.store = LogStore(service.db)
        self.metrics = LogMetrics(service.metrics) if service.metrics is not None else None
        self._pipeline: LogPipeline | None = None
        self._group: GroupCommit[_Pending] = GroupCommit(self._commit)
        self._lock = self._group.lock  # the pipeline's: held while a group commits
        self._events: list[Event] = []
        self._events_lock = threading.Lock()
        self._dead: dict[str, tuple[int, int]] = {}  # input -> (minute, dead letters in it)
        self.counts: dict[str, list[int]] = {}  # input -> [lines, bad]
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self.udp: UdpListener | None = None
        self.tcp: TcpListener | None = None
        self._tailers: dict[str, tuple[FileInput, Tailer, Offset | None]] = {}

    # -- the pipeline ---------------------------------------------------------------------------
    @property
    def pipeline(self) -> LogPipeline:
        if self._pipeline is None:
            self._pipeline = LogPipeline(self.config, load=lambda name: self.store.load_state(name, STATE_VERSION),
                                         known=self.store.known_templates(), stamp=self.store.line_stamp)
        return self._pipeline

    def submit(self, records: list[LogRecord], offsets: dict[str, tuple[Offset, int]] | None = None) -> None:
        """Mine and store ``records`` (and the file offsets after them); returns once committed."""
        self._group.submit(_Pending(records, offsets or {}))

    def _commit(self, group: list[_Pending]) -> None:
        pipeline = self.pipeline
        now = self.clock()
        records = group[0].records if len(group) == 1 else [r for item in group for r in item.records]
        batch, events = pipeline.process(records, now)
        for item in group:
            batch.offsets.update(item.offsets)
        self.store.write(batch, now)
        by_input: dict[str, int] = {}
        for rec in records:
            by_input[rec.input] = by_input.get(rec.input, 0) + 1
        for name, n in by_input.items():
            self._count(name, n, 0)
        if events:
            with self._events_lock:
                self._events.extend(events)

    def _count(self, name: str, lines: int, bad: int) -> None:
        have = self.counts.setdefault(name, [0, 0])
        have[0] += lines
        have[1] += bad
        if self.metrics is not None:
            if lines:
                self.metrics.lines.labels(name).inc(lines)
            if bad:
                self.metrics.bad.labels(name).inc(bad)

    def refuse(self, name: str, body: bytes, problem: str, status: int = 422, content_type: str | None = None,
               *, always: bool = False) -> None:
        """Count a bad frame or body and keep it as a dead letter (at most
        :data:`DEAD_LETTERS_PER_MINUTE` per input, of :data:`DEAD_LETTER_BYTES` each; ``always``: an
        HTTP body, whose sender got a 4xx and may ask about it)."""
        self._count(name, 0, 1)
        minute = int(self.clock().timestamp() // 60)
        seen_minute, seen = self._dead.get(name, (minute, 0))
        if seen_minute != minute:
            seen = 0
        if seen >= DEAD_LETTERS_PER_MINUTE and not always:
            return
        self._dead[name] = (minute, seen + 1)
        kept = body[:DEAD_LETTER_BYTES]
        try:
            self.service.dead_letter(name, kept, InputError(problem, status=status), content_type, size=len(body),
                                     truncated=len(kept) < len(body))
        except Exception as exc:  # the database is away: the counter still says it
            with contextlib.suppress(Exception):
                log.warning("dead letter not kept", input=name, error=str(exc))

    # -- syslog ---------------------------------------------------------------------------------
    def syslog_handler(self, transport: str) -> Callable[[list[bytes | syslog.BadFrame], str], None]:
        name = f"syslog-{transport}"
        cfg = self.config.syslog

        def handle(frames: list[bytes | syslog.BadFrame], peer: str) -> None:
            now = self.clock()
            records: list[LogRecord] = []
            for frame in frames:
                if isinstance(frame, syslog.BadFrame):
                    self.refuse(name, str(frame).encode(), f"from {peer}: {frame}")
                    continue
                try:
                    msg = syslog.parse(frame, now=now)
                except syslog.BadFrame as exc:
                    self.refuse(name, frame, f"from {peer}: {exc}")
                    continue
                attrs = {"host": msg.host} if msg.host else {}
                if msg.app:
                    attrs["app"] = msg.app
                at = msg.at if msg.at is not None and abs(msg.at - now) < timedelta(days=1) else now
                records.append(LogRecord(cfg.service_of(msg.app), at, msg.text, msg.severity, name, attrs))
            if records:
                self.submit(records)

        return handle

    # -- OTLP -----------------------------------------------------------------------------------
    def otlp(self, body: bytes, content_type: str | None) -> tuple[str, bytes]:
        """Decode and store one OTLP/HTTP logs body; the response's media type and body. Bad
        bodies raise InputError (dead-lettered)."""
        media = (content_type or "").split(";")[0].strip().lower()
        try:
            decoded = otlp.decode(body, content_type, self.clock(), self.config.otlp_service,
                                  self.config.max_line_bytes, attributes=False)  # log_lines has no place for them
        except otlp.BadRequest as exc:
            status = 415 if str(exc).startswith("unsupported content type") else 400
            self.refuse("otlp", body, str(exc), status, content_type, always=True)
            raise InputError(str(exc), status=status) from None
        if decoded.rejected:
            self._count("otlp", 0, decoded.rejected)
        if decoded.records:
            self.submit(decoded.records)
        return media, otlp.response(media, decoded.rejected, decoded.problem)

    # -- files ----------------------------------------------------------------------------------
    def _open_files(self) -> None:
        stored = self.store.offsets()
        for spec in self.config.files:
            name = f"file:{spec.path}"
            start = stored[name][0] if name in stored else None
            tailer = Tailer(spec.path, start, from_start=spec.from_start, max_line=self.config.max_line_bytes)
            self._tailers[name] = (spec, tailer, start)

    def poll_files(self) -> int:
        """Read every followed file once; the lines stored."""
        total = 0
        for name, (spec, tailer, committed) in list(self._tailers.items()):
            try:
                read = tailer.read()
            except OSError as exc:
                log.warning("log file unreadable", input=name, error=str(exc))
                continue
            for raw in read.oversized:
                self.refuse(name, raw, f"a line longer than {self.config.max_line_bytes} bytes")
            if read.offset is None or (not read.lines and read.offset == committed):
                continue
            now = self.clock()
            records = [(spec.format != "plain" and from_json_line(spec.service, line, now, name))
                       or LogRecord(spec.service, now, line, level_of(line), name) for line in read.lines]
            try:
                self.submit(records, {name: (read.offset, len(records))})
            except Exception as exc:  # not stored: read again from the committed offset next time
                log.error("log lines not stored; retrying from the stored offset", input=name, error=str(exc))
                tailer.close()
                self._tailers[name] = (spec, Tailer(spec.path, committed, from_start=True,
                                                    max_line=self.config.max_line_bytes), committed)
                continue
            self._tailers[name] = (spec, tailer, read.offset)
            total += len(records)
        return total

    # -- minutes, events, state -----------------------------------------------------------------
    def tick(self) -> int:
        """Close the minutes that ended and send every anomaly event on; how many were sent."""
        with self._lock:
            events = self.pipeline.tick(self.clock())
        with self._events_lock:
            events, self._events = self._events + events, []
        if events:
            try:
                self.service.ingest_events("logs", events, actor="logs")
            except Exception:
                with self._events_lock:  # kept for the next turn
                    self._events = events + self._events
                raise
            if self.metrics is not None:
                for e in events:
                    self.metrics.anomalies.labels(e.labels.get("reason", "")).inc()
        return len(events)

    def save(self, *, everything: bool = False) -> None:
        with self._lock:
            states = self.pipeline.states(everything=everything)
        self.store.save_states(states, STATE_VERSION, self.clock())

    def prune(self) -> retention.Pruned:
        """Raw lines past the window or the size cap; counts and templates past ``retention_days``."""
        now = self.clock()
        keep = self.config.retention
        days = self.service.settings.retention_days
        before = now - timedelta(hours=keep.raw_hours)
        deleted = self.store.prune(before, int(keep.max_mb * 1024 * 1024),
                                   now - timedelta(days=days) if days > 0 else None)
        return retention.Pruned(before, log_lines=deleted)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> LogIngest:
        cfg = self.config
        try:
            _ = self.pipeline
            self._open_files()
        except Exception as exc:  # the database is away: files wait for their stored offsets, state loads later
            log.warning("log inputs wait for the database", error=str(exc))
        max_frame = cfg.max_line_bytes
        if (address := cfg.syslog.udp_address()) is not None:
            self.udp = UdpListener(address, self.syslog_handler("udp"), max_frame).start()
        if (address := cfg.syslog.tcp_address()) is not None:
            self.tcp = TcpListener(address, self.syslog_handler("tcp"), max_frame, cfg.syslog.max_connections).start()
        self._spawn("watchkeeper-logs-files", self._files_loop) if cfg.files else None
        self._spawn("watchkeeper-logs-ticker", self._ticker_loop)
        return self

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _files_loop(self) -> None:
        while not self._stopped.wait(self.config.poll_seconds):
            try:
                if not self._tailers:  # not opened yet: the database was away at start
                    self._open_files()
                self.poll_files()
            except Exception as exc:
                with contextlib.suppress(Exception):
                    log.error("log files poll failed", error=str(exc))

    def _ticker_loop(self) -> None:
        saved = time.monotonic()
        while not self._stopped.wait(TICK_SECONDS):
            try:
                self.tick()
                if time.monotonic() - saved >= SAVE_SECONDS:
                    saved = time.monotonic()
                    self.save()
            except Exception as exc:
                with contextlib.suppress(Exception):
                    log.error("log anomalies turn failed", error=str(exc))

    def stop(self) -> None:
        self._stopped.set()
        for listener in (self.udp, self.tcp):
            if listener is not None:
                listener.stop()
        for thread in self._threads:
            thread.join(timeout=30)
        if self._tailers:
            with contextlib.suppress(Exception):
                self.poll_files()
        for _spec, tailer, _ in self._tailers.values():
            tailer.close()
        for step in (self.tick, lambda: self.save(everything=True)):
            try:
                step()
            except Exception as exc:
                with contextlib.suppress(Exception):
                    log.error("logs not saved at stop", error=str(exc))

    def log_anomalies(self, service: str, start: datetime, end: datetime) -> list[LogAnomaly]:
        """The log anomalies of ``service`` between ``start`` and ``end``, judged from the stored
        per-minute counts (the baseline learns from the :data:`HISTORY` before ``start``): what
        the ranker reads."""
        rows = self.store.counts(service=service, start=start - HISTORY, end=end)
        return anomalies_in(rows, start, end, self.config.anomalies)

    def sources(self) -> list[InputStatus]:
        """The configured inputs: raw lines kept (in the retention window), dead letters kept and
        (files) the stored offset; ``lines``/``bad`` since this process started are in ``/metrics``."""
        cfg = self.config
        stored = self.store.offsets()
        kept = self.store.kept_by_input()
        dead = self.store.dead_letters_by_source()
        out: list[InputStatus] = []
        for spec in cfg.files:
            name = f"file:{spec.path}"
            offset, _lines, at = stored.get(name, (None, 0, None))
            out.append(InputStatus(name, "file", spec.service, str(spec.path), kept.get(name, 0), dead.get(name, 0),
                                   offset, at))
        for transport, address in (("udp", cfg.syslog.udp), ("tcp", cfg.syslog.tcp)):
            if address:
                name = f"syslog-{transport}"
                out.append(InputStatus(name, "syslog", cfg.syslog.service or "(APP-NAME)", address,
                                       kept.get(name, 0), dead.get(name, 0)))
        out.append(InputStatus("otlp", "otlp", "(service.name)", "POST /v1/logs", kept.get("otlp", 0),
                               dead.get("otlp", 0)))
        return out

