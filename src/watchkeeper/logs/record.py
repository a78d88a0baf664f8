"""One log line as every input hands it on, and the guess of a plain line's level."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

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


def level_of(line: str) -> Severity:
    """The level a plain line states (in its first 200 characters); INFO when it states none.

    >>> level_of("2026-12-03 12:00:01 ERROR db: timeout"), level_of("[warn] slow"), level_of("GET / 200")
    (<Severity.ERROR: 'error'>, <Severity.WARNING: 'warning'>, <Severity.INFO: 'info'>)
    """
    head = line[:200]
    found = _LEVEL.search(head)
    if found is not None:
        return _LEVELS.get(found.group(1).lower(), Severity.INFO)
    return Severity.ERROR if _ERRORISH.search(head) else Severity.INFO


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One log line of one service. ``at`` is the line's own time when its input knows it (syslog,
    OTLP), else its receipt; ``input`` names where it came from (``file:/var/log/x.log``,
    ``syslog-udp``, ``otlp``)."""

    service: str
    at: datetime
    body: str
    severity: Severity
    input: str
    attributes: Mapping[str, str] = field(default_factory=dict)
