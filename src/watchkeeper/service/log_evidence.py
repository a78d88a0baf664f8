"""The root-cause ranker's log evidence in ``serve`` (``ranking.LogSource``), read from the stored
per-minute template counts the log inputs write (docs/logs.md, docs/rca.md)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from watchkeeper import rca
from watchkeeper.logs.anomaly import LogAnomaly
from watchkeeper.service.logs import LogIngest

#: Where a log message's statement ends and a stack trace (code, not a statement about a service) begins:
#: a new line, Python's ``Traceback (most recent call last)``, a Java/.NET frame ``at pkg.Class.method(``,
#: a Go ``goroutine N [``. A template flattened onto one line keeps the markers.
_TRACE_START = re.compile(r"\n|Traceback \(most recent call last\)|(?:^|\s)at [\w$.<>]+\(|goroutine \d+ \[")


def names(text: str, service: str) -> bool:
    """Whether a log template names ``service`` as a word (``call to checkout failed`` names
    ``checkout``, not ``checkout-db``) in its statement — not in a stack trace after it, and not as the
    attribute or the tail of a dotted name, both of which are code (a trace's ``total = subtotal +
    quote.shipping`` or ``price = self.prices[item]`` names no service; a host name ``shipping.prod.svc``
    still does).

    >>> names("call to checkout GET <*> failed", "checkout"), names("checkout-db timeout", "checkout")
    (True, False)
    >>> names("total = subtotal + quote.shipping", "shipping"), names("GET http://shipping.svc:80/ failed", "shipping")
    (False, True)
    >>> names("KeyError: <*> Traceback (most recent call last): File <*> price = self.prices[item]", "price")
    False
    >>> names("Request failed: NullPointerException at order.Api.find(Api.java:42)", "order")
    False
    >>> names("call to order failed\\n  File <*> in call_order", "order")
    True
    """
    statement = text[:m.start()] if (m := _TRACE_START.search(text)) else text
    return re.search(rf"(?<![\w.-]){re.escape(service)}(?![\w-])", statement) is not None


def named_services(text: str, writer: str, candidates: Iterable[str], graph: Any = None) -> list[str]:
    """The other candidate services a log template of ``writer`` names (:func:`names`), sorted. When the
    topology (``graph``, a networkx DiGraph) knows the writer, only its neighbours count — its callees and
    its callers: a service observes the services it talks to, and a word that happens to be another
    service's name (``list index out of range`` in a system with a service ``index``) is no reference.

    >>> import networkx as nx
    >>> g = nx.DiGraph([("media", "transcode"), ("search", "index")])
    >>> named_services("IndexError: list index out of range", "transcode", ["index", "media", "transcode"], g)
    []
    >>> named_services("call to index failed", "search", ["index", "search"], g)
    ['index']
    >>> named_services("call to index failed", "batch", ["index", "batch"], g)  # the writer is not in the graph
    ['index']
    """
    near: set[str] | None = None
    if graph is not None and writer in graph and graph.degree(writer) > 0:
        near = {str(n) for n in graph.predecessors(writer)} | {str(n) for n in graph.successors(writer)}
    return sorted(d for d in candidates if d != writer and (near is None or d in near) and names(text, d))


def evidence_of(text: str, writer: str, candidates: Iterable[str], graph: Any = None) -> str:
    """The service a log template of ``writer`` is evidence about: the one other service it names
    (:func:`named_services`; ``call to payment failed`` is payment's symptom), else — none, or several, so
    no one of them in particular — the writer. ``serve``'s ranker and every evaluation attribute by this.

    >>> evidence_of("call to payment failed", "checkout", ["payment", "checkout", "cart"])
    'payment'
    >>> evidence_of("payment and cart timed out", "checkout", ["payment", "checkout", "cart"])
    'checkout'
    """
    named = named_services(text, writer, candidates, graph)
    return named[0] if len(named) == 1 else writer


class RankerLogs:
    """The root-cause ranker's log evidence (``ranking.LogSource``) from the stored per-minute counts:
    per service, its strongest log anomaly's z as the score, with the templates that gave it (reason,
    id, text, count against the expected) and the minute the first one began.

    A template that names another candidate service (``call to checkout failed: connection refused``)
    is that service's symptom, as an alert whose label names its failing dependency is: its anomaly
    counts for the named service (``named_by`` says whose logs), not for the one that logged it; and a
    service's error burst whose error lines mostly name another service goes with them."""

    def __init__(self, logs: LogIngest, limit: int = 5) -> None:
        self.logs, self.limit = logs, limit

    def anomalies(self, services: Sequence[str], start: float, end: float, graph: Any = None
                  ) -> dict[str, rca.LogAnomaly]:
        """Per service, its log anomaly; ``graph`` (the incident's topology) limits whom a template can
        name to the writer's neighbours (:func:`named_services`)."""
        begin, finish = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
        candidates = set(services)
        held: dict[str, list[tuple[LogAnomaly, str, str | None]]] = {}  # service -> (anomaly, text, named by)
        for service in services:
            all_of = self.logs.log_anomalies(service, begin, finish)
            if not all_of:
                continue
            best: dict[tuple[str, str], LogAnomaly] = {}  # each (reason, template) once, at its strongest minute
            for a in all_of:
                key = (a.reason, a.template_id)
                if key not in best or a.z > best[key].z:
                    best[key] = a
            texts = {t["template_id"]: t["template"] for t in self.logs.store.templates(service=service)}
            named = {tid: evidence_of(text, service, candidates, graph) for tid, text in texts.items()}
            errors: Counter[str] = Counter()
            for row in self.logs.store.counts(service=service, start=begin, end=finish):
                errors[row["template_id"]] += int(row["errors"])
            blamed: Counter[str] = Counter()
            for tid, n in errors.items():
                if named.get(tid, service) != service:
                    blamed[named[tid]] += n
            for a in best.values():
                text = texts.get(a.template_id, "") if a.template_id else "(all error lines)"
                target = named.get(a.template_id, service) if a.template_id else service
                if not a.template_id and blamed and 2 * blamed.most_common(1)[0][1] >= sum(errors.values()):
                    target = blamed.most_common(1)[0][0]  # its error lines mostly name that service
                held.setdefault(target, []).append((a, text, service if target != service else None))
        found: dict[str, rca.LogAnomaly] = {}
        for service, items in held.items():
            items.sort(key=lambda item: (-item[0].z, item[0].minute))
            templates = tuple({"template_id": a.template_id, "template": text, "reason": a.reason, "count": a.count,
                               "expected": round(a.expected, 3), "z": round(a.z, 3), "minute": a.minute.isoformat(),
                               **({"named_by": by} if by else {})} for a, text, by in items[:self.limit])
            found[service] = rca.LogAnomaly(score=items[0][0].z, templates=templates,
                                            first_at=min(a.minute for a, _, _ in items).timestamp())
        return found
