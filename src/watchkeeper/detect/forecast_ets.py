"""A vectorised exponential-smoothing model fitted to many series at once (numpy only).

The model is ETS(A, Ad, A) in innovations form and its nested cases — no trend, linear trend,
damped trend; with or without additive seasonality — for every series of a batch:

    yhat_t = l + phi * b + s[t mod m]          e_t = y_t - yhat_t
    l <- l + phi * b + alpha * e_t             b <- phi * b + beta * e_t
    s[t mod m] <- s[t mod m] + gamma * e_t

Why not statsforecast's AutoETS for the refresh: it costs about a second per series here, and a
thousand series must refresh in well under a minute. Here the recursion runs once per time step
over an array of (candidate models × series), so a grid of a few hundred candidate parameter
sets costs the same Python overhead as one model. After the fit, ``update`` pushes new points
through the recursion with the parameters fixed: a refresh costs microseconds per series.

How a candidate is chosen: not by the one-step likelihood alone. Utilisation noise is mostly
autocorrelated and mean-reverting, so the one-step error is smallest for a large alpha that
chases it, while forecasts a day ahead are best with a small alpha (measured: alpha 0.7 picked
by one-step AIC scored MASE 1.76 on a seeded series where alpha 0.02 scored 0.82). So the
recursion also scores, at every step, the forecasts made ``h`` steps earlier for a few
horizons up to the forecast horizon (ring buffers of past levels and slopes), and each series
keeps the candidate with the lowest ``n log(mean multi-step MSE) + 2k`` (an AIC on the errors
the forecasts will actually make; it still "detects" seasonality and damping), then two local
refinement rounds polish its smoothing parameters. The per-horizon error variances measured
in-sample also set the prediction intervals (relative to the one-step sigma, which ``update``
keeps current), instead of the textbook formula, which assumes the model is the true process.
For horizons beyond one season, the seasonal term of an h-step forecast is approximated by the
current one (the seasonal state moves slowly: gamma is small).

Missing points (NaN) are skipped: the state advances on its own forecast, as for a gap.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from watchkeeper.errors import InputError

Array = npt.NDArray[np.float64]

#: Smoothing-parameter grid of the first, coarse round (innovations form, see module doc).
_ALPHAS = (0.003, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9)
_BETA_FRACTIONS = (0.01, 0.1)  # beta = fraction * alpha
_PHIS = (0.9, 0.98, 1.0)
_GAMMA_FRACTIONS = (0.002, 0.02, 0.1, 0.3)  # gamma = fraction * (1 - alpha)
#: The coarse round scores multi-step errors at every ``_COARSE_STRIDE``-th step only (h-step
#: errors of neighbouring steps are strongly correlated: little is lost, much time is saved).
_COARSE_STRIDE = 4
#: Multipliers of the two local refinement rounds (applied to alpha, beta and gamma fractions).
_REFINE = ((0.6, 1.0, 1.6), (0.8, 1.0, 1.25))
#: Horizons scored besides one step ahead, as fractions of the fit horizon (rounded, distinct).
_HORIZON_FRACTIONS = (0.125, 0.25, 0.5, 1.0)
#: Bound on the ((season length + 2 × horizon) × candidates × series) floats one pass holds at once.
_MAX_CELLS = 6_000_000


@dataclass(frozen=True, slots=True)
class Params:
    """Parameters of every series of a batch (one entry per series)."""

    alpha: Array
    beta: Array
    gamma: Array
    phi: Array
    trend: npt.NDArray[np.bool_]
    seasonal: npt.NDArray[np.bool_]

    def method(self, i: int) -> str:
        """The model name of series ``i`` in the usual ETS notation, e.g. ``ETS(A,Ad,A)``."""
        trend = "N" if not self.trend[i] else ("A" if self.phi[i] >= 1.0 else "Ad")
        return f"ETS(A,{trend},{'A' if self.seasonal[i] else 'N'})"


@dataclass(frozen=True, slots=True)
class Prediction:
    """Point forecasts and a central prediction interval, shape (series, horizon)."""

    mean: Array
    lower: Array
    upper: Array
    level: float


class EtsBatch:
    """Fitted models for a batch of equal-length, equally spaced series sharing one season length.

    >>> t = np.arange(240.0)
    >>> y = np.vstack([10 + 0.5 * t, 50 + 5 * np.sin(2 * np.pi * t / 24)])
    >>> model = EtsBatch.fit(y, season_length=24)
    >>> [model.params.method(i) for i in range(2)]
    ['ETS(A,A,N)', 'ETS(A,N,A)']
    >>> np.round(model.predict(2).mean, 1)
    array([[130. , 130.5],
           [ 50. ,  51.3]])
    >>> model.update(np.array([[130.0], [50.0]]))
    >>> model.n_seen
    241
    """

    def __init__(self, params: Params, level: Array, trend: Array, season: Array, season_length: int,
                 n_seen: int, sse: Array, n_obs: Array, n_params: Array, horizons: tuple[int, ...] = (),
                 variance_ratio: Array | None = None) -> None:
        self.params = params
        self.level = level
        self.trend = trend
        self.season = season  # (m, series): the latest seasonal term of each phase
        self.season_length = season_length
        self.n_seen = n_seen
        self.sse = sse
        self.n_obs = n_obs
        self.n_params = n_params
        #: In-sample h-step error variance over the one-step one, for h in ``horizons`` (> 1).
        self.horizons = horizons
        self.variance_ratio = np.ones((len(horizons), len(level))) if variance_ratio is None else variance_ratio

    @classmethod
    def fit(cls, y: npt.ArrayLike, season_length: int = 1, *, trend: bool | None = None,
            horizon: int | None = None) -> EtsBatch:
        """Fit every row of ``y`` (series × time); ``season_length`` ≤ 1 means no seasonality.

        ``trend``: None lets the criterion choose per series; True keeps only trended models
        (linear or damped), which capacity warnings want; False only level models.
        ``horizon``: how far ahead (steps) the forecasts matter; parameters are chosen on the
        errors up to it (default: one season, at least 12 steps).
        """
        values = np.atleast_2d(np.asarray(y, dtype=np.float64))
        n_series, n_time = values.shape
        if n_time < 4:
            raise InputError(f"need at least 4 points to fit a forecast, got {n_time}")
        finite = np.isfinite(values)
        if not finite.any(axis=1).all():
            raise InputError("a series has no finite value")
        values = np.where(finite, values, np.nan)
        m = season_length if season_length > 1 and n_time >= 2 * season_length + 2 else 1
        burn = min(max(m, 10), n_time // 4)
        wanted = max(m, 12) if horizon is None else max(1, int(horizon))
        top = max(1, min(wanted, (n_time - burn) // 2))
        horizons = tuple(sorted({max(2, round(f * top)) for f in _HORIZON_FRACTIONS})) if top > 1 else ()
        init = _initial_states(values, m)
        grid = [g for g in _coarse_grid(m > 1) if trend is None or g[4] == trend]
        cand = {name: np.repeat(np.array([g[i] for g in grid])[:, None], n_series, axis=1)
                for i, name in enumerate(("alpha", "beta", "gamma", "phi", "trend", "seasonal"))}
        best = _search(values, cand, init, m, burn, horizons, _COARSE_STRIDE)
        for multipliers in _REFINE:
            cand = _local_grid(best, multipliers)
            best = _search(values, cand, init, m, burn, horizons, 1)
        return best

    def update(self, y: npt.ArrayLike) -> None:
        """Push new points (series × new steps, NaN for missing) through the fitted recursion."""
        values = np.atleast_2d(np.asarray(y, dtype=np.float64))
        if values.shape[0] != self.level.shape[0]:
            raise InputError(f"update has {values.shape[0]} series, the model has {self.level.shape[0]}")
        p = self.params
        level, trend, season = self.level[None, :], self.trend[None, :], self.season[:, None, :]
        sse = np.zeros((1, values.shape[0]))
        nobs = np.zeros((1, values.shape[0]))
        _recurse(values, self.n_seen, self.season_length, level, trend, season,
                 p.alpha[None, :], p.beta[None, :], p.gamma[None, :], p.phi[None, :], sse, nobs, 0)
        self.level, self.trend, self.season = level[0], trend[0], season[:, 0, :]
        self.sse = self.sse + sse[0]
        self.n_obs = self.n_obs + nobs[0]
        self.n_seen += values.shape[1]

    @property
    def sigma(self) -> Array:
        """Standard deviation of the one-step errors (degrees of freedom corrected)."""
        dof = np.maximum(self.n_obs - self.n_params, 1.0)
        return np.sqrt(self.sse / dof)

    def predict(self, horizon: int, level: float = 80.0) -> Prediction:
        """Forecast ``horizon`` steps after the last point seen, with a ``level`` % interval."""
        p, m = self.params, self.season_length
        steps = np.arange(1, horizon + 1, dtype=np.float64)
        phi = p.phi[:, None]
        # phi_h = phi + phi^2 + ... + phi^h (equals h when phi == 1)
        damped = np.where(phi < 1.0, phi * (1.0 - phi**steps) / np.where(phi < 1.0, 1.0 - phi, 1.0), steps)
        phase = (self.n_seen + np.arange(horizon)) % m
        mean = self.level[:, None] + damped * self.trend[:, None] + self.season[phase].T
        # Variance multipliers c_j = alpha + beta * phi_j + gamma * [j mod m == 0], j = 1 .. h-1.
        c = p.alpha[:, None] + p.beta[:, None] * damped[:, :-1]
        if m > 1:
            c = c + p.gamma[:, None] * (np.arange(1, horizon) % m == 0)[None, :]
        var = np.concatenate([np.ones((mean.shape[0], 1)), 1.0 + np.cumsum(c**2, axis=1)], axis=1)
        if self.horizons:
            var = self._measured_variance(var)
        from scipy.special import ndtri  # ~27 MiB: imported by the first forecast, not by every serve

        z = float(ndtri(0.5 + level / 200.0))
        half = z * self.sigma[:, None] * np.sqrt(var)
        return Prediction(mean=mean, lower=mean - half, upper=mean + half, level=level)

    def _measured_variance(self, model_var: Array) -> Array:
        """Variance multipliers from the in-sample h-step errors: interpolated linearly between
        the scored horizons, and beyond the last one grown like the model's own formula."""
        horizon = model_var.shape[1]
        hs = np.array((1, *self.horizons), dtype=np.float64)
        ratio = np.vstack([np.ones((1, model_var.shape[0])), self.variance_ratio])  # (len(hs), series)
        steps = np.arange(1, horizon + 1, dtype=np.float64)
        last = len(hs) - 1
        pos = np.clip(np.searchsorted(hs, steps, side="right") - 1, 0, max(last - 1, 0))
        if last == 0:
            inside = np.broadcast_to(ratio[0][:, None], model_var.shape)
        else:
            w = np.clip((steps - hs[pos]) / (hs[pos + 1] - hs[pos]), 0.0, 1.0)
            inside = ratio[pos].T * (1.0 - w) + ratio[pos + 1].T * w
        top = int(hs[last])
        if horizon <= top:
            out: Array = np.asarray(inside, dtype=np.float64)
            return out
        growth = model_var / model_var[:, top - 1: top]
        return np.where(steps[None, :] <= top, inside, ratio[last][:, None] * growth)


