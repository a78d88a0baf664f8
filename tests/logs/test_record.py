"""``level_of``'s fast path (lower-case ASCII, substring hints) says what the case-blind patterns say."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from watchkeeper.logs.record import _ERRORISH, _LEVEL, _LEVELS, level_of
from watchkeeper.model import Severity

WORDS = [
    "ERROR",
    "err",
    "Warn",
    "warning",
    "INFO",
    "fatal",
    "CRIT",
    "critical",
    "emerg",
    "alert",
    "SEVERE",
    "notice",
    "debug",
    "trace",
    "level=error",
    "Exception",
    "panic:",
    "Traceback (most recent call last)",
    "errors",
    "xerror",
    "info_x",
    "GET",
    "/api/v1",
    "200",
    "=",
    "[",
    "]",
    ":",
    " ",
    "\u017fevere",
    "\u212aey",
    "\u0130nfo",
    "\u00e9t\u00e9",
    "_",
    "-",
    "12:00:01",
]


def reference(line: str) -> Severity:
    """What ``level_of`` said before its fast path: the case-blind patterns on the first 200 characters."""
    head = line[:200]
    found = _LEVEL.search(head)
    if found is not None:
        return _LEVELS.get(found.group(1).lower(), Severity.INFO)
    return Severity.ERROR if _ERRORISH.search(head) else Severity.INFO


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(WORDS) | st.text(max_size=6), max_size=14).map("".join))
def test_level_of_agrees_with_the_case_blind_patterns(line: str) -> None:
    assert level_of(line) == reference(line)


def test_level_of_examples() -> None:
    cases = {
        "2026-12-03 12:00:01 ERROR db: timeout": Severity.ERROR,
        "[warn] slow": Severity.WARNING,
        "level=critical disk full": Severity.CRITICAL,
        "GET /api/v1/orders 200 12ms": Severity.INFO,
        "INFO then ERROR": Severity.INFO,  # the first level word wins
        "errors: 0": Severity.INFO,  # not a level word
        "java.lang.Exception: boom": Severity.ERROR,
        "\u017fevere: U+017F matches s, but names no level": Severity.INFO,  # not ASCII: the case-blind pattern
        "x" * 200 + " ERROR": Severity.INFO,  # past the first 200 characters
    }
    assert {line: level_of(line) for line in cases} == cases
