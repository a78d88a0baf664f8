"""The service graph ``serve`` ranks causes on: the ``topology:`` settings (``services`` plus an
optional ``file`` holding the same mapping, YAML or JSON, or the lab's ``topology.json``), merged with
the service graphs of the correlation configuration (its ``topology`` strategies, including a graph
written by ``watchkeeper correlation learn --by service``).

>>> from watchkeeper.watch.config import TopologyConfig
>>> cfg = TopologyConfig.model_validate({"services": {"web": {"depends_on": ["db"]}, "db": {}}})
>>> g = build(cfg)
>>> sorted(g.edges), g.edges["web", "db"]["sources"]
([('web', 'db')], ['settings'])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import networkx as nx
import yaml

from watchkeeper.errors import ConfigError, InputError
from watchkeeper.watch.config import TopologyConfig


def services_of(doc: Any, where: str) -> tuple[list[str], list[tuple[str, str]]]:
    """``(services, edges)`` of a document: ``{services: {a: {depends_on: [b]}}}``, the bare mapping
    ``{a: {depends_on: [b]}}`` or ``{a: [b]}``, or the lab's ``{services: [...], edges: [[a, b], ...]}``."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: a topology file holds a mapping of services")
    if isinstance(doc.get("services"), list):
        from watchkeeper.topology.graph import from_document

        try:
            g = from_document(doc)
        except InputError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        return [str(n) for n in g.nodes], [(str(a), str(b)) for a, b in g.edges]
    mapping = doc["services"] if isinstance(doc.get("services"), dict) else doc
    services, edges = [], []
    for name, spec in mapping.items():
        callees = spec.get("depends_on", []) if isinstance(spec, dict) else spec if spec is not None else []
        if not isinstance(name, str) or not isinstance(callees, list) or not all(isinstance(c, str) for c in callees):
            raise ConfigError(f"{where}: service {name!r}: depends_on must be a list of service names")
        services.append(name)
        edges += [(name, c) for c in callees]
    return services, edges


def read_file(path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the topology file {path}: {exc}") from exc
    return services_of(doc if doc is not None else {}, str(path))


def _add(g: nx.DiGraph, services: Iterable[str], edges: Iterable[tuple[str, str]], source: str) -> None:
    g.add_nodes_from(services)
    for caller, callee in edges:
        if caller == callee:
            continue
        if g.has_edge(caller, callee):
            if source not in g.edges[caller, callee]["sources"]:
                g.edges[caller, callee]["sources"].append(source)
        else:
            g.add_edge(caller, callee, sources=[source])


def build(cfg: TopologyConfig, correlation: Mapping[str, list[str]] | None = None) -> nx.DiGraph:
    """The merged graph (caller → callee); each edge says where it came from (``sources``)."""
    g = nx.DiGraph()
    _add(g, cfg.services, cfg.edges(), "settings")
    if cfg.file is not None:
        services, edges = read_file(cfg.file)
        _add(g, services, edges, "file")
    if correlation:
        _add(g, [], [(a, b) for a, callees in correlation.items() for b in callees], "correlation")
    return g


def correlation_graph(path: Path | None) -> dict[str, list[str]]:
    """The service graphs of the correlation configuration's ``topology`` strategies (empty when
    there is no configuration)."""
    if path is None:
        return {}
    from watchkeeper.correlate.config import TopologySpec, _graph_file, load_config

    graph: dict[str, list[str]] = {}
    for spec in load_config(path).strategies:
        if isinstance(spec, TopologySpec):
            merged = dict(spec.graph)
            if spec.graph_file is not None:
                merged.update(_graph_file(spec.graph_file if spec.graph_file.is_absolute()
                                          else path.parent / spec.graph_file))
            for caller, callees in merged.items():
                graph.setdefault(caller, []).extend(callees)
    return graph


def document(g: nx.DiGraph) -> dict[str, Any]:
    """``{"nodes": [{"id"}], "edges": [{"source", "target", "sources"}]}`` (sorted); an edge seen in
    traces also has ``calls``, ``errors`` and ``rate``."""
    return {"nodes": [{"id": str(n)} for n in sorted(g.nodes)],
            "edges": [{"source": str(a), "target": str(b), "sources": list(d.get("sources", [])),
                       **{k: d[k] for k in ("calls", "errors", "rate") if k in d}}
                      for a, b, d in sorted(g.edges(data=True), key=lambda e: (str(e[0]), str(e[1])))]}
