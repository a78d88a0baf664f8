"""From spans to the service call graph and RED series (rate, errors, duration), batch or streaming.

A span's *caller* is the service of its parent span (resolved through ``parent_id``); a span whose
parent is in another service, or that has no parent, is an *entry* span of its service: one request
the service served. From these:

- the **call graph**: an edge caller → callee per cross-service parent → child pair, with ``calls``
  (how many), ``errors`` and ``rate`` (calls per second over the seconds observed);
- **RED series** at a fixed step (default 60 s), shaped like ``rca.Evidence.metrics``
  (``service -> metric -> (t, values)``), ``t`` being each bucket's *end* (the time its value is
  known, like a Prometheus sample summarising the step before it). On each service:

  ``trace.rate`` (entry spans per second), ``trace.error_ratio``, ``trace.latency_p50/p95/p99``
  (entry spans' duration, seconds, server side), ``trace.self_p50/p95`` (the service's own time:
  each span's duration minus its children's, client spans left out);

  ``edge:<caller>-><callee>.rate``, ``.error_ratio``, ``.latency_p50/p95/p99`` on the *callee*: the
  calls into it as its caller saw them (the duration of the caller's client span when there is one,
  else the callee's server span), and ``.net_p50/p95`` — caller-observed minus server-side duration,
  the time spent on the link (network, queues, retries): a delay injected on one edge raises it while
  the callee's ``trace.latency_*`` stays flat;

  ``op:<operation>.rate``, ``.error_ratio``, ``.latency_p50/p95/p99`` per operation the service serves
  (at most ``max_operations`` per service; the rest pool into ``op:other``);

  what its requests did downstream, for failures that leave no status code (a wrong return value, an
  exception the caller turns into an early exit): ``trace.calls_per_request`` (remote calls per entry
  span, its own nested spans included) and ``trace.no_call_share`` (the share of requests that called
  nobody); on the callee, ``edge:<caller>-><callee>.last_share`` (the share of the caller's requests
  whose *last* remote call went to it: where a request that fails fast stops) and
  ``.orphan_ratio`` (the caller's client calls that got no server span at all — the callee crashed or
  did not answer — among all its calls to it; the callee is the span's ``peer`` when the source names
  it, else the one a call of the same client operation reached before).

A *client span* is one of kind ``client`` or ``producer``, or, for sources that do not record the
kind (``internal``), a span whose only child runs in another service — the way a caller wraps one RPC.

Buckets in which no span at all was seen are left out (missing data, not zero traffic); in a bucket
where others were seen, a service or edge without calls has rate 0 and no latency (NaN).

Latency percentiles come from a fixed log-spaced histogram per bucket (40 bins per decade, 1 µs to
10⁴ s; a percentile is the mean of the values in its bin: within the bin's 6 % of the exact value,
exact when they are equal), so the memory of a bucket depends
on the number of services, edges and operations, not on the number of spans.

>>> spans = [
...     Span("t", "a", None, "web", "GET /", 0.0, 0.30, False, "server"),
...     Span("t", "b", "a", "web", "db.query", 0.01, 0.25, False, "client"),
...     Span("t", "c", "b", "db", "query", 0.05, 0.10, False, "server"),
... ]
>>> g = call_graph(spans)
>>> list(g.edges(data="calls"))
[('web', 'db', 1)]
>>> s = red_series(spans, step=60.0)
>>> sorted(s["db"])[:3]
['edge:web->db.error_ratio', 'edge:web->db.last_share', 'edge:web->db.latency_p50']
>>> t, v = s["db"]["edge:web->db.net_p95"]
>>> float(t[0]), round(float(v[0]), 2)
(60.0, 0.15)
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from watchkeeper.traces.spans import Span

Array = np.ndarray[Any, np.dtype[np.float64]]
Series = dict[str, dict[str, tuple[Array, Array]]]

__all__ = ["Array", "RedAggregator", "Series", "call_graph", "edge_metric", "red_series"]

#: Histogram: ``BINS_PER_DECADE`` log-spaced bins from 10**LOG_MIN s to 10**LOG_MAX s.
BINS_PER_DECADE = 40
LOG_MIN = -6.0
LOG_MAX = 4.0
_NBINS = int((LOG_MAX - LOG_MIN) * BINS_PER_DECADE)
_CLIENT_KINDS = frozenset({"client", "producer"})
LATENCY_QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
SHORT_QUANTILES = {"p50": 0.5, "p95": 0.95}


def edge_metric(caller: str, callee: str, name: str) -> str:
    """The metric name of an edge series, kept on the callee: ``edge:<caller>-><callee>.<name>``.

    >>> edge_metric("frontend", "checkout", "latency_p95")
    'edge:frontend->checkout.latency_p95'
    """
    return f"edge:{caller}->{callee}.{name}"


def _bin(seconds: float) -> int:
    if not seconds > 0:
        return 0
    i = int((math.log10(seconds) - LOG_MIN) * BINS_PER_DECADE)
    return 0 if i < 0 else (_NBINS - 1 if i >= _NBINS else i)


def _quantile(hist: dict[int, list[float]], q: float) -> float:
    """The ``q`` quantile of a sparse histogram (bin -> [count, sum]): the mean of the values in the
    bin where the quantile falls (exact when they are all equal, within the bin's 6 % otherwise)."""
    bins = sorted(hist)
    counts = np.array([hist[b][0] for b in bins], dtype=np.float64)
    cum = np.cumsum(counts)
    i = min(int(np.searchsorted(cum, q * cum[-1], side="left")), len(bins) - 1)
    count, total = hist[bins[i]]
    return float(total / count)


@dataclass(slots=True)
class _Acc:
    """One bucket of one key: calls, errors, latency histogram, and (service / edge) a second one."""

    n: int = 0
    errors: int = 0
    lat: dict[int, list[float]] = field(default_factory=dict)
    extra: dict[int, list[float]] = field(default_factory=dict)  # self time (service) or link time (edge)
    calls: int = 0  # service: remote calls its entry spans made; edge: the caller's requests that ended here
    no_calls: int = 0  # service: entry spans that made no remote call
    orphans: int = 0  # edge: the caller's client calls that got no server span (the callee did not answer)

    def add(self, duration: float, error: bool) -> None:
        self.n += 1
        self.errors += error
        _put(self.lat, duration)

    def add_extra(self, seconds: float) -> None:
        _put(self.extra, seconds)


def _put(hist: dict[int, list[float]], seconds: float) -> None:
    b = _bin(seconds)
    cell = hist.get(b)
    if cell is None:
        hist[b] = [1.0, seconds]
    else:
        cell[0] += 1.0
        cell[1] += seconds


@dataclass(slots=True, eq=False)
class _Rec:
    span: Span
    parent: _Rec | None = None
    child_time: float = 0.0
    children: int = 0
    remote_children: int = 0
    final: bool = False
    kids: list[_Rec] | None = None

    def client_like(self) -> bool:
        kind = self.span.kind
        if kind in _CLIENT_KINDS:
            return True
        return kind == "internal" and self.children == 1 and self.remote_children == 1


class RedAggregator:
    """Streaming RED aggregation with bounded memory.

    ``add(span)`` in any order (children usually arrive before their parents); ``flush()`` returns the
    series of the buckets that closed since the last flush. A span is accounted once it is
    ``lateness_s`` older than the newest span seen (or than ``now``), so its parent and children have
    had that long to arrive; a bucket closes when all of it is accounted, and a span for a closed bucket
    is counted in ``late`` and dropped. At most ``max_spans`` spans wait to be accounted (beyond that the
    oldest is accounted at once and counted in ``forced``); accounted spans stay ``lateness_s`` longer so
    that late children still find their caller.

    >>> agg = RedAggregator(step=10.0, lateness_s=5.0)
    >>> for i in range(30):
    ...     agg.add(Span(f"t{i}", f"s{i}", None, "api", "GET", float(i), 0.01, i % 3 == 0, "server"))
    >>> out = agg.flush()               # newest span at 29 s: accounted up to 24 s, buckets to 20 s closed
    >>> out["api"]["trace.rate"][0].tolist(), out["api"]["trace.error_ratio"][1].tolist()
    ([10.0, 20.0], [0.4, 0.3])
    >>> agg.flush(final=True)["api"]["trace.rate"][1].tolist()
    [1.0]
    """

    def __init__(
        self,
        step: float = 60.0,
        *,
        lateness_s: float = 30.0,
        max_spans: int = 200_000,
        max_operations: int = 50,
        operations: bool = True,
    ) -> None:
        if not step > 0:
            raise ValueError(f"step must be positive, not {step!r}")
        if lateness_s < 0:
            raise ValueError(f"lateness_s must be at least 0, not {lateness_s!r}")
        self.step = float(step)
        self.lateness_s = float(lateness_s)
        self.max_spans = int(max_spans)
        self.max_operations = int(max_operations)
        self.operations = operations
        self.late = 0
        self.forced = 0
        self._index: dict[str, _Rec] = {}
        self._pending: dict[str, list[_Rec]] = {}
        self._heap: list[tuple[float, int, _Rec]] = []
        self._done: deque[_Rec] = deque()
        self._seq = 0
        self._newest = -math.inf
        self._closed_until = -math.inf  # bucket ends up to here are closed
        self._buckets: dict[int, dict[tuple[str, str], _Acc]] = {}
        self._ops: dict[str, set[str]] = {}
        self._calls: dict[tuple[str, str], list[int]] = {}
        self._seen_buckets: set[int] = set()
        #: (caller service, client operation) -> the callee its calls reached, learned from answered calls:
        #: a later call of that operation that gets no server span is one the callee never answered.
        self._peers: dict[tuple[str, str], str] = {}

    def __len__(self) -> int:
        """Spans held (waiting to be accounted, or kept for late children)."""
        return len(self._heap) + len(self._done)

    def add(self, span: Span) -> None:
        """Take one span."""
        if span.start < self._closed_until:
            self.late += 1
            return
        rec = _Rec(span)
        if span.parent_id:
            parent = self._index.get(span.parent_id)
            if parent is not None:
                self._link(rec, parent)
            else:
                self._pending.setdefault(span.parent_id, []).append(rec)
        for child in self._pending.pop(span.span_id, ()):
            self._link(child, rec)
        self._index[span.span_id] = rec
        heapq.heappush(self._heap, (span.start, self._seq, rec))
        self._seq += 1
        if span.start > self._newest:
            self._newest = span.start
        while len(self._heap) > self.max_spans:
            self.forced += 1
            self._account(heapq.heappop(self._heap)[2])
        while len(self._done) > self.max_spans:
            self._evict(self._done.popleft())

    def add_many(self, spans: Iterable[Span]) -> None:
        """Take many spans."""
        for s in spans:
            self.add(s)

    def flush(self, now: float | None = None, *, final: bool = False) -> Series:
        """Account the spans old enough, close the buckets they complete, return those buckets' series.

        ``now`` (unix seconds) replaces the newest span's start as the clock; ``final`` accounts and
        closes everything (the end of the input)."""
        if final:
            watermark = math.inf
        else:
            clock = self._newest if now is None else now
            watermark = clock - self.lateness_s
        while self._heap and self._heap[0][0] < watermark:
            self._account(heapq.heappop(self._heap)[2])
        while self._done and self._done[0].span.start < watermark - self.lateness_s:  # nan (inf - inf): keep
            self._evict(self._done.popleft())
        closing = sorted(b for b in self._buckets if final or (b + 1) * self.step <= watermark)
        if not final and math.isfinite(watermark):
            self._closed_until = max(self._closed_until, math.floor(watermark / self.step) * self.step)
        return self._series([(b, self._buckets.pop(b)) for b in closing])

    def graph(self) -> nx.DiGraph:
        """The call graph of every span accounted so far: ``calls``, ``errors``, ``rate`` per edge
        (calls per second over the seconds of the buckets that saw spans)."""
        seconds = max(len(self._seen_buckets) * self.step, 1e-9)
        g = nx.DiGraph()
        for (caller, callee), (calls, errors) in sorted(self._calls.items()):
            g.add_edge(caller, callee, calls=calls, errors=errors, rate=calls / seconds)
        return g

    # -- internals ---------------------------------------------------------------------------------

    def _acc(self, bucket: dict[tuple[str, str], _Acc], service: str, prefix: str) -> _Acc:
        key = (service, prefix)
        acc = bucket.get(key)
        if acc is None:
            acc = bucket[key] = _Acc()
        return acc

    def _account(self, rec: _Rec) -> None:
        span = rec.span
        rec.final = True
        self._done.append(rec)
        b = math.floor(span.start / self.step)
        self._seen_buckets.add(b)
        bucket = self._buckets.get(b)
        if bucket is None:
            bucket = self._buckets[b] = {}
        svc = span.service
        parent = rec.parent
        caller = parent.span.service if parent is not None else None
        client = rec.client_like()
        if not client:
            self._acc(bucket, svc, "trace").add_extra(max(span.duration - rec.child_time, 0.0))
        if caller == svc:
            return
        own = self._acc(bucket, svc, "trace")
        own.add(span.duration, span.error)
        self._requests(bucket, rec)
        if self.operations:
            ops = self._ops.setdefault(svc, set())
            op = span.operation
            if op not in ops:
                if len(ops) < self.max_operations:
                    ops.add(op)
                else:
                    op = "other"
            self._acc(bucket, svc, f"op:{op}").add(span.duration, span.error)
        if caller is None or parent is None:
            return
        edge = self._acc(bucket, svc, f"edge:{caller}->{svc}")
        error = span.error
        if parent.client_like():
            error = error or parent.span.error
            edge.add(parent.span.duration, error)
            edge.add_extra(max(parent.span.duration - span.duration, 0.0))
        else:
            edge.add(span.duration, error)
        tally = self._calls.setdefault((caller, svc), [0, 0])
        tally[0] += 1
        tally[1] += error

    def _link(self, child: _Rec, parent: _Rec) -> None:
        _link(child, parent)
        if parent.kids is None:
            parent.kids = []
        parent.kids.append(child)
        if child.span.service != parent.span.service and parent.children == 1:
            self._peers[(parent.span.service, parent.span.operation)] = child.span.service

    def _requests(self, bucket: dict[tuple[str, str], _Acc], entry: _Rec) -> None:
        """What one request served by ``entry``'s service did downstream: its remote calls (answered
        ones, and client calls of an operation known to reach a callee that got no server span —
        *orphans*: the callee did not answer), and which callee it called last (where a request that
        fails fast stops)."""
        svc = entry.span.service
        calls: list[tuple[float, str]] = []
        stack = [entry]
        while stack:
            rec = stack.pop()
            if not rec.kids:
                peer = (rec.span.peer or self._peers.get((svc, rec.span.operation))) if rec is not entry else None
                if peer is not None and peer != svc:
                    calls.append((rec.span.start, peer))
                    orphan = self._acc(bucket, peer, f"edge:{svc}->{peer}")
                    orphan.orphans += 1
                    tally = self._calls.setdefault((svc, peer), [0, 0])
                    tally[0] += 1
                    tally[1] += 1
                continue
            for kid in rec.kids:
                if kid.span.service == svc:
                    stack.append(kid)
                else:
                    calls.append((kid.span.start, kid.span.service))
        own = self._acc(bucket, svc, "trace")
        own.calls += len(calls)
        if not calls:
            own.no_calls += 1
            return
        last = max(calls)[1]
        self._acc(bucket, last, f"edge:{svc}->{last}").calls += 1

    def _evict(self, rec: _Rec) -> None:
        span = rec.span
        if self._index.get(span.span_id) is rec:
            del self._index[span.span_id]
        rec.kids = None
        if rec.parent is None and span.parent_id:
            self._pending.pop(span.parent_id, None)

    def _series(self, closing: list[tuple[int, dict[tuple[str, str], _Acc]]]) -> Series:
        out: Series = {}
        if not closing:
            return out
        t = np.array([(b + 1) * self.step for b, _ in closing], dtype=np.float64)
        keys = sorted({k for _, bucket in closing for k in bucket})
        for service, prefix in keys:
            accs = [bucket.get((service, prefix)) for _, bucket in closing]
            metrics = out.setdefault(service, {})
            n = np.array([a.n if a else 0 for a in accs], dtype=np.float64)
            has_calls = bool(n.any())
            if has_calls:
                err = np.array([a.errors if a else 0 for a in accs], dtype=np.float64)
                metrics[f"{prefix}.rate"] = (t, n / self.step)
                with np.errstate(invalid="ignore", divide="ignore"):
                    metrics[f"{prefix}.error_ratio"] = (t, np.where(n > 0, err / np.maximum(n, 1), np.nan))
                for name, q in LATENCY_QUANTILES.items():
                    v = [_quantile(a.lat, q) if a and a.lat else math.nan for a in accs]
                    metrics[f"{prefix}.latency_{name}"] = (t, np.array(v, dtype=np.float64))
            if prefix.startswith("op:"):
                continue
            extra = "self" if prefix == "trace" else "net"
            if any(a and a.extra for a in accs):
                for name, q in SHORT_QUANTILES.items():
                    v = [_quantile(a.extra, q) if a and a.extra else math.nan for a in accs]
                    metrics[f"{prefix}.{extra}_{name}"] = (t, np.array(v, dtype=np.float64))
            calls = np.array([a.calls if a else 0 for a in accs], dtype=np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                if prefix == "trace":
                    if has_calls:
                        none = np.array([a.no_calls if a else 0 for a in accs], dtype=np.float64)
                        metrics["trace.calls_per_request"] = (t, np.where(n > 0, calls / np.maximum(n, 1), np.nan))
                        metrics["trace.no_call_share"] = (t, np.where(n > 0, none / np.maximum(n, 1), np.nan))
                    continue
                caller = prefix.removeprefix("edge:").partition("->")[0]
                requests = np.array([b[(caller, "trace")].n if (caller, "trace") in b else 0 for _, b in closing],
                                    dtype=np.float64)
                if requests.any():
                    metrics[f"{prefix}.last_share"] = (t, np.where(requests > 0, calls / np.maximum(requests, 1),
                                                                   np.nan))
                orphans = np.array([a.orphans if a else 0 for a in accs], dtype=np.float64)
                if has_calls or orphans.any():  # zeros too: the baseline a crash is measured against
                    metrics[f"{prefix}.orphan_ratio"] = (t, np.where(n + orphans > 0, orphans / np.maximum(
                        n + orphans, 1), np.nan))
        return out


def _link(child: _Rec, parent: _Rec) -> None:
    child.parent = parent
    parent.child_time += child.span.duration
    parent.children += 1
    if child.span.service != parent.span.service:
        parent.remote_children += 1


def red_series(spans: Iterable[Span], step: float = 60.0, *, operations: bool = True) -> Series:
    """RED series of a finished collection of spans (see the module docstring for the names)."""
    agg = RedAggregator(step, lateness_s=math.inf, max_spans=2**62, operations=operations)
    agg.add_many(spans)
    return agg.flush(final=True)


def call_graph(spans: Iterable[Span], step: float = 60.0) -> nx.DiGraph:
    """The service call graph of a finished collection of spans, caller → callee, with ``calls``,
    ``errors`` and ``rate`` (per second over the ``step``-long buckets that saw spans)."""
    agg = RedAggregator(step, lateness_s=math.inf, max_spans=2**62, operations=False)
    agg.add_many(spans)
    agg.flush(final=True)
    return agg.graph()
