"""The service graph: who calls whom (caller → callee, i.e. the caller depends on the callee).

Pure: a ``networkx.DiGraph`` built from edges or from the lab's ``topology.json`` document;
:mod:`watchkeeper.topology.graph` holds the helpers.
"""

from __future__ import annotations

from watchkeeper.topology.graph import (
    downstream,
    from_document,
    from_edges,
    load,
    save,
    to_document,
    upstream,
)

__all__ = ["downstream", "from_document", "from_edges", "load", "save", "to_document", "upstream"]
