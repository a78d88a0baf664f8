"""Which model versions an incident's decision used, named as the registry names them
(``kind:name`` → version): the correlation configuration that grouped its alerts, the detector of
every watch whose anomaly is among them (an alert of source ``watch`` with the watch's name as its
``watch`` label), and (added by the responder from the registry) the RCA
model whose cause it acted on.

>>> from watchkeeper.value.drift import ModelKind, ModelVersion
>>> from watchkeeper.watch.config import Watch

#: the source of the anomaly and forecast events ``serve``'s watches raise (``watch.engine.SOURCE``)
WATCH_SOURCE = "watch"
>>> corr = ModelVersion(kind=ModelKind.CORRELATION, name="default", version="cfg.abc")
>>> used = ModelsInUse(lambda: corr, [Watch(name="latency", query="q", detector="robust")])
>>> used({"alerts": [{"source": "watch", "labels": {"watch": "latency"}}, {"source": "api", "labels": {}}]})
{'correlation:default': 'cfg.abc', 'detector:robust': 'robust-v1'}
>>> used({"alerts": [{"source": "watch", "labels": {"watch": "gone"}}]})
{'correlation:default': 'cfg.abc'}
>>> used({"alerts": [{"source": "api", "labels": {"watch": "latency"}}]})  # not the watch's anomaly
{'correlation:default': 'cfg.abc'}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from watchkeeper.value.drift import ModelVersion
from watchkeeper.watch.config import Watch

#: the source of the anomaly and forecast events ``serve``'s watches raise (``watch.engine.SOURCE``)
WATCH_SOURCE = "watch"


class ModelsInUse:
    """Called with an incident's view (its ``alerts`` with their labels); the correlation model is
    asked for at each call, since a reloaded configuration is a new version."""

    def __init__(self, correlation: Callable[[], ModelVersion | None], watches: Iterable[Watch] = ()) -> None:
        self.correlation = correlation
        self.detectors: dict[str, tuple[str, str]] = {}
        for w in watches:
            from watchkeeper.detect.default import shipped  # the detectors (numpy) only with watches

            config = shipped(w.detector)
            self.detectors[w.name] = (f"detector:{config.name}", config.version)

    def __call__(self, view: Mapping[str, Any]) -> dict[str, str]:
        found: dict[str, str] = {}
        corr = self.correlation()
        if corr is not None:
            found[corr.key] = corr.version
        for alert in view.get("alerts", ()):
            if alert.get("source") != WATCH_SOURCE:
                continue
            labels = alert.get("labels") or {}
            detector = self.detectors.get(str(labels.get("watch", "")))
            if detector is not None:
                found[detector[0]] = detector[1]
        return dict(sorted(found.items()))


def no_models(view: Mapping[str, Any]) -> dict[str, str]:
    """What a responder outside ``serve`` names (no correlation configuration, no watches)."""
    return {}
