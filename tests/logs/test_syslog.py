"""Syslog parsing and RFC 6587 framing: table-driven, with the hostile frames."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from watchkeeper.logs.syslog import BadFrame, Framer, parse
from watchkeeper.model import Severity

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("frame", "app", "host", "severity", "text"), [
    # logger --rfc5424 (util-linux)
    (b'<13>1 2026-12-03T11:59:58.123456+00:00 box alice - - [timeQuality tzKnown="1" isSynced="0"] hello',
     "alice", "box", Severity.INFO, "hello"),
    (b"<11>1 - - - - - - no header", None, None, Severity.ERROR, "no header"),
    (b'<12>1 2026-12-03T11:59:58Z h app 1 m [a x="]\\]"][b] msg [x] y', "app", "h", Severity.WARNING, "msg [x] y"),
    (b"<8>1 2026-12-03T11:59:58Z h app - - -", "app", "h", Severity.CRITICAL, ""),
    # logger --rfc3164
    (b"<13>Dec  3 11:59:58 box alice: hello there", "alice", "box", Severity.INFO, "hello there"),
    (b"<27>Dec  3 11:59:58 box sshd[42]: failed", "sshd", "box", Severity.ERROR, "failed"),
    (b"no pri at all", None, None, Severity.INFO, "no pri at all"),
    (b"\xef\xbb\xbf<14>1 - h a - - - bom", "a", "h", Severity.INFO, "bom"),
])
def test_messages_parse(frame: bytes, app: str | None, host: str | None, severity: Severity, text: str) -> None:
    msg = parse(frame.replace(b"\xef\xbb\xbf", b"") if frame.startswith(b"\xef") else frame, now=NOW)
    assert (msg.app, msg.host, msg.severity, msg.text) == (app, host, severity, text)


def test_rfc3164_time_is_this_year_or_last() -> None:
    assert parse(b"<13>Dec  3 11:59:58 box a: x", now=NOW).at == datetime(2026, 12, 3, 11, 59, 58, tzinfo=UTC)
    assert parse(b"<13>Dec 31 23:59:58 box a: x", now=datetime(2027, 1, 1, tzinfo=UTC)).at.year == 2026  # type: ignore[union-attr]


@pytest.mark.parametrize(("frame", "why"), [
    (b"<13>1 2026-12-03T11:59:58Z h a - - - caf\xe9", "not UTF-8"),
    (b"<999>hello", "above 191"),
    (b"<13>1 yesterday h a - - - x", "not RFC 3339"),
    (b"<13>1 2026-12-03T11:59:58Z h a - - [open", "not closed"),
    (b"<13>1 2026-12-03T11:59:58Z h", "cut short"),
    (b"\n\r", "empty"),
])
def test_bad_frames_say_why(frame: bytes, why: str) -> None:
    with pytest.raises(BadFrame, match=why):
        parse(frame, now=NOW)


def test_framing_mixes_octet_counting_and_newlines_across_chunks() -> None:
    framer = Framer(64)
    stream = b"5 <13>a" + b"<13>line one\n" + b"\n" + b"9 <13>bcdef" + b"<13>tail"
    got: list[bytes | BadFrame] = []
    for i in range(0, len(stream), 3):  # worst case: three bytes at a time
        got.extend(framer.feed(stream[i:i + 3]))
    assert got == [b"<13>a", b"<13>line one", b"<13>bcdef"]
    assert framer.rest() == b"<13>tail"


@pytest.mark.parametrize(("data", "fatal"), [
    (b"99999 <13>x", True),  # above the frame limit
    (b"0 <13>x", True),  # zero
    (b"12345678901234 <13>x", True),  # more digits than a count has
    (b"12a4 <13>x", True),  # not a number
])
def test_bad_octet_counts_end_the_stream(data: bytes, fatal: bool) -> None:
    got = Framer(100).feed(data)
    assert len(got) == 1 and isinstance(got[0], BadFrame) and got[0].fatal is fatal


def test_an_oversized_newline_frame_is_refused_and_the_next_one_kept() -> None:
    framer = Framer(16)
    got = framer.feed(b"<13>" + b"x" * 40)
    got += framer.feed(b"y" * 10 + b"\n<13>next\n")
    assert [type(g).__name__ for g in got] == ["BadFrame", "bytes"]
    assert got[1] == b"<13>next"
