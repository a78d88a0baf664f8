"""Inhibition, as Alertmanager does it: while an alert matching ``source`` fires, alerts matching
``target`` with the same values of the ``equal`` labels are held (an alert never inhibits itself)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from watchkeeper.errors import InputError
from watchkeeper.suppress.matchers import Matcher, parse_matcher


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """
    >>> rule = InhibitRule.from_config(0, {"source_matchers": ['severity="critical"'],
    ...     "target_matchers": ['severity="warning"'], "equal": ["service"]})
    >>> rule.source_keys({"severity": "critical", "service": "db"}) == rule.target_keys(
    ...     {"severity": "warning", "service": "db"})
    True
    """

    index: int
    source: Sequence[Matcher]
    target: Sequence[Matcher]
    equal: Sequence[str]

    @classmethod
    def from_config(cls, index: int, spec: Mapping[str, Any]) -> InhibitRule:
        """Alertmanager's YAML: ``source_matchers``/``target_matchers`` (or the older
        ``source_match``/``source_match_re``/``target_match``/``target_match_re`` maps) and ``equal``."""
        known = {"source_matchers", "target_matchers", "source_match", "source_match_re", "target_match",
                 "target_match_re", "equal"}
        unknown = set(spec) - known
        if unknown:
            raise InputError(f"inhibit rule {index}: unknown keys {sorted(unknown)}")

        def side(name: str) -> list[Matcher]:
            matchers = [parse_matcher(m) for m in spec.get(f"{name}_matchers") or []]
            matchers += [parse_matcher({"name": k, "value": v}) for k, v in (spec.get(f"{name}_match") or {}).items()]
            matchers += [parse_matcher({"name": k, "value": v, "isRegex": True})
                         for k, v in (spec.get(f"{name}_match_re") or {}).items()]
            if not matchers:
                raise InputError(f"inhibit rule {index}: no {name} matchers")
            return matchers

        return cls(index, tuple(side("source")), tuple(side("target")), tuple(spec.get("equal") or ()))

    def _key(self, labels: Mapping[str, str]) -> str:
        values = [labels.get(name, "") for name in self.equal]
        return f"inhibit:{self.index}:{orjson.dumps(values).decode()}"

    def source_keys(self, labels: Mapping[str, str]) -> list[str]:
        return [self._key(labels)] if all(m.matches(labels) for m in self.source) else []

    def target_keys(self, labels: Mapping[str, str]) -> list[str]:
        return [self._key(labels)] if all(m.matches(labels) for m in self.target) else []
