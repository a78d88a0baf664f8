"""Alertmanager matchers: ``name="value"``, ``name!="value"``, ``name=~"regex"``, ``name!~"regex"``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from watchkeeper.errors import InputError

_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = re.fullmatch(self.value, actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


def parse_matcher(value: Any) -> Matcher:
    """A matcher from its text or from Alertmanager's API object (name, value, isRegex, isEqual).

    >>> parse_matcher('severity=~"crit.*"').matches({"severity": "critical"})
    True
    >>> str(parse_matcher({"name": "job", "value": "db", "isRegex": False, "isEqual": False}))
    'job!="db"'
    """
    if isinstance(value, dict):
        try:
            name, text = str(value["name"]), str(value["value"])
        except KeyError as exc:
            raise InputError(f"matcher {value!r} needs 'name' and 'value'") from exc
        regex, equal = bool(value.get("isRegex", False)), bool(value.get("isEqual", True))
        op = ("=~" if equal else "!~") if regex else ("=" if equal else "!=")
        matcher = Matcher(name, op, text)
    else:
        match = _MATCHER.match(str(value))
        if not match:
            raise InputError(f"not a matcher: {value!r} (expected name=\"value\", name!=…, name=~…, name!~…)")
        matcher = Matcher(*match.groups())
    if matcher.op in ("=~", "!~"):
        try:
            re.compile(matcher.value)
        except re.error as exc:
            raise InputError(f"matcher {matcher}: invalid regular expression: {exc}") from exc
    return matcher
