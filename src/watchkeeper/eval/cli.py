"""``watchkeeper eval nab DIR`` and ``watchkeeper eval smd DIR``: our detectors on public benchmarks."""

from __future__ import annotations

import enum
import itertools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from watchkeeper.detect.filter import onsets, run
from watchkeeper.detect.likelihood import AnomalyLikelihood, peak_onsets
from watchkeeper.detect.multivariate import MaxZ
from watchkeeper.detect.robust import RobustSeasonal
from watchkeeper.errors import InputError
from watchkeeper.eval import detect as protocol
from watchkeeper.eval import nab as nab_scoring
from watchkeeper.eval import smd as smd_scoring
from watchkeeper.eval.loghub_cli import loghub

app = typer.Typer(add_completion=False, help="Evaluate the detectors on public benchmarks.", no_args_is_help=True)

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

#: Report an anomaly once per this many points (see ``onsets`` and ``peak_onsets``); the same as
#: ``eval detect`` scores NAB with.
NAB_ONSET_HORIZON = protocol.ONSET_HORIZON
#: ``peak_onsets`` reports a burst of rising scores at its peak, at most this many points late.
NAB_PEAK_DELAY = protocol.PEAK_DELAY
#: The filter's threshold while scoring NAB with RobustSeasonal: anomalous points are not learned.
NAB_LEARN_THRESHOLD = 0.8
#: The free parameters of AnomalyLikelihood that ``--loco`` chooses among on the other categories:
#: the robust model's window and the averaging view's length, each at half, one and two times its
#: default. ``memory`` (how far back the tails look: two weeks of 5-minute points) is not tuned.
LOCO_GRID: Mapping[str, tuple[int, ...]] = {"window": (128, 256, 512), "short": (20, 50, 100)}


class NabDetector(enum.StrEnum):
    likelihood = "likelihood"
    robust = "robust"


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


def likelihood_scores(data: nab_scoring.DataFile, **params: Any) -> FloatArray:
    """AnomalyLikelihood's score of every point (each scored, then learned), reported once per
    anomaly by ``peak_onsets``."""
    detector = AnomalyLikelihood(**params)
    score, learn = detector.score_one, detector.learn_one
    out = np.empty(len(data.values))
    for i, (t, x) in enumerate(zip(data.times.tolist(), data.values.tolist(), strict=True)):
        out[i] = score(x, t)
        learn(x, t)
    return peak_onsets(out, NAB_ONSET_HORIZON, NAB_PEAK_DELAY)


def robust_scores(data: nab_scoring.DataFile) -> FloatArray:
    """The earlier entry: RobustSeasonal behind the anomaly filter, scored at onsets."""
    scores = run(RobustSeasonal(), data.times, data.values, threshold=NAB_LEARN_THRESHOLD)
    return onsets(scores, NAB_ONSET_HORIZON)


def nab_detect(data: nab_scoring.DataFile) -> FloatArray:
    """Our NAB entry: AnomalyLikelihood with its defaults, one report per anomaly."""
    return likelihood_scores(data)


DETECTORS: Mapping[NabDetector, tuple[str, Callable[[nab_scoring.DataFile], FloatArray]]] = {
    NabDetector.likelihood: ("AnomalyLikelihood", nab_detect),
    NabDetector.robust: ("RobustSeasonal", robust_scores),
}


@app.command()
def nab(
    root: Annotated[Path, typer.Argument(help="NAB checkout: data/, labels/, config/")],
    category: Annotated[list[str] | None, typer.Option(help="only these categories")] = None,
    detector: Annotated[NabDetector, typer.Option(help="which detector to score")] = NabDetector.likelihood,
    loco: Annotated[bool, typer.Option(
        help="also leave one category out: choose AnomalyLikelihood's parameters (LOCO_GRID) and the "
             "threshold on the other categories, score the held-out one")] = False,
) -> None:
    """NAB scores (standard, reward_low_FP_rate, reward_low_FN_rate) per category and overall."""
    console = Console()
    files = nab_scoring.load_corpus(root, category)
    if not files:
        raise typer.BadParameter(f"no labelled NAB files under {root}")
    profiles = nab_scoring.Profile.load(root / "config" / "profiles.json")
    name, detect = DETECTORS[detector]
    with _progress(console) as progress:
        task = progress.add_task("NAB", total=len(files))
        results = nab_scoring.evaluate(files, detect, profiles, lambda _d: progress.advance(task))
    table = Table(title=f"NAB scores of {name} ({len(files)} files)")
    table.add_column("category")
    for r in results:
        table.add_column(r.profile, justify="right")
    categories = sorted({d.category for d in files})
    for c in categories:
        cells = [r.categories[c] for r in results]
        table.add_row(c, *[f"{v:.1f}" if v is not None else f"n/a (raw {r.raw[c]:.2f})"
                           for v, r in zip(cells, results, strict=True)])
    table.add_row("overall", *[f"{r.overall:.1f}" for r in results], style="bold")
    table.add_row("threshold", *[f"{r.threshold:.4f}" for r in results], style="dim")
    console.print(table)
    if loco:
        if len(categories) < 2:
            raise typer.BadParameter("--loco needs at least two categories")
        _leave_one_category_out(console, files, profiles)


