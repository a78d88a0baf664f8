"""Forecast evaluation: metrics, lead times on a ramp with a known crossing, the eval CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from watchkeeper.eval.forecast import first_crossing, lead_times, mase, seasonal_naive, smape
from watchkeeper.eval.forecast_cli import app


def test_metrics() -> None:
    train = np.array([1.0, 2.0, 1.0, 2.0, 1.0, 2.0])
    assert mase(np.array([1.0, 2.0]), seasonal_naive(train, 2, 2), train, 2) == 0.0
    assert mase(np.array([2.0]), np.array([1.0]), train, 1) == pytest.approx(1.0)
    assert np.isnan(mase(np.array([np.nan]), np.array([1.0]), train, 1))
    assert smape(np.array([1.0]), np.array([1.0])) == 0.0
    assert smape(np.array([1.0]), np.array([0.0])) == pytest.approx(200.0)


def test_lead_time_on_a_ramp_and_no_false_alarm_on_flat_series() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(600, dtype=np.float64)
    ramp = 50.0 + np.clip(t - 300, 0, None) * 0.2 + rng.normal(0, 0.3, t.size)  # reaches 90 at t = 500
    flat = 50.0 + rng.normal(0, 0.3, t.size)
    values = np.vstack([ramp, flat])
    crossing = first_crossing(ramp, 90.0, 0)
    assert crossing is not None and abs(crossing - 500) <= 5
    lt = lead_times(values, 90.0, 48, 1, warmup=200, every=1, refit_every=24, trend=True)
    assert lt.crossings == 1 and lt.missed == 0
    assert 24 <= lt.lead_steps[0] <= 48 + 1  # warned most of a horizon ahead, never earlier
    assert lt.false_alarms == 0
    assert lt.series == 2


def test_eval_cli(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(400)
    lines = ["timestamp,a,b"]
    for i in t:
        a = 40.0 + 0.12 * i + rng.normal(0, 0.3)
        b = 30.0 + 5 * np.sin(2 * np.pi * i / 24) + rng.normal(0, 0.3)
        lines.append(f"{1_700_000_000 + 3600 * int(i)},{a:.3f},{b:.3f}")
    (tmp_path / "util.csv").write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(app, [str(tmp_path), "--horizon", "12h", "--threshold", "80", "--autoets", "0"])
    assert result.exit_code == 0, result.output
    assert "2 series read from 1 file(s)" in result.output
    assert "seasonal naive" in result.output
    assert "1 real crossing(s), 0 missed" in result.output
