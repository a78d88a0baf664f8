"""Learned co-occurrence of alert types: which types historically fire together, and in which order.

From a history of ``(alert_type, start_time[, device])`` events, for every ordered pair of types
``(a, b)``:

* ``support``: how many ``a`` events see a ``b`` event start within ``[t, t + window_s]`` on the same
  device, or on a device within ``hops`` of it when a topology is given (events without a device all
  share one anonymous device, so then "same device" means "anywhere");
* ``expected``: the same count if ``b`` started independently of ``a`` — ``b`` as a Poisson process
  with its own per-device rate, so an ``a`` event on device ``d`` sees a ``b`` with probability
  ``1 - exp(-window_s * rate_b(neighbourhood of d))``;
* ``lift = support / expected`` and a one-sided binomial p-value ``P(X >= support)``,
  ``X ~ Binomial(n_a, expected / n_a)``, corrected over all ordered pairs with Benjamini–Hochberg;
* the order: ``after`` counts ``a`` events followed by a ``b`` within ``(t, t + window_s]``,
  ``before`` those preceded by one within ``[t - window_s, t)``.

The edge ``a → b`` is kept when ``q < alpha``, ``support >= min_support``, ``lift >= min_lift`` and
``b`` follows ``a`` more often than it precedes it (``after > before``). Learning is a sorted sweep:
one ``searchsorted`` per (event, neighbouring device, type), vectorised with numpy.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

IntArray = np.ndarray[Any, np.dtype[np.int64]]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True, slots=True)
class Edge:
    """``target`` starts after ``source`` more often than chance (the inputs that decided it)."""

    source: Hashable
    target: Hashable
    support: int
    expected: float
    lift: float
    after: int
    before: int
    p_value: float
    q_value: float


class CoOccurrence:
    """Learn which alert types fire together (directed: ``a → b`` when ``b`` follows ``a``).

    >>> history = []
    >>> for k in range(40):                       # "link_down" is followed 5 s later by "bgp_down"
    ...     t = 1000.0 * k
    ...     history += [("link_down", t, "r1"), ("bgp_down", t + 5, "r1"), ("fan", t + 500, "r1")]
    >>> model = CoOccurrence(window_s=30, alpha=0.01, min_support=5).learn(history)
    >>> [(e.source, e.target, e.support) for e in model.edges()]
    [('link_down', 'bgp_down', 40)]
    >>> model.related("bgp_down", "link_down") > 1, model.related("fan", "link_down")
    (True, 0.0)
    """

    def __init__(
        self,
        window_s: float = 300.0,
        alpha: float = 0.01,
        min_support: int = 5,
        min_lift: float = 1.0,
        topology: Mapping[Hashable, Iterable[Hashable]] | None = None,
        hops: int = 1,
    ) -> None:
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        self.window_s = window_s
        self.alpha = alpha
        self.min_support = min_support
        self.min_lift = min_lift
        self.topology = topology
        self.hops = hops
        self.types: list[Hashable] = []
        self.support: IntArray = np.zeros((0, 0), dtype=np.int64)
        self.expected: FloatArray = np.zeros((0, 0))
        self.after: IntArray = np.zeros((0, 0), dtype=np.int64)
        self.before: IntArray = np.zeros((0, 0), dtype=np.int64)
        self.p_values: FloatArray = np.zeros((0, 0))
        self.q_values: FloatArray = np.zeros((0, 0))
        self._edges: list[Edge] = []
        self._index: dict[Hashable, int] = {}
        self._uses_topology = topology is not None

    def __repr__(self) -> str:
        return (f"CoOccurrence(window_s={self.window_s}, alpha={self.alpha}, min_support={self.min_support}, "
                f"min_lift={self.min_lift}, hops={self.hops}, topology={'yes' if self._uses_topology else 'no'})")

    # -- learning ---------------------------------------------------------------------------
    def learn(self, events: Iterable[Sequence[Any]]) -> CoOccurrence:
        """Learn from ``(alert_type, start_time_s)`` or ``(alert_type, start_time_s, device)`` tuples."""
        type_ids: dict[Hashable, int] = {}
        device_ids: dict[Hashable, int] = {}
        kinds: list[int] = []
        times: list[float] = []
        devices: list[int] = []
        for event in events:
            kind, at = event[0], float(event[1])
            device = event[2] if len(event) > 2 else None
            kinds.append(type_ids.setdefault(kind, len(type_ids)))
            times.append(at)
            devices.append(device_ids.setdefault(device, len(device_ids)))
        adjacency = self._adjacency(device_ids)
        return self.learn_arrays(
            np.asarray(kinds, dtype=np.int64), np.asarray(times, dtype=np.float64),
            np.asarray(devices, dtype=np.int64), list(type_ids), adjacency,
        )

    def _adjacency(self, device_ids: Mapping[Hashable, int]) -> np.ndarray[Any, np.dtype[np.bool_]] | None:
        if self.topology is None:
            return None
        n = len(device_ids)
        adj = np.zeros((n, n), dtype=np.bool_)
        for a, neighbours in self.topology.items():
            if a not in device_ids:
                continue
            for b in neighbours:
                if b in device_ids:
                    adj[device_ids[a], device_ids[b]] = adj[device_ids[b], device_ids[a]] = True
        return adj

    def learn_arrays(
        self,
        kinds: IntArray,
        times: FloatArray,
        devices: IntArray,
        types: Sequence[Hashable],
        adjacency: np.ndarray[Any, np.dtype[np.bool_]] | None = None,
    ) -> CoOccurrence:
        """The fast path: type and device indices (0-based), start times in seconds, and an optional
        symmetric device adjacency matrix (``hops`` is applied to it)."""
        n_types = len(types)
        self._uses_topology = adjacency is not None
        n_devices = int(devices.max()) + 1 if len(devices) else 1
        if adjacency is not None:
            n_devices = max(n_devices, adjacency.shape[0])
        self.types = list(types)
        self._index = {t: i for i, t in enumerate(self.types)}
        if len(kinds) == 0:
            empty = np.zeros((n_types, n_types), dtype=np.int64)
            self.support, self.after, self.before = empty, empty.copy(), empty.copy()
            self.expected, self.p_values, self.q_values = np.zeros((n_types, n_types)), *(
                np.ones((n_types, n_types)) for _ in range(2))
            self._edges = []
            return self
        window = float(self.window_s)
        span = float(times.max() - times.min()) + window if len(times) else window
        reach = _reach(adjacency, n_devices, self.hops)

        # One sorted array: key (device, type) then time, keys spaced far enough not to overlap.
        base = float(times.min()) if len(times) else 0.0
        rel = times - base
        stride = span + 4 * window + 1.0
        key = devices * n_types + kinds
        sorted_vals = np.sort(key * stride + rel)

        # Expand each event over the devices it can see, then over every type.
        src_dev, dst_dev = np.nonzero(reach)
        starts = np.searchsorted(src_dev, np.arange(n_devices + 1))
        per_device = np.diff(starts)
        n_pairs = per_device[devices]
        event_of_pair = np.repeat(np.arange(len(kinds)), n_pairs)
        offsets = np.repeat(starts[devices], n_pairs) + (np.arange(len(event_of_pair))
                                                          - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs))
        seen_dev = dst_dev[offsets]
        t = rel[event_of_pair][:, None]
        query_keys = (seen_dev[:, None] * n_types + np.arange(n_types)[None, :]) * stride
        lo_before = np.searchsorted(sorted_vals, query_keys + (t - window), side="left")
        at_lo = np.searchsorted(sorted_vals, query_keys + t, side="left")
        at_hi = np.searchsorted(sorted_vals, query_keys + t, side="right")
        hi_after = np.searchsorted(sorted_vals, query_keys + (t + window), side="right")
        in_window = hi_after - at_lo
        after_n = hi_after - at_hi
        before_n = at_lo - lo_before
        # The event sees itself (same device, same type, same time): remove it.
        own = (seen_dev == devices[event_of_pair])
        own_col = kinds[event_of_pair]
        rows = np.nonzero(own)[0]
        in_window[rows, own_col[rows]] -= 1

        first_pair = np.cumsum(n_pairs) - n_pairs

        def presence(counts: IntArray) -> IntArray:
            per_event = np.add.reduceat(counts, first_pair, axis=0)
            flat = (kinds[:, None] * n_types + np.arange(n_types)[None, :]).ravel()
            hits = (per_event > 0).ravel().astype(np.float64)
            return np.bincount(flat, weights=hits, minlength=n_types * n_types).reshape(
                n_types, n_types).round().astype(np.int64)

        self.support = presence(in_window)
        self.after = presence(after_n)
        self.before = presence(before_n)

        counts = np.zeros((n_devices, n_types))
        np.add.at(counts, (devices, kinds), 1.0)
        neighbourhood_rate = reach.astype(np.float64) @ (counts / span)
        p_seen = 1.0 - np.exp(-window * neighbourhood_rate)
        self.expected = counts.T @ p_seen
        n_a = counts.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.clip(np.where(n_a[:, None] > 0, self.expected / n_a[:, None], 1.0), 0.0, 1.0)
        self.p_values = np.asarray(stats.binom.sf(self.support - 1, n_a[:, None], p), dtype=np.float64)
        off = ~np.eye(n_types, dtype=np.bool_)
        self.q_values = np.ones((n_types, n_types))
        self.q_values[off] = benjamini_hochberg(self.p_values[off])
        self._edges = self._select()
        return self

    def _select(self) -> list[Edge]:
        edges: list[Edge] = []
        for a, b in zip(*np.nonzero(~np.eye(len(self.types), dtype=np.bool_)), strict=True):
            support, expected = int(self.support[a, b]), float(self.expected[a, b])
            lift = support / expected if expected > 0 else float("inf")
            after, before = int(self.after[a, b]), int(self.before[a, b])
            q = float(self.q_values[a, b])
            if q < self.alpha and support >= self.min_support and lift >= self.min_lift and after > before:
                edges.append(Edge(self.types[a], self.types[b], support, expected, lift, after, before,
                                  float(self.p_values[a, b]), q))
        return edges

    # -- asking -----------------------------------------------------------------------------
    def edges(self) -> list[Edge]:
        """The kept directed edges, strongest lift first."""
        return sorted(self._edges, key=lambda e: (-e.lift, str(e.source), str(e.target)))

    def related(self, a: Hashable, b: Hashable) -> float:
        """Do ``a`` and ``b`` historically fire together? The lift of the kept edge between them (either
        direction, the larger), 0.0 when there is none or a type was never seen."""
        return max((e.lift for e in self._edges
                    if (e.source, e.target) in ((a, b), (b, a))), default=0.0)


def _reach(adjacency: np.ndarray[Any, np.dtype[np.bool_]] | None, n: int, hops: int
           ) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Devices within ``hops`` of each device (itself included)."""
    reach = np.eye(n, dtype=np.bool_)
    if adjacency is None or hops <= 0:
        return reach
    step = adjacency[:n, :n].astype(np.int64)
    frontier = reach.astype(np.int64)
    for _ in range(hops):
        frontier = ((frontier @ step) > 0).astype(np.int64)
        reach |= frontier > 0
    return reach


def benjamini_hochberg(p_values: FloatArray) -> FloatArray:
    """Benjamini–Hochberg q-values (false discovery rate adjusted p-values).

    >>> benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5])).round(3).tolist()
    [0.04, 0.053, 0.053, 0.5]
    """
    n = len(p_values)
    if n == 0:
        return p_values.copy()
    order = np.argsort(p_values)
    ranked = p_values[order] * n / np.arange(1, n + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(n)
    q[order] = np.minimum(ranked, 1.0)
    return q
