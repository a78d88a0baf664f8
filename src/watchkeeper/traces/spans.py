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
#: Operation names of a web framework's error handler. Spring Boot forwards a request whose handler threw
#: to ``/error``, served by ``BasicErrorController.error``: a span of it inside a request means that
#: request failed, even where the tracer recorded no status (exports without a status column).
ERROR_HANDLERS = ("ErrorController.error", "/error")


def is_error_handler(operation: str) -> bool:
    """Whether a span of ``operation`` is a framework's error handler (see :data:`ERROR_HANDLERS`).

    >>> is_error_handler("BasicErrorController.error"), is_error_handler("GET /error")
    (True, True)
    >>> is_error_handler("OrderController.getOrderById"), is_error_handler("/api/v1/errors/list")
    (False, False)
    """
    return operation.endswith(ERROR_HANDLERS)




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
