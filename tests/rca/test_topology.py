"""The service graph: topology.json round trip, validation, upstream/downstream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from watchkeeper import topology
from watchkeeper.errors import InputError

LAB = {"services": ["cache", "catalog", "checkout", "frontend", "payment", "store"],
       "edges": [["catalog", "cache"], ["catalog", "store"], ["checkout", "cache"], ["checkout", "payment"],
                 ["frontend", "catalog"], ["frontend", "checkout"]]}


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "topology.json"
    path.write_text(json.dumps(LAB))
    g = topology.load(path)
    assert g.number_of_nodes() == 6 and g.number_of_edges() == 6
    topology.save(g, tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text()) == LAB


def test_upstream_and_downstream() -> None:
    g = topology.from_document(LAB)
    assert topology.downstream(g, "checkout") == {"payment", "cache"}
    assert topology.upstream(g, "cache") == {"catalog", "checkout", "frontend"}
    assert topology.downstream(g, "payment") == set()
    assert topology.upstream(g, "unknown") == set()


def test_isolated_services_are_kept() -> None:
    g = topology.from_document({"services": ["solo"], "edges": []})
    assert list(g.nodes) == ["solo"]


@pytest.mark.parametrize("doc", [
    {"services": "frontend", "edges": []},
    {"services": [], "edges": [["a"]]},
    {"services": [], "edges": [["a", 3]]},
    {"services": [""], "edges": []},
])
def test_bad_documents_are_rejected(doc: dict[str, object]) -> None:
    with pytest.raises(InputError, match="topology"):
        topology.from_document(doc)


def test_bad_files_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such topology file"):
        topology.load(tmp_path / "missing.json")
    (tmp_path / "t.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="JSON object"):
        topology.load(tmp_path / "t.json")
    (tmp_path / "u.json").write_text("{nope")
    with pytest.raises(InputError, match="not JSON"):
        topology.load(tmp_path / "u.json")
