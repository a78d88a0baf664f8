"""Log evidence for the ranker: per service, which log templates rose after the onset, and how much.

The ranker takes ``Evidence.log_anomalies``: ``service -> float`` (a score from a log detector, on the
scale of a robust z) or ``service ->`` :class:`LogAnomaly` (the score and the templates that gave it).
:func:`log_anomalies` computes them from log lines when no detector is running (the evaluation):

- a line's *template* is its message with the variable parts masked (:func:`template_of`; a real
  template miner's ids can be passed instead);
- for each (service, template): ``expected = count before × window / reference``, and the rise
  ``z = (after − expected) / sqrt(expected + 1)`` — a Poisson-style score, so a template never seen
  before that appears 30 times scores ≈ 30 and one that doubles from 100 to 200 scores ≈ 10;
- templates at ``ERROR``/``FATAL`` count in full, ``WARN`` ×0.75, others (info, debug, unknown) ×0.5: a
  code fault shows as new error lines, while ordinary lines rise and fall with the load;
- the service's score is the largest; the evidence keeps its three best templates.

>>> lines = [(float(t), "cart", "INFO", f"GET /cart user={t}") for t in range(0, 3600, 10)]
>>> lines += [(3600.0 + t, "cart", "ERROR", f"redis timeout after {t} ms") for t in range(30)]
>>> a = log_anomalies(lines, onset=3600.0)
>>> round(a["cart"].score, 1), a["cart"].templates[0]["template"]
(30.0, 'redis timeout after <*> ms')
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LogAnomaly", "log_anomalies", "log_score", "score_counts", "template_of"]

#: Weight of a template's rise by its severity (upper case; unknown severities weigh like INFO).
SEVERITY_WEIGHT: dict[str, float] = {"FATAL": 1.0, "ERROR": 1.0, "WARN": 0.75}
OTHER_WEIGHT = 0.5

_MASKS = [
    re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),  # uuid
    re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"),  # ip[:port]
    re.compile(r"\b(?:0x)?[0-9a-fA-F]*\d[0-9a-fA-F]*\b"),  # numbers, hex ids
    re.compile(r"\"[^\"]{0,200}\"|'[^']{0,200}'"),  # quoted values
    re.compile(r"(?<==)[^\s,;&)\]}]+"),  # key=value
]
_MASK = re.compile("|".join(f"(?:{m.pattern})" for m in _MASKS))
_RUNS = re.compile(r"(?:<\*>[.:/_-]?)+<\*>")
_SPACES = re.compile(r"\s+")


def template_of(message: str, max_chars: int = 300) -> str:
    """The message with its variable parts masked as ``<*>`` (ids, numbers, addresses, quoted and
    ``key=value`` values), on its first line, cut to ``max_chars``.

    >>> template_of("TraceID: 04c707fa SpanID: 7f8791f4 charged card 4432 for user='ann' amount=12.5")
    'TraceID: <*> SpanID: <*> charged card <*> for user=<*> amount=<*>'
    """
    text = _MASK.sub("<*>", message.split("\n", 1)[0][:max_chars])
    return _SPACES.sub(" ", _RUNS.sub("<*>", text)).strip()


@dataclass(frozen=True, slots=True)
class LogAnomaly:
    """A service's log score and the templates that gave it (each ``{template, severity, before, after,
    z}``), best first; ``first_at``: when the best template first appeared after the onset (the ranker
    orders anomalies by it, as it does metrics' first crossing)."""

    score: float
    templates: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)
    first_at: float | None = None


def log_score(value: float | LogAnomaly) -> float:
    """The score of either form of ``Evidence.log_anomalies`` values."""
    return float(value.score) if isinstance(value, LogAnomaly) else float(value)


def log_anomalies(
    lines: Iterable[tuple[float, str, str, str]],
    onset: float,
    *,
    reference_s: float = 3600.0,
    window_s: float = 300.0,
    templated: bool = False,
) -> dict[str, LogAnomaly]:
    """Score ``(at, service, severity, message)`` lines around ``onset`` (see the module docstring);
    ``templated`` says the last field already is a template (from a miner)."""
    before: dict[tuple[str, str], int] = {}
    after: dict[tuple[str, str], int] = {}
    first_after: dict[tuple[str, str], float] = {}
    severity_of: dict[tuple[str, str], str] = {}
    start, end = onset - reference_s, onset + window_s
    for at, service, severity, message in lines:
        if at < start or at >= end:
            continue
        key = (service, message if templated else template_of(message))
        into = before if at < onset else after
        into[key] = into.get(key, 0) + 1
        if at >= onset and at < first_after.get(key, math.inf):
            first_after[key] = at
        sev = severity.upper()
        if SEVERITY_WEIGHT.get(sev, OTHER_WEIGHT) >= SEVERITY_WEIGHT.get(severity_of.get(key, ""), OTHER_WEIGHT):
            severity_of[key] = sev
    return score_counts(before, after, severity_of, first_after, window_s / reference_s if reference_s > 0 else 0.0)


def score_counts(
    before: Mapping[tuple[str, str], int], after: Mapping[tuple[str, str], int],
    severity_of: Mapping[tuple[str, str], str], first_after: Mapping[tuple[str, str], float], ratio: float,
) -> dict[str, LogAnomaly]:
    """:func:`log_anomalies` from counts per (service, template) before and after the onset; ``ratio``:
    the window's length over the reference's."""
    found: dict[str, list[dict[str, Any]]] = {}
    for key, n_after in after.items():
        n_before = before.get(key, 0)
        expected = n_before * ratio
        z = (n_after - expected) / math.sqrt(expected + 1.0)
        if z <= 0:
            continue
        sev = severity_of.get(key, "")
        weighted = z * SEVERITY_WEIGHT.get(sev, OTHER_WEIGHT)
        found.setdefault(key[0], []).append({"template": key[1], "severity": sev, "before": n_before,
                                             "after": n_after, "z": round(weighted, 4),
                                             "first_at": first_after.get(key)})
    out: dict[str, LogAnomaly] = {}
    for service, templates in found.items():
        templates.sort(key=lambda d: -float(d["z"]))
        first = templates[0]["first_at"]
        out[service] = LogAnomaly(float(templates[0]["z"]), tuple(templates[:3]),
                                  float(first) if first is not None else None)
    return out
