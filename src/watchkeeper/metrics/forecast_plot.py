"""Draw one series with its forecast, prediction band and threshold (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # never a window: this runs in terminals and CI

import matplotlib.pyplot as plt
import numpy as np

from watchkeeper.detect.forecast import SeriesForecast


def plot_forecast(fc: SeriesForecast, threshold: float, path: Path, *, history: int | None = None) -> None:
    """Write a PNG: the last ``history`` points, the forecast, its band, the threshold, the crossing."""
    s = fc.series
    values = s.values if history is None else s.values[-history:]
    first = len(s.values) - len(values)
    step = s.step.total_seconds()
    start = s.start.timestamp()
    t_hist = [np.datetime64(int(start + (first + i) * step), "s") for i in range(len(values))]
    h = fc.prediction.mean.shape[1]
    end = s.end.timestamp()
    t_fc = [np.datetime64(int(end + (i + 1) * step), "s") for i in range(h)]
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    try:
        ax.plot(t_hist, values, color="#1f77b4", lw=1.0, label="observed")
        ax.plot(t_fc, fc.prediction.mean[0], color="#ff7f0e", lw=1.5, label=f"forecast ({fc.method})")
        ax.fill_between(t_fc, fc.prediction.lower[0], fc.prediction.upper[0], color="#ff7f0e", alpha=0.25,
                        label=f"{fc.prediction.level:g}% interval")
        ax.axhline(threshold, color="#d62728", ls="--", lw=1.0, label=f"threshold {threshold:g}")
        at = fc.crossing_at
        if at is not None:
            ax.axvline(at, color="#d62728", lw=0.8, alpha=0.7)  # type: ignore[arg-type]
            ax.set_title(f"{s.name}: crosses {threshold:g} at {at:%Y-%m-%d %H:%M} UTC")
        else:
            ax.set_title(f"{s.name}: no crossing of {threshold:g} within the horizon")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
