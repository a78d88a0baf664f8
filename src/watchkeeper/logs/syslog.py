"""Syslog messages (RFC 5424 and RFC 3164) and their TCP framing (RFC 6587: octet counting or
newline), pure: bytes in, :class:`Message` out; a bad frame raises :class:`BadFrame`.

>>> m = parse(b'<164>1 2003-10-11T22:14:15.003Z host app 42 ID47 [ex@1 a="b"] disk full')
>>> m.app, m.severity.value, m.text, m.at.isoformat()
('app', 'warning', 'disk full', '2003-10-11T22:14:15.003000+00:00')
>>> m = parse(b"<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed", now=datetime(2026, 1, 1, tzinfo=UTC))
>>> m.app, m.severity.value, m.text, m.at.year
('su', 'critical', "'su root' failed", 2025)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from watchkeeper.model import Severity

#: RFC 5424 severities 0-7 onto the four levels.
SEVERITIES = (Severity.CRITICAL, Severity.CRITICAL, Severity.CRITICAL, Severity.ERROR,
              Severity.WARNING, Severity.INFO, Severity.INFO, Severity.INFO)
#: The longest MSG-LEN prefix an octet-counted frame may have (digits).
MAX_COUNT_DIGITS = 9

_PRI = re.compile(rb"<(\d{1,3})>")
_3164_TIME = re.compile(r"([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) ")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), start=1)}
_TAG = re.compile(r"([^\s:\[]{1,48})(?:\[([^\]]{0,128})\])?:? ?")


class BadFrame(ValueError):
    """A frame that is not a syslog message (or not UTF-8, or too long); ``fatal``: the stream's
    framing is lost and the connection must be closed."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


@dataclass(frozen=True, slots=True)
class Message:
    at: datetime | None
    severity: Severity
    facility: int
    host: str | None
    app: str | None
    text: str
    procid: str | None = None
    msgid: str | None = None


def parse(frame: bytes, *, now: datetime | None = None) -> Message:
    """One syslog message; RFC 5424 when VERSION follows PRI, else RFC 3164 (a missing PRI is
    taken as user.notice, as RFC 3164 section 4.3.3 says)."""
    frame = frame.rstrip(b"\r\n\x00")
    if not frame:
        raise BadFrame("an empty frame")
    try:
        text = frame.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadFrame(f"not UTF-8 at byte {exc.start}") from None
    text = text.removeprefix("\ufeff")
    found = _PRI.match(frame)
    pri = 13
    if found is not None:
        pri = int(found.group(1))
        if pri > 191:
            raise BadFrame(f"PRI {pri} is above 191")
        text = text[found.end():]
    facility, severity = divmod(pri, 8)
    if text.startswith("1 "):
        return _rfc5424(text[2:], facility, SEVERITIES[severity])
    return _rfc3164(text, facility, SEVERITIES[severity], now or datetime.now(UTC))


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def _rfc5424(text: str, facility: int, severity: Severity) -> Message:
    parts = text.split(" ", 5)
    if len(parts) < 5:
        raise BadFrame("RFC 5424 header is cut short (TIMESTAMP HOSTNAME APP-NAME PROCID MSGID)")
    stamp, host, app, procid, msgid = parts[:5]
    rest = parts[5] if len(parts) > 5 else ""
    at = None
    if stamp != "-":
        try:
            at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            raise BadFrame(f"RFC 5424 TIMESTAMP {stamp[:40]!r} is not RFC 3339") from None
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return Message(at, severity, facility, _nil(host), _nil(app), _skip_sd(rest), _nil(procid), _nil(msgid))


def _skip_sd(rest: str) -> str:
    """MSG after STRUCTURED-DATA (``-`` or ``[id k="v" …]…``, with ``\\]`` escapes)."""
    if rest.startswith("-"):
        return rest[2:] if rest.startswith("- ") else rest[1:]
    i = 0
    while i < len(rest) and rest[i] == "[":
        i += 1
        quoted = False
        while i < len(rest) and (quoted or rest[i] != "]"):
            if rest[i] == "\\":
                i += 1
            elif rest[i] == '"':
                quoted = not quoted
            i += 1
        if i >= len(rest):
            raise BadFrame("RFC 5424 STRUCTURED-DATA is not closed")
        i += 1
    if i == 0:
        raise BadFrame("RFC 5424 STRUCTURED-DATA must be '-' or start with '['")
    return rest[i + 1:] if rest[i:i + 1] == " " else rest[i:]