def _leave_one_category_out(
    console: Console, files: list[nab_scoring.DataFile], profiles: list[nab_scoring.Profile],
) -> None:
    grid = [dict(zip(LOCO_GRID, values, strict=True)) for values in itertools.product(*LOCO_GRID.values())]
    candidates: dict[str, list[FloatArray]] = {}
    with _progress(console) as progress:
        task = progress.add_task("leave one category out", total=len(grid) * len(files))
        for params in grid:
            label = " ".join(f"{k}={v}" for k, v in params.items())
            scores = []
            for d in files:
                scores.append(np.clip(likelihood_scores(d, **params), 0.0, 1.0))
                progress.advance(task)
            candidates[label] = scores
    table = Table(title=f"AnomalyLikelihood, leave one category out ({len(grid)} parameter sets)")
    table.add_column("held-out category")
    for p in profiles:
        table.add_column(f"{p.name} (chosen on the others)", justify="right")
    held = [nab_scoring.leave_one_category_out(files, candidates, p) for p in profiles]
    for rows in zip(*held, strict=True):
        table.add_row(rows[0].category, *[
            (f"{h.score:.1f}" if h.score is not None else f"n/a (raw {h.raw:.2f})") + f"  ({h.chosen})"
            for h in rows])
    console.print(table)
    console.print("each held-out score uses parameters and threshold fitted without its category")


@app.command()
def smd(
    root: Annotated[Path, typer.Argument(help="smd_asd/ (or one of its sets): *_train/_test/_test_label.npy")],
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.7,
) -> None:
    """Plain and point-adjusted F1 of the multivariate detector on SMD/ASD."""
    console = Console()
    entities = smd_scoring.load(root)
    if not entities:
        raise typer.BadParameter(f"no *_train.npy/_test.npy/_test_label.npy under {root}")
    with _progress(console) as progress:
        task = progress.add_task("SMD/ASD", total=len(entities))
        reports = smd_scoring.evaluate(entities, MaxZ, threshold, lambda _e: progress.advance(task))
    table = Table(title="MaxZ on SMD/ASD (F1 pooled over entities)")
    for column in ("set", "entities", f"F1 @ {threshold}", f"PA-F1 @ {threshold}",
                   "best F1 (thr)", "best PA-F1 (thr)"):
        table.add_column(column, justify="right")
    for r in reports:
        _, plain, adjusted = r.fixed
        table.add_row(r.group, str(r.entities), f"{plain.f1:.3f}", f"{adjusted.f1:.3f}",
                      f"{r.best_plain[1].f1:.3f} ({r.best_plain[0]:.3f})",
                      f"{r.best_adjusted[1].f1:.3f} ({r.best_adjusted[0]:.3f})")
    console.print(table)
    console.print("best-threshold columns choose the threshold in hindsight (as published results do)")


def _pct_of(share: float) -> float:
    return round(100.0 * share, 1)


