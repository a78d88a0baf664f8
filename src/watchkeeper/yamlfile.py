"""Configuration files: YAML loaded with the line of every value (so errors say ``file:line``),
and durations written ``30s``, ``5m``, ``250ms``, ``1h``."""

from __future__ import annotations

import re
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, Field, WithJsonSchema


class YamlPositions:
    """``data`` plus the 1-based line of each path (a tuple of keys and list indices)."""

    def __init__(self, data: Any, lines: dict[tuple[Any, ...], int]) -> None:
        self.data = data
        self.lines = lines

    def path_of(self, loc: tuple[Any, ...]) -> tuple[Any, ...]:
        """A pydantic error location without the steps that are not in the document (union tags)."""
        data, path = self.data, []
        for step in loc:
            in_list = isinstance(data, list) and isinstance(step, int) and 0 <= step < len(data)
            if (isinstance(data, dict) and step in data) or in_list:
                data = data[step]
            elif isinstance(data, dict | list):
                continue
            path.append(step)
        return tuple(path)

    def where(self, loc: tuple[Any, ...]) -> tuple[int, str]:
        """The line and dotted name of a pydantic error location."""
        path = self.path_of(loc)
        return self.line(path), ".".join(map(str, path)) or "(top)"

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


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> Any:
    """``"30s"``, ``"5m"``, ``"250ms"``, ``"1h"`` or a number of seconds.

    >>> parse_duration("5m"), parse_duration("250ms"), parse_duration(3)
    (300.0, 0.25, 3)
    """
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration like 30s, 5m, 250ms or 1h")
        return float(match.group(1)) * _UNITS[match.group(2)]
    return value


Duration = Annotated[
    float, BeforeValidator(parse_duration), Field(gt=0, le=86_400),
    WithJsonSchema({"anyOf": [
        {"type": "number", "exclusiveMinimum": 0, "maximum": 86_400},
        {"type": "string", "pattern": _DURATION.pattern, "description": "e.g. 30s, 5m, 250ms, 1h"},
    ]}),
]