def _coarse_grid(seasonal: bool) -> list[tuple[float, float, float, float, bool, bool]]:
    grid: list[tuple[float, float, float, float, bool, bool]] = []
    seasons: list[float | None] = [None, *(_GAMMA_FRACTIONS if seasonal else ())]
    for alpha, gamma_f in itertools.product(_ALPHAS, seasons):
        gamma = 0.0 if gamma_f is None else gamma_f * (1.0 - alpha)
        grid.append((alpha, 0.0, gamma, 1.0, False, gamma_f is not None))
        for beta_f, phi in itertools.product(_BETA_FRACTIONS, _PHIS):
            grid.append((alpha, beta_f * alpha, gamma, phi, True, gamma_f is not None))
    return grid


def _local_grid(best: EtsBatch, multipliers: tuple[float, ...]) -> dict[str, Array]:
    p = best.params
    alpha, beta_f = p.alpha, p.beta / p.alpha
    gamma_f = p.gamma / np.maximum(1.0 - p.alpha, 1e-9)
    rows: dict[str, list[Array]] = {k: [] for k in ("alpha", "beta", "gamma", "phi", "trend", "seasonal")}
    for ma, mb, mg in itertools.product(multipliers, repeat=3):
        a = np.clip(alpha * ma, 0.001, 0.999)
        rows["alpha"].append(a)
        rows["beta"].append(np.where(p.trend, np.clip(beta_f * mb, 0.0, 1.0) * a, 0.0))
        rows["gamma"].append(np.where(p.seasonal, np.clip(gamma_f * mg, 0.0, 1.0) * (1.0 - a), 0.0))
        rows["phi"].append(p.phi)
        rows["trend"].append(p.trend.astype(np.float64))
        rows["seasonal"].append(p.seasonal.astype(np.float64))
    return {k: np.vstack(v) for k, v in rows.items()}


