"""The held-out protocol for forecasts: leave one series *family* out.

A forecast configuration (whether the model may trend, and how wide its interval is drawn) chosen
on the series it is scored on overstates what a new series gets. So, as ``eval detect`` does for
detectors, each family (the folder its files are in: a NAB category, a capacity trace) is scored
with the configuration chosen on the *other* families:

* the trend setting (``auto``: the criterion chooses per series; ``trend``: trended models only,
  as capacity warnings use; ``level``: no trend) with the lowest mean MASE on the others;
* the interval's width factor (× the model's own 80 % interval) whose coverage on the others is
  nearest 80 %.

The held-out family's MASE (last ``horizon`` points of each series held out, scaled by the
in-sample seasonal-naive error) and coverage (share of held-out points inside the interval) are
reported with those choices, beside the in-sample figures (choices made on all families).

>>> rows = {"a": {"auto": FamilyFit([1.0], [0.7]), "level": FamilyFit([2.0], [0.7])},
...         "b": {"auto": FamilyFit([1.5], [0.9]), "level": FamilyFit([0.5], [0.9])}}
>>> [(f.family, f.trend, f.mase) for f in leave_one_family_out(rows, (1.0,))]
[('a', 'level', 2.0), ('b', 'auto', 1.5)]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from watchkeeper.detect.forecast import Series, season_length_for
from watchkeeper.detect.forecast_ets import EtsBatch
from watchkeeper.errors import InputError
from watchkeeper.eval.forecast import mase

Array = npt.NDArray[np.float64]

#: The interval is the model's own ``LEVEL`` % interval, widened or narrowed by a factor from
#: :data:`WIDTHS`; the factor whose coverage on the other families is nearest ``LEVEL`` % wins.
LEVEL = 80.0
WIDTHS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(51))  # 0.5 … 3.0
TRENDS: Mapping[str, bool | None] = {"auto": None, "trend": True, "level": False}


@dataclass(frozen=True)
class FamilyFit:
    """One trend setting on one family: the MASE of each series, and for each width factor of
    :data:`WIDTHS` (or the one given) the share of held-out points inside the interval."""

    mase: list[float]
    coverage: list[float]  # per width factor
    points: int = 1

    @property
    def mean_mase(self) -> float:
        finite = [m for m in self.mase if math.isfinite(m)]
        return float(np.mean(finite)) if finite else math.inf


def fit_family(series: Sequence[Series], horizon: int | Callable[[Series], int], trend: bool | None,
               widths: Sequence[float] = WIDTHS) -> FamilyFit:
    """Fit each series without its last ``horizon`` points and score the forecast of them."""
    scores: list[float] = []
    inside = np.zeros(len(widths))
    points = 0
    for s in series:
        h = horizon(s) if callable(horizon) else horizon
        train, test = s.values[:-h], s.values[-h:]
        m = season_length_for(train, s.step)
        try:
            pred = EtsBatch.fit(train[None, :], season_length=m, trend=trend, horizon=h).predict(h, LEVEL)
        except InputError:
            continue  # too short or empty: the accuracy command skips it too
        mean, half = pred.mean[0], pred.upper[0] - pred.mean[0]
        scores.append(mase(test, mean, train, m))
        ok = np.isfinite(test)
        err = np.abs(test[ok] - mean[ok])
        inside += np.array([float(np.sum(err <= w * half[ok])) for w in widths])
        points += int(ok.sum())
    return FamilyFit(scores, (inside / max(points, 1)).tolist(), points)


@dataclass(frozen=True)
class HeldOutFamily:
    family: str
    trend: str
    width: float
    mase: float  # mean over the family's series
    coverage: float
    in_sample_mase: float
    in_sample_coverage: float


def choose(fits: Mapping[str, Mapping[str, FamilyFit]], families: Sequence[str],
           widths: Sequence[float]) -> tuple[str, int]:
    """The trend setting with the lowest mean MASE over ``families`` (series weighted equally),
    and the index of the width factor whose pooled coverage there is nearest :data:`LEVEL` %."""
    def pooled_mase(trend: str) -> float:
        values = [m for f in families for m in fits[f][trend].mase if math.isfinite(m)]
        return float(np.mean(values)) if values else math.inf

    trends = list(next(iter(fits.values())))
    trend = min(trends, key=pooled_mase)
    points = np.array([fits[f][trend].points for f in families], float)
    coverage = np.array([fits[f][trend].coverage for f in families]).T @ points / max(points.sum(), 1.0)
    return trend, int(np.argmin(np.abs(coverage - LEVEL / 100.0)))


def leave_one_family_out(fits: Mapping[str, Mapping[str, FamilyFit]],
                         widths: Sequence[float] = WIDTHS) -> list[HeldOutFamily]:
    """``fits[family][trend]``; for each family the choice made on the others, and on all."""
    names = list(fits)
    if len(names) < 2:
        raise ValueError("leaving one family out needs at least two families")
    all_trend, all_w = choose(fits, names, widths)
    out = []
    for held in names:
        trend, w = choose(fits, [f for f in names if f != held], widths)
        fit, fit_all = fits[held][trend], fits[held][all_trend]
        out.append(HeldOutFamily(held, trend, widths[w], fit.mean_mase, fit.coverage[w],
                                 fit_all.mean_mase, fit_all.coverage[all_w]))
    return out
