"""Input formats: one module per format, each ``normalize(payload, received_at) -> list[Event]``.

Built-ins are listed explicitly in :data:`BUILTIN`; third parties register a class under the
``watchkeeper.sources`` entry-point group.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from watchkeeper.errors import ConfigError, InputError
from watchkeeper.sources.alertmanager import AlertmanagerSource
from watchkeeper.sources.base import Source
from watchkeeper.sources.grafana import GrafanaSource
from watchkeeper.sources.native import NativeSource
from watchkeeper.sources.pagerduty import PagerDutySource
from watchkeeper.sources.prometheus import PrometheusSource

#: In detection order: Grafana's body is a superset of Alertmanager's, and a JSON list is
#: PagerDuty's only when every item has ``event_action``; a list of ``labels`` objects is
#: Alertmanager API v2's (Prometheus' own push).
BUILTIN: tuple[type[Any], ...] = (GrafanaSource, AlertmanagerSource, PagerDutySource, PrometheusSource, NativeSource)


def registry(*, plugins: bool = True) -> dict[str, Source]:
    """All sources by name: the built-ins, then entry-point plugins (which may not shadow them)."""
    sources: dict[str, Source] = {cls.name: cls() for cls in BUILTIN}
    if plugins:
        for ep in entry_points(group="watchkeeper.sources"):
            if ep.name in sources:
                raise ConfigError(f"source plugin {ep.value} reuses the built-in name {ep.name!r}")
            sources[ep.name] = ep.load()()
    return sources


def detect(payload: Any, sources: dict[str, Source]) -> Source:
    """The source whose format ``payload`` looks like (for offline replay of mixed files)."""
    for source in sources.values():
        if source.accepts(payload):
            return source
    raise InputError("unknown format: not an Alertmanager, Grafana, PagerDuty, Prometheus or Watchkeeper body")


__all__ = ["BUILTIN", "Source", "detect", "registry"]
