"""The span: one timed operation of one service inside a trace, as every trace source gives it.

Times are unix seconds (floats); ``parent_id`` is ``None`` for a root span. ``kind`` is OpenTelemetry's
span kind in lower case (``server``, ``client``, ``internal``, ``producer``, ``consumer``); sources that
do not know it leave ``internal``.

>>> Span("t1", "s1", None, "frontend", "GET /cart", 1700000000.0, 0.012, False, "server").kind
'server'
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = frozenset({"server", "client", "internal", "producer", "consumer"})


@dataclass(frozen=True, slots=True)
class Span:
    """One span; ``start`` in unix seconds, ``duration`` in seconds, ``error`` its status was an error."""

    trace_id: str
    span_id: str
    parent_id: str | None
    service: str
    operation: str
    start: float
    duration: float
    error: bool
    kind: str = "internal"
    peer: str | None = None  # the service a client span calls, when the source says (``peer.service``)
