"""The threshold forecaster: crossings on seeded series with a known answer, events, the model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from watchkeeper.detect.forecast import (
    Crossing,
    Direction,
    Forecaster,
    Series,
    find_crossing,
    season_length_for,
)
from watchkeeper.detect.forecast_ets import EtsBatch
from watchkeeper.errors import InputError
from watchkeeper.eval.forecast import autoets_forecast, mase, synthetic_utilisation
from watchkeeper.metrics.forecast_cli import app
from watchkeeper.model import EventKind, Severity, Status

T0 = datetime(2024, 5, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)
LABELS = {"__name__": "disk_used_percent", "mountpoint": "/var", "instance": "db-1", "service": "postgres"}


def ramp(n: int = 300, slope: float = 0.15, start: float = 40.0, sd: float = 0.5, seed: int = 0) -> Series:
    noise = np.random.default_rng(seed).normal(0.0, sd, n)
    return Series("db-1:/var", T0, STEP, start + slope * np.arange(n, dtype=np.float64) + noise, LABELS)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_linear_ramp_crossing_matches_the_analytic_step(seed: int) -> None:
    series = ramp(seed=seed)
    # The noiseless line is 40 + 0.15 t; after t = 299 it reaches 90 at t = 333.33: 34.33 steps on.
    truth = (90.0 - (40.0 + 0.15 * 299)) / 0.15
    fc = Forecaster(threshold=90.0, horizon=timedelta(hours=6))
    fc.fit([series])
    [result] = fc.forecasts()
    c = result.crossing
    assert c is not None
    assert abs(c.steps - truth) <= 0.2 * truth  # within 20 % (about 7 steps of 5 min)
    assert c.latest is not None
    assert c.earliest <= truth <= c.latest
    assert result.crossing_at == series.end + STEP * c.steps


def test_seasonal_series_with_trend_crosses_near_the_analytic_step() -> None:
    t = np.arange(24 * 30, dtype=np.float64)
    rng = np.random.default_rng(5)
    y = 50.0 + 0.05 * t + 5.0 * np.sin(2 * np.pi * t / 24) + rng.normal(0.0, 0.3, t.size)
    series = Series("web-1:cpu", T0, timedelta(hours=1), y, {"instance": "web-1"})
    # The noiseless curve after the last point (t = 719): its first step at or above 90.
    ahead = np.arange(720, 900, dtype=np.float64)
    line = 50.0 + 0.05 * ahead + 5.0 * np.sin(2 * np.pi * ahead / 24)
    truth = int(np.flatnonzero(line >= 90.0)[0]) + 1  # steps after the last point
    fc = Forecaster(threshold=90.0, horizon=timedelta(days=3))
    fc.fit([series])
    [result] = fc.forecasts()
    assert result.method.endswith(",A)")  # the daily season was detected
    assert result.crossing is not None
    assert abs(result.crossing.steps - truth) <= 2.0, (result.crossing, truth)


@pytest.mark.parametrize(
    ("last", "path", "threshold", "direction", "expected"),
    [
        (80.0, [82.0, 86.0, 90.0, 94.0], 90.0, Direction.ABOVE, Crossing(3.0, 2.0, 4.0)),
        (80.0, [82.0, 86.0, 88.0, 89.0], 90.0, Direction.ABOVE, None),
        (95.0, [96.0, 97.0], 90.0, Direction.ABOVE, Crossing(0.0, 0.0, 0.0)),
        (30.0, [26.0, 22.0, 18.0], 20.0, Direction.BELOW, Crossing(2.5, 1.5, None)),
        (80.0, [81.0, 85.0, 91.0], 90.0, Direction.ABOVE, Crossing(2 + 5 / 6, 2 + 1 / 6, None)),
    ],
)
def test_find_crossing(last: float, path: list[float], threshold: float, direction: Direction,
                       expected: Crossing | None) -> None:
    p = np.array(path)
    got = find_crossing(last, p, p - 4.0, p + 4.0, threshold, direction)
    if expected is None:
        assert got is None
        return
    assert got is not None
    assert got.steps == pytest.approx(expected.steps)
    assert got.earliest == pytest.approx(expected.earliest)
    assert (got.latest is None) == (expected.latest is None)
    if expected.latest is not None:
        assert got.latest == pytest.approx(expected.latest)


def test_event_fields_and_lifecycle() -> None:
    series = ramp()
    fc = Forecaster(threshold=90.0, horizon=timedelta(hours=6), unit="%", urgent=timedelta(minutes=30))
    fc.fit([series])
    [event] = fc.events(now=series.end)
    assert event.source == "forecast"
    assert event.kind is EventKind.FORECAST
    assert event.status is Status.FIRING
    assert event.severity is Severity.WARNING  # the earliest crossing is > 30 min away
    assert (event.service, event.resource) == ("postgres", "db-1")
    assert event.summary.startswith("disk_used_percent /var on db-1 will cross 90% in 2h")
    assert "(80% interval: " in event.summary
    assert event.starts_at == series.end and event.ends_at is None
    assert event.labels["forecast_threshold"] == "90"
    assert event.raw["model"].startswith("ETS(A,A")
    assert event.raw["crossing_in_seconds"] == pytest.approx(event.raw["crossing_in_seconds"])
    assert 5400 < event.raw["crossing_in_seconds"] < 12600
    # Same series and threshold on the next refresh: the same fingerprint (one alert, updated).
    fc.update({"db-1:/var": [85.0]})
    [again] = fc.events(now=series.end + STEP)
    assert again.fingerprint == event.fingerprint
    # Another threshold is another condition.
    other = Forecaster(threshold=95.0, horizon=timedelta(hours=12))
    other.fit([series])
    assert other.events(now=series.end)[0].fingerprint != event.fingerprint
    # The disk is cleaned up: one resolved event, then silence.
    fc.update({"db-1:/var": [20.0] * 24})
    [resolved] = fc.events(now=series.end + timedelta(hours=2))
    assert resolved.status is Status.RESOLVED
    assert resolved.fingerprint == event.fingerprint
    assert resolved.ends_at is not None
    assert "no longer predicted" in resolved.summary
    assert fc.events(now=series.end + timedelta(hours=2)) == []


def test_no_crossing_no_event_and_already_crossed() -> None:
    flat = Series("flat", T0, STEP, 50.0 + np.random.default_rng(1).normal(0, 1, 300), {"instance": "a"})
    high = Series("high", T0, STEP, 95.0 + np.random.default_rng(2).normal(0, 0.5, 300), {"instance": "b"})
    fc = Forecaster(threshold=90.0, horizon=timedelta(hours=6))
    fc.fit([flat, high])
    events = fc.events(now=flat.end)
    assert [e.resource for e in events] == ["b"]
    assert events[0].summary == "high on b has already crossed 90"
    assert events[0].severity is Severity.ERROR


def test_below_direction_warns_when_free_space_runs_out() -> None:
    free = Series("free", T0, STEP, 60.0 - 0.2 * np.arange(200.0), {"instance": "c"})
    fc = Forecaster(threshold=10.0, horizon=timedelta(hours=5), direction="below")
    fc.fit([free])
    [event] = fc.events(now=free.end)
    assert "will fall below 10 in" in event.summary
    # 60 - 0.2 t is 20.2 at t = 199 and reaches 10 51 steps later.
    assert event.raw["crossing_in_seconds"] == pytest.approx(51 * 300, abs=300)


def test_update_equals_fitting_the_longer_series_states() -> None:
    data = synthetic_utilisation(4, 400, seed=11).values
    model = EtsBatch.fit(data[:, :300], season_length=24)
    copy = EtsBatch(model.params, model.level.copy(), model.trend.copy(), model.season.copy(), 24,
                    model.n_seen, model.sse.copy(), model.n_obs.copy(), model.n_params)
    model.update(data[:, 300:])
    for k in range(300, 400):
        copy.update(data[:, k:k + 1])
    assert model.n_seen == copy.n_seen == 400
    np.testing.assert_allclose(model.predict(30).mean, copy.predict(30).mean)
    np.testing.assert_allclose(model.sigma, copy.sigma)


def test_gaps_are_skipped() -> None:
    y = 40.0 + 0.1 * np.arange(300.0)
    y[100:120] = np.nan
    model = EtsBatch.fit(y[None, :], season_length=1)
    assert np.isfinite(model.predict(10).mean).all()
    assert model.predict(1).mean[0, 0] == pytest.approx(70.0, abs=0.5)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(InputError):
        EtsBatch.fit(np.array([[1.0, 2.0]]))
    with pytest.raises(InputError):
        EtsBatch.fit(np.array([[np.nan] * 10]))
    with pytest.raises(InputError):
        Forecaster(threshold=1.0, horizon=timedelta(0))
    fc = Forecaster(threshold=1.0, horizon=timedelta(hours=1))
    fc.fit([ramp()])
    with pytest.raises(InputError):
        fc.update({"nope": [1.0]})


def test_season_detection() -> None:
    t = np.arange(24 * 14, dtype=np.float64)
    daily = 10.0 * np.sin(2 * np.pi * t / 24) + np.random.default_rng(0).normal(0, 1, t.size)
    assert season_length_for(daily, timedelta(hours=1)) == 24
    assert season_length_for(np.random.default_rng(0).normal(0, 1, t.size), timedelta(hours=1)) == 1
    assert season_length_for(daily[:48], timedelta(hours=1)) == 1  # too short to tell


def test_fast_model_is_as_accurate_as_autoets() -> None:
    """Seeded hourly utilisation series: mean MASE within 5 % of statsforecast's AutoETS."""
    h, m = 24, 24
    data = synthetic_utilisation(5, 480 + h, seed=42, crossing_share=0.4).values
    train, test = data[:, :-h], data[:, -h:]
    fast = EtsBatch.fit(train, season_length=m).predict(h).mean
    ours = [mase(test[i], fast[i], train[i], m) for i in range(len(data))]
    ref = [mase(test[i], autoets_forecast(train[i], h, m), train[i], m) for i in range(len(data))]
    assert np.mean(ours) <= np.mean(ref) * 1.05, (ours, ref)


