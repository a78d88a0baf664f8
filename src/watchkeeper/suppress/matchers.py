"""Alertmanager matchers: ``name="value"``, ``name!="value"``, ``name=~"regex"``, ``name!~"regex"``.

Regular expressions run on RE2 (``google-re2``), as Alertmanager's Go ``regexp`` does: matching
takes time linear in the label's length whatever the pattern, so a silence such as
``=~"(a+)+$"`` cannot hold ingest with a crafted label. RE2 has no backreferences or lookaround;
a pattern that needs them is refused when the matcher is made, with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import re2

from watchkeeper.errors import InputError

_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')
#: Longest accepted regular expression (Alertmanager has none; this keeps RE2's memory small).
MAX_PATTERN = 4096

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is reported to the caller, not to stderr


def compile_pattern(pattern: str) -> Any:
    """``pattern`` compiled for linear-time matching, or an InputError saying why it cannot be.

    >>> compile_pattern("(a+)+$").fullmatch("a" * 10_000 + "b") is None
    True
    >>> try:
    ...     compile_pattern(r"(a)\\1")
    ... except InputError as exc:
    ...     print(str(exc).split(": ", 1)[1])
    invalid escape sequence: \\1 (RE2 syntax: no backreferences or lookaround)
    """
    if len(pattern) > MAX_PATTERN:
        raise InputError(f"regular expression of {len(pattern)} characters; at most {MAX_PATTERN}")
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise InputError(
            f"invalid regular expression {pattern!r}: {reason} (RE2 syntax: no backreferences or lookaround)"
        ) from exc


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: str
    value: str
    #: The compiled RE2 pattern of a regex matcher (None for ``=`` and ``!=``).
    pattern: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~") and self.pattern is None:
            object.__setattr__(self, "pattern", compile_pattern(self.value))

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = self.pattern.fullmatch(actual) is not None
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
    else:
        match = _MATCHER.match(str(value))
        if not match:
            raise InputError(f"not a matcher: {value!r} (expected name=\"value\", name!=…, name=~…, name!~…)")
        name, op, text = match.groups()
    try:
        return Matcher(name, op, text)
    except InputError as exc:
        raise InputError(f"matcher {name}{op}\"{text}\": {exc}") from exc