def _rfc3164(text: str, facility: int, severity: Severity, now: datetime) -> Message:
    at = None
    host = None
    found = _3164_TIME.match(text)
    if found is not None:
        month, day, hh, mm, ss = found.groups()
        try:
            at = datetime(now.year, _MONTHS[month], int(day), int(hh), int(mm), int(ss), tzinfo=UTC)
        except (KeyError, ValueError):
            at = None
        if at is not None and (at - now).days > 30:  # December's line read in January
            at = at.replace(year=now.year - 1)
        text = text[found.end():]
        host, sep, rest = text.partition(" ")
        if sep and not host.endswith(":"):
            text = rest
        else:
            host = None
    tag = _TAG.match(text)
    app = procid = None
    if tag is not None and tag.group(0).rstrip().endswith((":", "]")):
        app, procid = tag.group(1), tag.group(2)
        text = text[tag.end():]
    return Message(at, severity, facility, host, app, text, procid)


class Framer:
    """Cuts a TCP byte stream into frames: octet counting (``LEN SP MSG``) when a frame starts with
    a digit, else newline framing (RFC 6587). ``feed`` returns whole frames and the bad ones as
    :class:`BadFrame` values; after a fatal one the stream is given up.

    >>> f = Framer(100)
    >>> f.feed(b"5 <13>a<13>b\\n15 <13>hello w")
    [b'<13>a', b'<13>b']
    >>> f.feed(b"orld")
    [b'<13>hello world']
    """

    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._skipping = False  # inside an oversized newline frame: drop until its newline

    def feed(self, data: bytes) -> list[bytes | BadFrame]:
        buf = self._buf
        buf += data
        out: list[bytes | BadFrame] = []
        pos = 0
        while pos < len(buf):
            if self._skipping:
                end = buf.find(b"\n", pos)
                if end < 0:
                    pos = len(buf)
                    break
                self._skipping = False
                pos = end + 1
                continue
            first = buf[pos]
            if 0x30 <= first <= 0x39:  # octet counting
                space = buf.find(b" ", pos, pos + MAX_COUNT_DIGITS + 1)
                if space < 0:
                    if len(buf) - pos > MAX_COUNT_DIGITS:
                        del buf[:]
                        out.append(BadFrame(f"bad octet count {bytes(buf[pos:pos + 12])!r}", fatal=True))
                        return out
                    break
                digits = bytes(buf[pos:space])
                if not digits.isdigit():
                    del buf[:]
                    out.append(BadFrame(f"bad octet count {digits[:12]!r}", fatal=True))
                    return out
                size = int(digits)
                if size == 0 or size > self.max_frame:
                    del buf[:]
                    out.append(BadFrame(f"octet count {size} is outside 1..{self.max_frame}", fatal=True))
                    return out
                if len(buf) - space - 1 < size:
                    break
                out.append(bytes(buf[space + 1:space + 1 + size]))
                pos = space + 1 + size
            else:
                end = buf.find(b"\n", pos)
                if end < 0:
                    if len(buf) - pos > self.max_frame:
                        out.append(BadFrame(f"a frame longer than {self.max_frame} bytes"))
                        self._skipping = True
                        pos = len(buf)
                    break
                if end - pos > self.max_frame:
                    out.append(BadFrame(f"a frame longer than {self.max_frame} bytes"))
                elif end > pos and buf[pos:end].strip():
                    out.append(bytes(buf[pos:end]))
                pos = end + 1
        del buf[:pos]
        return out

    def rest(self) -> bytes:
        """What is left when the stream ends (a last frame without newline)."""
        rest, self._buf = bytes(self._buf), bytearray()
        return b"" if self._skipping else rest.strip(b"\r\n")
