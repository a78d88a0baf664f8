"""Load YAML keeping the line of every value, so errors can say ``file:line``."""

from __future__ import annotations

from typing import Any

import yaml


class YamlPositions:
    """``data`` plus the 1-based line of each path (a tuple of keys and list indices)."""

    def __init__(self, data: Any, lines: dict[tuple[Any, ...], int]) -> None:
        self.data = data
        self.lines = lines

    def line(self, path: tuple[Any, ...]) -> int:
        """The line of the deepest known prefix of ``path`` (1 when nothing matches)."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1


def load(text: str) -> YamlPositions:
    """Parse one YAML document safely (no tags, no objects).

    >>> doc = load("a: 1\\nb:\\n  - x\\n  - y\\n")
    >>> doc.data, doc.line(("b", 1))
    ({'a': 1, 'b': ['x', 'y']}, 4)
    """
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: dict[tuple[Any, ...], int] = {}
    if node is None:
        return YamlPositions(None, lines)
    return YamlPositions(_build(node, (), lines), lines)


def _build(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.MarkedYAMLError("while reading a mapping", node.start_mark,
                                           "keys must be plain values", key_node.start_mark)
            key = _scalar(key_node)
            out[key] = _build(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()