@dataclass(frozen=True, slots=True)
class _Init:
    level: Array  # (2, series): index 0 without seasonality, 1 with
    trend: Array
    season: Array  # (m, series)


def _initial_states(y: Array, m: int) -> _Init:
    """Heuristic initial states: cycle means and their slope (seasonal), a line fit (otherwise)."""
    n_series, n_time = y.shape
    fallback = np.nanmean(y, axis=1)
    if m > 1:
        cycles = min(50, n_time // m)  # every cycle: a steadier profile than the first few
        block = y[:, : cycles * m].reshape(n_series, cycles, m)
        means = _nanmean(block, axis=2, fallback=fallback[:, None])
        slope_s = (means[:, -1] - means[:, 0]) / ((cycles - 1) * m)
        phase = np.arange(m) - (m - 1) / 2.0
        detrended = block - (means[:, :, None] + slope_s[:, None, None] * phase[None, None, :])
        season = _nanmean(detrended, axis=1, fallback=np.zeros((n_series, 1)))
        season = season - season.mean(axis=1, keepdims=True)
        level_s = means[:, 0] - slope_s * (m + 1) / 2.0
    else:
        season = np.zeros((n_series, 1))
        level_s = slope_s = np.zeros(n_series)
    width = min(n_time, max(10, m))
    window = y[:, :width]
    x = np.arange(width, dtype=np.float64)
    ok = np.isfinite(window)
    cnt = np.maximum(ok.sum(axis=1), 1)
    xm = (x * ok).sum(axis=1) / cnt
    ym = np.where(ok.any(axis=1), np.nansum(window, axis=1) / cnt, fallback)
    dx = np.where(ok, x - xm[:, None], 0.0)
    sxx = (dx**2).sum(axis=1)
    sxy = (dx * np.where(ok, window - ym[:, None], 0.0)).sum(axis=1)
    slope_n = np.where(sxx > 0, sxy / np.maximum(sxx, 1e-12), 0.0)
    level_n = ym - slope_n * (xm + 1.0)
    return _Init(level=np.vstack([level_n, level_s]), trend=np.vstack([slope_n, slope_s]),
                 season=np.ascontiguousarray(season.T))


def _nanmean(a: Array, axis: int, fallback: Array) -> Array:
    ok = np.isfinite(a)
    cnt = ok.sum(axis=axis)
    total = np.where(ok, a, 0.0).sum(axis=axis)
    out: Array = np.where(cnt > 0, total / np.maximum(cnt, 1), np.broadcast_to(fallback, total.shape))
    return out


def _search(y: Array, cand: dict[str, Array], init: _Init, m: int, burn: int,
            horizons: tuple[int, ...], stride: int) -> EtsBatch:
    """Run every candidate (K × series) over the data; keep each series' best candidate."""
    k, n_series = cand["alpha"].shape
    chunk = max(1, _MAX_CELLS // (k * (m + 2 * max(horizons, default=0))))
    best: list[EtsBatch] = []
    for lo in range(0, n_series, chunk):
        sl = slice(lo, min(lo + chunk, n_series))
        best.append(_search_chunk(y[sl], {n: c[:, sl] for n, c in cand.items()},
                                  _Init(init.level[:, sl], init.trend[:, sl], init.season[:, sl]), m, burn,
                                  horizons, stride))
    if len(best) == 1:
        return best[0]
    p = [b.params for b in best]
    cat = np.concatenate
    return EtsBatch(
        Params(cat([q.alpha for q in p]), cat([q.beta for q in p]), cat([q.gamma for q in p]),
               cat([q.phi for q in p]), cat([q.trend for q in p]), cat([q.seasonal for q in p])),
        cat([b.level for b in best]), cat([b.trend for b in best]), cat([b.season for b in best], axis=1),
        m, best[0].n_seen, cat([b.sse for b in best]), cat([b.n_obs for b in best]),
        cat([b.n_params for b in best]), horizons, cat([b.variance_ratio for b in best], axis=1))


def _search_chunk(y: Array, cand: dict[str, Array], init: _Init, m: int, burn: int,
                  horizons: tuple[int, ...], stride: int) -> EtsBatch:
    k, n = cand["alpha"].shape
    n_time = y.shape[1]
    trend = cand["trend"] > 0.5
    seasonal = cand["seasonal"] > 0.5
    sidx = seasonal.astype(np.intp)
    level = np.take_along_axis(init.level, sidx, axis=0) if k else init.level[:0]
    slope = np.where(trend, np.take_along_axis(init.trend, sidx, axis=0), 0.0)
    season = np.where(seasonal[None, :, :], init.season[:, None, :], 0.0)
    sse = np.zeros((k, n))
    nobs = np.zeros((k, n))
    hsse = np.zeros((len(horizons), k, n))
    hnobs = np.zeros((len(horizons), n))
    _recurse(y, 0, m, level, slope, season, cand["alpha"], cand["beta"], cand["gamma"], cand["phi"],
             sse, nobs, burn, horizons, hsse, hnobs, stride)
    n_params = 2.0 + trend * 2.0 + (trend & (cand["phi"] < 1.0)) * 1.0 + seasonal * float(m)
    eff = np.maximum(nobs, 1.0)
    scale = np.nanmean(y**2, axis=1)[None, :] + 1.0
    mse = sse / eff
    hmse = hsse / np.maximum(hnobs, 1.0)[:, None, :]
    crit_mse = (mse + hmse.sum(axis=0)) / (1 + len(horizons))
    aic = eff * np.log(np.maximum(crit_mse, 1e-12 * scale)) + 2.0 * n_params
    pick = np.argmin(aic, axis=0)[None, :]

    def take(a: Array) -> Array:
        out: Array = np.take_along_axis(a, pick, axis=0)[0]
        return out

    total_sse = take(sse)
    params = Params(alpha=take(cand["alpha"]), beta=take(cand["beta"]), gamma=take(cand["gamma"]),
                    phi=take(cand["phi"]), trend=take(trend.astype(np.float64)) > 0.5,
                    seasonal=take(seasonal.astype(np.float64)) > 0.5)
    final_season = np.take_along_axis(season, np.broadcast_to(pick[None, :, :], (m, 1, n)), axis=1)[:, 0, :]
    one = np.maximum(take(mse), 1e-300)
    ratio = np.array([np.maximum(take(hm) / one, 1.0) for hm in hmse]).reshape(len(horizons), n)
    ratio = np.where(np.isfinite(ratio), ratio, 1.0)
    return EtsBatch(params, take(level), take(slope), np.ascontiguousarray(final_season), m, n_time,
                    total_sse, take(nobs), take(n_params), horizons, np.maximum.accumulate(ratio, axis=0))


def _recurse(y: Array, start: int, m: int, level: Array, slope: Array, season: Array, alpha: Array,
             beta: Array, gamma: Array, phi: Array, sse: Array, nobs: Array, burn: int,
             horizons: tuple[int, ...] = (), hsse: Array | None = None, hnobs: Array | None = None,
             stride: int = 1) -> None:
    """The ETS recursion over ``y`` (series × time) for candidate arrays (K × series), in place.

    With ``horizons``, also adds the squared errors of the forecasts made h steps earlier (from
    origins at or after ``burn``) to ``hsse`` (horizons × K × series), counts in ``hnobs``; at
    every ``stride``-th step only.
    """
    yt = np.ascontiguousarray(y.T)
    has_nan = bool(np.isnan(yt).any())
    fit = np.empty_like(level)
    err = np.empty_like(level)
    ring = max(horizons, default=0)
    past_level = np.zeros((ring, *level.shape))
    past_slope = np.zeros((ring, *level.shape))
    # phi + phi^2 + ... + phi^h: the damped trend multiplier of an h-step forecast.
    damped = [np.where(phi < 1.0, phi * (1.0 - phi**h) / np.where(phi < 1.0, 1.0 - phi, 1.0), float(h))
              for h in horizons]
    herr = np.empty_like(level)
    for t in range(yt.shape[0]):
        s_old = season[(start + t) % m]
        missing = np.isnan(yt[t]) if has_nan else None
        if missing is not None and not missing.any():
            missing = None
        if hsse is not None and hnobs is not None and t % stride == 0:
            for j, h in enumerate(horizons):
                if t - h < burn:
                    continue
                np.multiply(damped[j], past_slope[(t - h) % ring], out=herr)
                herr += past_level[(t - h) % ring]
                herr += s_old
                np.subtract(yt[t], herr, out=herr)
                if missing is not None:
                    herr[:, missing] = 0.0
                    hnobs[j, ~missing] += 1.0
                else:
                    hnobs[j] += 1.0
                herr *= herr
                hsse[j] += herr
        np.multiply(phi, slope, out=fit)
        fit += level
        np.subtract(yt[t], fit, out=err)
        err -= s_old
        if missing is not None:
            err[:, missing] = 0.0
            if t >= burn:
                nobs[:, ~missing] += 1.0
        elif t >= burn:
            nobs += 1.0
        np.multiply(alpha, err, out=level)
        level += fit
        slope *= phi
        slope += beta * err
        s_old += gamma * err
        if t >= burn:
            sse += err * err
        if ring:
            past_level[t % ring] = level
            past_slope[t % ring] = slope
    if math.isnan(float(sse.sum())):
        raise InputError("the forecast diverged (non-finite errors)")