@app.command("detect")
def detect_protocol(
    nab_root: Annotated[Path | None, typer.Option(
        "--nab", help="NAB checkout: data/, labels/ (one source per category)")] = None,
    smd_root: Annotated[Path | None, typer.Option("--smd", help="smd_asd/: one source per set (smd, asd)")] = None,
    lab_root: Annotated[Path | None, typer.Option(
        "--lab", help="a campaign recorded by 'watchkeeper lab record', or a folder of them (one source, lab)")]
    = None,
    candidate: Annotated[list[str] | None, typer.Option(
        help="candidate configurations to choose among (default: every shipped one)")] = None,
    out: Annotated[Path, typer.Option(help="write the results here as JSON")] = Path("eval-detect.json"),
    cache: Annotated[Path | None, typer.Option(
        help="keep each candidate's scores here (keyed by configuration, detector code and data)")]
    = Path(".watchkeeper-cache/eval-detect"),
    rule: Annotated[str, typer.Option(help="how candidate and threshold are chosen: "
                                            + ", ".join(protocol.RULES))] = "mean",
) -> None:
    """Held-out figures per labelled source: candidate and threshold chosen on the OTHER sources."""
    console = Console()
    if rule not in protocol.RULES:
        raise typer.BadParameter(f"unknown rule {rule!r}; known: {', '.join(protocol.RULES)}", param_hint="--rule")
    known = protocol.candidates()
    names = candidate or list(protocol.shipped_candidates())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise typer.BadParameter(f"unknown candidate {unknown[0]!r}; known: {', '.join(known)}",
                                 param_hint="--candidate")
    if nab_root is None and smd_root is None and lab_root is None:
        raise typer.BadParameter("give --nab DIR, --smd DIR and/or --lab DIR")
    for root, option in ((nab_root, "--nab"), (smd_root, "--smd"), (lab_root, "--lab")):
        if root is not None and not root.is_dir():
            raise typer.BadParameter(f"{root} is not a directory", param_hint=option)
    try:
        sources = protocol.load_sources(nab_root, smd_root, lab_root)
    except (OSError, ValueError, KeyError, InputError) as exc:
        raise typer.BadParameter(f"cannot read the data: {exc}") from None
    if len(sources) < 2:
        raise typer.BadParameter("leaving one source out needs at least two labelled sources")
    chosen = {n: known[n] for n in names}
    curves: dict[str, dict[str, protocol.Curve]] = {n: {} for n in chosen}
    with _progress(console) as progress:
        task = progress.add_task("scoring", total=len(chosen) * sum(len(s.items()) for s in sources))
        for name, cand in chosen.items():
            for source in sources:
                progress.update(task, description=f"{name} on {source.name}")
                scores = protocol.source_scores(source, cand, cache, lambda: progress.advance(task))
                curves[name][source.name] = source.curve(scores)
    result = protocol.report(curves, {s.name: s.kind for s in sources}, rule)
    table = Table(title=f"Held-out figures: candidate and threshold chosen on the other sources "
                        f"({len(sources)} sources, {len(chosen)} candidates, rule {rule})")
    for column in ("source", "figure", "held-out", "chosen on the others", "in-sample", "hindsight"):
        table.add_column(column, justify="left" if column in ("source", "figure", "chosen on the others") else "right")
    for f in result.folds:
        table.add_row(f.source, result.kinds[f.source], f"{100 * f.held_out:.1f}",
                      f"{f.chosen} @ {f.threshold:.4f}", f"{100 * f.in_sample:.1f}", f"{100 * f.hindsight:.1f}")
    console.print(table)
    worst = result.worst
    console.print(f"worst held-out source: {worst.source} {100 * worst.held_out:.1f}")
    if result.nab_held_out is not None and result.nab_in_sample is not None:
        console.print(f"NAB standard, all categories pooled: held-out {result.nab_held_out:.1f}, "
                      f"in-sample {result.nab_in_sample:.1f}")
    shipped = ("(what ships is chosen without --lab: a recording differs per run and machine, so it is "
               "held-out evidence)" if lab_root is not None else "(what ships)")
    console.print(f"chosen on all sources {shipped}: {result.in_sample[0]} @ {result.in_sample[1]:.4f}")
    floors = {s.name: _pct_of(s.every_point()) for s in sources if isinstance(s, protocol.PaSource)}
    if floors:
        console.print("point-adjusted F1 of an alarm at every point (the floor to beat): "
                      + ", ".join(f"{name} {figure}" for name, figure in floors.items()))
    console.print("in-sample: chosen on all sources; hindsight: the source's best alone (optimistic, "
                  "as published tables are); no-window NAB categories: 100 × (1 + raw / files)")
    out.write_text(json.dumps(result.as_json() | {"every_point": floors}, indent=2) + "\n")
    console.print(f"wrote {out}")


app.command("loghub")(loghub)
