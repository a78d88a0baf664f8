"""Forecast refresh speed and accuracy: vectorised ETS for every series vs statsforecast AutoETS.

    .venv/bin/python benchmarks/forecast.py [--series 1000] [--points 2000] [--autoets 30]

Prints figures, asserts nothing about time. AutoETS runs on a subset only (about a second per
series here); its cost for all series is extrapolated from that subset, and said so.
Synthetic series are hourly utilisation (season 24, which AutoETS can model: statsforecast's
ETS drops seasons longer than 24). When /work/shared/data/capacity is present, Alibaba's pod
memory utilisation (about one day, resampled to 1 min) is scored too.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

from watchkeeper.detect.forecast_ets import EtsBatch
from watchkeeper.detect.forecast_io import read_series
from watchkeeper.eval.forecast import (
    accuracy,
    autoets_forecast,
    lead_times,
    mase,
    smape,
    synthetic_utilisation,
)

out = Console(highlight=False)
CAPACITY = Path("/work/shared/data/capacity/alibaba_genai/pod_memory_util_anon.csv")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--autoets", type=int, default=30)
    ap.add_argument("--horizon", type=int, default=48)
    ap.add_argument("--lead-series", type=int, default=300)
    args = ap.parse_args()
    h, m = args.horizon, 24
    data = synthetic_utilisation(args.series, args.points + h, season_length=m, seed=7)
    train, test = data.values[:, :-h], data.values[:, -h:]
    out.print(f"synthetic: {args.series} series × {args.points} points (hourly, season {m}), "
              f"{int((data.crosses_at >= 0).sum())} with a ramp to {data.threshold:g}; horizon {h}")

    # 1. Cold refresh: fit every series from scratch, then forecast.
    start = time.perf_counter()
    model = EtsBatch.fit(train, season_length=m, horizon=h)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    pred = model.predict(h)
    predict_s = time.perf_counter() - start
    out.print(f"fast ETS, full fit of {args.series} × {args.points}: {fit_s:.2f} s; "
              f"forecast: {predict_s:.3f} s")

    # 2. Warm refresh: one new point per series, then forecast (parameters kept).
    warm = EtsBatch.fit(train[:, :-12], season_length=m, horizon=h)
    start = time.perf_counter()
    for k in range(12, 0, -1):
        warm.update(train[:, -k:None if k == 1 else -k + 1])
        warm.predict(h)
    warm_s = (time.perf_counter() - start) / 12
    out.print(f"fast ETS, incremental refresh (1 new point + forecast, {args.series} series): "
              f"{warm_s * 1000:.1f} ms")

    # 3. Accuracy against AutoETS on the same subset.
    n_ref = min(args.autoets, args.series)
    fast_mase = np.array([mase(test[i], pred.mean[i], train[i], m) for i in range(args.series)])
    fast_smape = np.array([smape(test[i], pred.mean[i]) for i in range(args.series)])
    ref_mase, ref_smape = [], []
    with Progress(console=out, transient=True) as bar:
        task = bar.add_task(f"AutoETS on {n_ref} series", total=n_ref)
        start = time.perf_counter()
        for i in range(n_ref):
            ref = autoets_forecast(train[i], h, m)
            ref_mase.append(mase(test[i], ref, train[i], m))
            ref_smape.append(smape(test[i], ref))
            bar.advance(task)
        ref_s = (time.perf_counter() - start) / max(n_ref, 1)
    naive_mase = np.array([mase(test[i], np.resize(train[i, -m:], h), train[i], m)
                           for i in range(args.series)])
    out.print(f"AutoETS: {ref_s:.2f} s per series measured on {n_ref} series → extrapolated "
              f"{ref_s * args.series:.0f} s for {args.series} series (not run)")
    out.print(f"MASE on the {n_ref} AutoETS series: fast {np.mean(fast_mase[:n_ref]):.4f} "
              f"(median {np.median(fast_mase[:n_ref]):.4f}), AutoETS {np.mean(ref_mase):.4f} "
              f"(median {np.median(ref_mase):.4f}), seasonal naive {np.mean(naive_mase[:n_ref]):.4f}; "
              f"ratio fast/AutoETS {np.mean(fast_mase[:n_ref]) / np.mean(ref_mase):.3f}")
    out.print(f"sMAPE on those series: fast {np.mean(fast_smape[:n_ref]):.2f} %, "
              f"AutoETS {np.mean(ref_smape):.2f} %")
    out.print(f"MASE on all {args.series} series: fast {np.mean(fast_mase):.4f} "
              f"(median {np.median(fast_mase):.4f}), seasonal naive {np.mean(naive_mase):.4f} "
              f"(median {np.median(naive_mase):.4f})")
    inside = (test >= pred.lower) & (test <= pred.upper)
    half = h // 2
    out.print(f"{pred.level:g}% interval coverage on the held-out {h} points of all {args.series} series: "
              f"{inside.mean():.1%} (steps 1–{half}: {inside[:, :half].mean():.1%}, "
              f"{half + 1}–{h}: {inside[:, half:].mean():.1%}; per-series coverage 5–95th percentile "
              f"{np.percentile(inside.mean(axis=1), 5):.0%}–{np.percentile(inside.mean(axis=1), 95):.0%})")
    trended = EtsBatch.fit(train, season_length=m, trend=True, horizon=h).predict(h).mean
    out.print(f"MASE on all series with trend forced (the Forecaster's default): "
              f"{np.mean([mase(test[i], trended[i], train[i], m) for i in range(args.series)]):.4f}")

    # 4. Lead time of threshold warnings (replay with refits once per two days).
    n_lead = min(args.lead_series, args.series)
    warmup = args.points // 2
    with Progress(console=out, transient=True) as bar:
        task = bar.add_task(f"replaying {n_lead} series for lead times",
                            total=data.values.shape[1] - warmup)
        lt = lead_times(data.values[:n_lead], data.threshold, h, m, warmup=warmup, every=1, refit_every=48,
                        trend=True, progress=lambda k: bar.advance(task, k))
    leads = np.array(lt.lead_steps) if lt.lead_steps else np.array([np.nan])
    out.print(f"lead times ({n_lead} series, horizon {h} h, threshold {data.threshold:g}): {lt.crossings} "
              f"crossings, {lt.missed} missed, lead mean {np.mean(leads):.1f} h, "
              f"median {np.median(leads):.1f} h; {lt.false_alarms} false "
              f"alarms over {n_lead * lt.steps_replayed / 24:.0f} series-days; "
              f"{lt.refreshes} refreshes + {lt.refits} refits in {lt.refresh_seconds:.1f} s")

    if CAPACITY.exists():
        real(n_ref)


def real(n_ref: int) -> None:
    """Alibaba GenAI pod memory utilisation (0–1), 1-min grid, 1 h horizon, no daily season."""
    series = read_series(CAPACITY, id_column="container_ip", step=timedelta(minutes=1))
    full = [s for s in series if len(s.values) == max(len(x.values) for x in series)]
    values = np.vstack([s.values for s in full])
    h = 60
    acc = accuracy(values, h, 1, autoets=n_ref)
    ran = np.isfinite(acc.mase_autoets)
    fast, ref = acc.mase_fast[ran], acc.mase_autoets[ran]
    ok = np.isfinite(fast) & np.isfinite(ref)
    per = acc.autoets_seconds / max(acc.autoets_series, 1)
    out.print(f"real: Alibaba pod memory, {len(full)} pods × {values.shape[1]} points (1 min), "
              f"horizon 60 min; fast fit {acc.fit_seconds:.2f} s; AutoETS {per:.2f} s "
              f"per series on {acc.autoets_series}")
    out.print(f"real MASE (median, first {int(ok.sum())} pods): fast {np.median(fast[ok]):.4f}, AutoETS "
              f"{np.median(ref[ok]):.4f}, naive {np.nanmedian(acc.mase_naive[ran]):.4f}; all pods: fast "
              f"{np.nanmedian(acc.mase_fast):.4f}, naive {np.nanmedian(acc.mase_naive):.4f} "
              f"(medians: some pods are nearly flat, so means blow up)")
    lt = lead_times(values, 0.9, h, 1, warmup=values.shape[1] // 2, every=1, refit_every=60, trend=True)
    out.print(f"real lead times at 0.9: {lt.crossings} crossings, {lt.missed} missed, leads (min) "
              f"{[round(x) for x in lt.lead_steps]}; {lt.false_alarms} false alarms over {lt.series} pods × "
              f"{lt.steps_replayed} min")


if __name__ == "__main__":
    main()