def test_beats_seasonal_naive_and_the_80_percent_interval_covers_about_80_percent() -> None:
    """Held-out day of seeded series: better than seasonal naive, and calibrated intervals."""
    h, m = 24, 24
    data = synthetic_utilisation(80, 600 + h, seed=3).values
    train, test = data[:, :-h], data[:, -h:]
    pred = EtsBatch.fit(train, season_length=m, horizon=h).predict(h, level=80.0)
    ours = [mase(test[i], pred.mean[i], train[i], m) for i in range(len(data))]
    naive = [mase(test[i], np.resize(train[i, -m:], h), train[i], m) for i in range(len(data))]
    assert np.mean(ours) < np.mean(naive), (np.mean(ours), np.mean(naive))
    covered = float(((test >= pred.lower) & (test <= pred.upper)).mean())
    assert 0.7 <= covered <= 0.9, covered


def test_cli_prints_the_crossing_and_writes_a_plot(tmp_path: Path) -> None:
    series = ramp()
    wide = tmp_path / "disk.csv"
    lines = ["timestamp,/var,/home"]
    for i, v in enumerate(series.values):
        lines.append(f"{(T0 + STEP * i).isoformat()},{v:.4f},{30.0 + 0.001 * i:.4f}")
    wide.write_text("\n".join(lines) + "\n")
    png = tmp_path / "out.png"
    result = CliRunner().invoke(app, [str(wide), "--horizon", "6h", "--threshold", "90", "--column", "/var",
                                      "--unit", "%", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert "crosses 90% at 2024-05-02" in result.output
    assert "80% interval" in result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = CliRunner().invoke(app, [str(wide), "--horizon", "6h", "--threshold", "90", "--column", "/home"])
    assert result.exit_code == 0, result.output
    assert "no crossing of 90 within 6h" in result.output
