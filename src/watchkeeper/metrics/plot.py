"""Plot a series with its anomaly score and anomaly windows (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


def plot(
    path: Path, times: FloatArray, values: FloatArray, scores: FloatArray,
    windows: Sequence[tuple[int, int]], *, title: str = "", threshold: float | None = None,
) -> None:
    """Write a PNG: the series on top (anomalous points and windows in red), the score below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    when = [datetime.fromtimestamp(float(t), UTC) for t in times]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(12, 5), height_ratios=(3, 1))
    try:
        top.plot(when, values, lw=0.8, color="tab:blue", label="value")
        for a, b in windows:
            top.axvspan(when[a], when[b], color="tab:red", alpha=0.25, lw=0)
        hot = np.zeros(len(values), dtype=bool)
        for a, b in windows:
            hot[a: b + 1] = True
        if hot.any():
            top.scatter([w for w, h in zip(when, hot, strict=True) if h], values[hot], s=8,
                        color="tab:red", label="anomaly", zorder=3)
        top.set_title(title)
        top.legend(loc="upper left")
        bottom.plot(when, scores, lw=0.8, color="tab:gray")
        if threshold is not None:
            bottom.axhline(threshold, color="tab:red", ls="--", lw=0.8)
        bottom.set_ylim(0, 1)
        bottom.set_ylabel("score")
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
