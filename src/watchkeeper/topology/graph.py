"""Build, read and write the service graph; upstream/downstream sets.

The file format is the lab's ``topology.json``: ``{"services": [...], "edges": [[caller, callee], ...]}``.

>>> g = from_edges([("frontend", "checkout"), ("checkout", "payment"), ("frontend", "catalog")])
>>> sorted(downstream(g, "frontend"))
['catalog', 'checkout', 'payment']
>>> sorted(upstream(g, "payment"))
['checkout', 'frontend']
>>> to_document(g)["edges"][0]
['checkout', 'payment']
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import networkx as nx

from watchkeeper.errors import InputError


def from_edges(edges: Iterable[tuple[str, str]], services: Iterable[str] = ()) -> nx.DiGraph:
    """A graph with an edge caller → callee for each pair, plus the isolated ``services``."""
    g = nx.DiGraph()
    g.add_nodes_from(services)
    for caller, callee in edges:
        if caller != callee:
            g.add_edge(caller, callee)
    return g


def from_document(doc: Mapping[str, Any]) -> nx.DiGraph:
    """Validate and convert a ``topology.json`` document."""
    services = doc.get("services", [])
    edges = doc.get("edges", [])
    if not isinstance(services, list) or not all(isinstance(s, str) and s for s in services):
        raise InputError("topology: 'services' must be a list of service names")
    if not isinstance(edges, list) or not all(
        isinstance(e, list | tuple) and len(e) == 2 and all(isinstance(x, str) and x for x in e) for e in edges
    ):
        raise InputError("topology: 'edges' must be a list of [caller, callee] pairs of service names")
    return from_edges(((a, b) for a, b in edges), services)


def to_document(g: nx.DiGraph) -> dict[str, Any]:
    """The ``topology.json`` document of a graph (sorted, so it is stable)."""
    return {"services": sorted(str(n) for n in g.nodes), "edges": sorted([str(a), str(b)] for a, b in g.edges)}


def load(path: Path | str) -> nx.DiGraph:
    """Read a ``topology.json`` file; a clear :class:`InputError` when it is not one."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise InputError(f"{p}: no such topology file") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: not JSON ({e})") from e
    if not isinstance(doc, dict):
        raise InputError(f"{p}: a topology file holds a JSON object")
    return from_document(doc)


def save(g: nx.DiGraph, path: Path | str) -> None:
    """Write the graph as ``topology.json``."""
    Path(path).write_text(json.dumps(to_document(g), indent=2) + "\n", encoding="utf-8")


def downstream(g: nx.DiGraph, service: str) -> set[str]:
    """Every service ``service`` depends on, directly or not (empty when it is not in the graph)."""
    return set(nx.descendants(g, service)) if service in g else set()


def upstream(g: nx.DiGraph, service: str) -> set[str]:
    """Every service that depends on ``service``, directly or not."""
    return set(nx.ancestors(g, service)) if service in g else set()
