"""The detector that ``serve``'s watches and ``metrics detect`` use when none is named, with the
threshold chosen for it by the evaluation protocol — shipped together, under one version that every
anomaly's evidence names.

``make(name, options)`` builds any built-in detector by its configuration name (an explicit
registry, no lookup by string in globals).

>>> d = make("default")
>>> type(d).__name__, threshold_for("default") == DEFAULT.threshold
('AnomalyLikelihood', True)
>>> make("robust", {"window": 16}).params()["window"]
16
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from watchkeeper.detect.base import Detector
from watchkeeper.detect.changepoint import Cusum
from watchkeeper.detect.likelihood import AnomalyLikelihood
from watchkeeper.detect.robust import RobustSeasonal


@dataclass(frozen=True, slots=True)
class Shipped:
    """A detector configuration as shipped: how to build it, its threshold, and how the filter
    treats anomalous points (``max_skip``: how many in a row are kept out of training)."""

    name: str
    version: str
    build: Callable[..., Detector]
    threshold: float
    max_skip: int
    #: Whether the series of one service in one watch are scored as a family (the Bonferroni
    #: correction of :func:`~watchkeeper.detect.likelihood.familywise`), as the protocol scored
    #: the vectors when it chose ``threshold``.
    familywise: bool = False


#: The default's threshold, chosen by the held-out protocol on every labelled source (the five NAB
#: categories, SMD and ASD) with vectors scored familywise (round 10): ``watchkeeper eval detect
#: --nab ../shared/data/nab --smd ../shared/data/smd_asd`` ("chosen on all sources"). Chosen without
#: each source in turn it is 0.7558 to 0.7773; see docs/detect.md.
LIKELIHOOD_THRESHOLD = 0.7721

#: The configuration names a watch may give as ``detector:``.
SHIPPED: Mapping[str, Shipped] = {
    # AnomalyLikelihood learns every point: its tails must see the anomalies too (max_skip=0).
    # v2: v1's detector and parameters (saved state loads unchanged) with the protocol's threshold
    # instead of v1's 0.8, which was set by hand. v3: the same detector (state loads unchanged); the
    # series of one service in one watch scored as a family, and the threshold the protocol chose so.
    "likelihood": Shipped("likelihood", "likelihood-v3", AnomalyLikelihood, LIKELIHOOD_THRESHOLD, 0,
                          familywise=True),
    "robust": Shipped("robust", "robust-v1", RobustSeasonal, 0.9, 30),
    "cusum": Shipped("cusum", "cusum-v1", Cusum, 0.9, 30),
}
#: The project's best general detector (chosen by ``watchkeeper eval``'s held-out protocol).
DEFAULT = SHIPPED["likelihood"]


def shipped(name: str) -> Shipped:
    """The shipped configuration called ``name`` (``default`` is :data:`DEFAULT`)."""
    if name == "default":
        return DEFAULT
    try:
        return SHIPPED[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; known: default, {', '.join(sorted(SHIPPED))}") from None


def make(name: str = "default", options: Mapping[str, Any] | None = None) -> Detector:
    """A new detector of configuration ``name`` with constructor ``options``; a clear
    ``ValueError`` for an unknown name or option."""
    config = shipped(name)
    try:
        return config.build(**dict(options or {}))
    except TypeError as exc:
        raise ValueError(f"detector {name!r}: {exc}") from None


def max_skip_of(detector: Detector) -> int | None:
    """How many anomalous points in a row a filter keeps out of ``detector``'s training: that of
    the shipped configuration of its very class (a subclass is another detector), or ``None``
    when no shipped configuration builds that class.

    >>> max_skip_of(make("default")), max_skip_of(make("robust"))
    (0, 30)
    """
    for config in SHIPPED.values():
        if type(detector) is config.build:
            return config.max_skip
    return None


def threshold_for(name: str = "default") -> float:
    return shipped(name).threshold
