"""One log line as every input hands it on, and the guess of a plain line's level."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import NamedTuple

from watchkeeper.model import Severity

#: A level word near the start of a plain line (``2026-12-03 ERROR …``, ``[warn]``, ``level=error``).
_LEVEL = re.compile(
    r"\b(?:level=)?(FATAL|CRIT(?:ICAL)?|EMERG(?:ENCY)?|ALERT|ERROR|ERR|SEVERE|WARN(?:ING)?|INFO|NOTICE|DEBUG|TRACE)\b",
    re.IGNORECASE,
)
_LEVELS = {
    "fatal": Severity.CRITICAL, "crit": Severity.CRITICAL, "critical": Severity.CRITICAL,
    "emerg": Severity.CRITICAL, "emergency": Severity.CRITICAL, "alert": Severity.CRITICAL,
    "error": Severity.ERROR, "err": Severity.ERROR, "severe": Severity.ERROR,
    "warn": Severity.WARNING, "warning": Severity.WARNING,
}
#: Lines that say an error without a level word.
_ERRORISH = re.compile(r"Traceback \(most recent call last\)|\bException\b|\bpanic:", re.IGNORECASE)
#: The same two patterns for an ASCII line already lower-cased (on ASCII text IGNORECASE changes
#: nothing else, so they find what the two above find, without case folding at every position).
_LEVEL_LOWER = re.compile(_LEVEL.pattern.lower())
_ERRORISH_LOWER = re.compile(_ERRORISH.pattern.lower())
#: Every level word and error phrase above holds one of these: a line holding none states no level.
_HINTS = ("err", "warn", "info", "fatal", "crit", "emerg", "alert", "severe", "notice", "debug", "trace",
          "exception", "panic:")


def level_of(line: str) -> Severity:
    """The level a plain line states (in its first 200 characters); INFO when it states none.

    >>> level_of("2026-12-03 12:00:01 ERROR db: timeout"), level_of("[warn] slow"), level_of("GET / 200")
    (<Severity.ERROR: 'error'>, <Severity.WARNING: 'warning'>, <Severity.INFO: 'info'>)
    >>> level_of("Traceback (most recent call last):"), level_of("[WARNING] \u00e9t\u00e9")
    (<Severity.ERROR: 'error'>, <Severity.WARNING: 'warning'>)
    """
    head = line[:200]
    if not head.isascii():  # Unicode case folding (U+017F matches s): the case-blind patterns decide
        found = _LEVEL.search(head)
        if found is not None:
            return _LEVELS.get(found.group(1).lower(), Severity.INFO)
        return Severity.ERROR if _ERRORISH.search(head) else Severity.INFO
    low = head.lower()
    for hint in _HINTS:  # most lines state no level: a few substring tests say so
        if hint in low:
            break
    else:
        return Severity.INFO
    found = _LEVEL_LOWER.search(low)
    if found is not None:
        return _LEVELS.get(found.group(1), Severity.INFO)
    return Severity.ERROR if _ERRORISH_LOWER.search(low) else Severity.INFO


#: The attributes of a record that has none (shared, read-only).
NO_ATTRIBUTES: Mapping[str, str] = MappingProxyType({})


class LogRecord(NamedTuple):
    """One log line of one service. ``at`` is the line's own time when its input knows it (syslog,
    OTLP), else its receipt; ``input`` names where it came from (``file:/var/log/x.log``,
    ``syslog-udp``, ``otlp``). A named tuple: one is made per line, and a tuple is made fastest."""

    service: str
    at: datetime
    body: str
    severity: Severity
    input: str
    attributes: Mapping[str, str] = NO_ATTRIBUTES


#: Where structured (JSON-lines) logs keep the message, the level, the time and the trace context,
#: in the spellings common loggers use (structlog, logrus, zap, pino, Python's json loggers, OTel).
_MESSAGE_KEYS = ("message", "msg", "event", "body", "log")
_LEVEL_KEYS = ("level", "severity", "levelname", "lvl", "log.level")
_TIME_KEYS = ("timestamp", "time", "ts", "@timestamp")
_ATTRIBUTE_KEYS = ("trace_id", "span_id", "traceId", "spanId", "logger", "instance")


def from_json_line(service: str, line: str, received: datetime, input_name: str) -> LogRecord | None:
    """A structured (JSON object per line) log line as a record: its message, its level, its own time
    (ISO 8601 or unix seconds, else the receipt) and its trace context as attributes; None when the
    line is not a JSON object with a message (it is then taken as plain text).

    >>> from datetime import UTC, datetime
    >>> r = from_json_line("web", '{"timestamp": "2026-12-03T12:00:01Z", "level": "ERROR", '
    ...                    '"message": "db timeout", "trace_id": "ab12"}', datetime(2026, 1, 1, tzinfo=UTC), "file:x")
    >>> r.body, r.severity.value, r.at.isoformat(), dict(r.attributes)
    ('db timeout', 'error', '2026-12-03T12:00:01+00:00', {'trace_id': 'ab12'})
    >>> from_json_line("web", "GET / 200", datetime(2026, 1, 1, tzinfo=UTC), "file:x") is None
    True
    """
    if not line.startswith("{"):
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    message = next((doc[k] for k in _MESSAGE_KEYS if isinstance(doc.get(k), str)), None)
    if message is None:
        return None
    level = next((str(doc[k]) for k in _LEVEL_KEYS if doc.get(k) is not None), "")
    severity = _LEVELS.get(level.strip().lower()) if level else None
    at = _time_of(next((doc[k] for k in _TIME_KEYS if doc.get(k) is not None), None)) or received
    attributes = {k: str(doc[k]) for k in _ATTRIBUTE_KEYS if doc.get(k) is not None}
    return LogRecord(service, at, message, severity or level_of(message), input_name, attributes)


def _time_of(value: object) -> datetime | None:
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value) / (1000.0 if value > 1e11 else 1.0)  # milliseconds, as pino writes
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str):
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None
