"""The terminal side of ``watchkeeper demo``: a live view, or one JSON line with ``--headless``."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from watchkeeper.demo import runner, view
from watchkeeper.demo.closed_loop import DEFAULT_FAULTS, Observer, Outcome, parse_faults


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(out: Console, *, directory: Path, faults: str | None, headless: bool, approve_after: float | None,
         record: Path | None, warmup: float, timeout: float, manual: bool = False, signals: bool = False) -> int:
    """Run the campaign; returns the exit code (0 when every fault was detected and resolved)."""
    from watchkeeper.lab import FAULTS, SERVICES

    try:
        chosen = parse_faults(faults, SERVICES, FAULTS) if faults else list(DEFAULT_FAULTS)
    except ValueError as exc:
        out.print(f"[red]error:[/red] {exc}")
        return 2
    # `kill` must not orphan the lab's processes: SIGTERM unwinds like Ctrl-C (the lab stops in `finally`).
    signal.signal(signal.SIGTERM, _terminate)
    timing = runner.Timing(warmup=warmup, timeout=timeout)
    directory = directory.resolve()
    from watchkeeper.lab import prometheus

    if not prometheus.installed():
        print("demo: Prometheus is not installed (run 'make demo' as root, or 'apt-get install prometheus "
              "prometheus-alertmanager'), so the demo watches the lab's services directly and posts their alerts: "
              "the server gets alerts but no series to rank causes on.", file=sys.stderr, flush=True)
    config = directory / "lab" / ("watchkeeper-manual.yaml" if manual else "watchkeeper.yaml")
    if manual:
        hint = (f"watchkeeper --config {config} incidents list, then fix it: watchkeeper "
                f"lab restart|scale|clear-tmp|rollback SERVICE --dir {directory / 'lab'}")
    else:
        hint = (f"watchkeeper --config {config} approvals approve {{id}} "
                f"--token $(cat {runner.approver_token_file(config)})")
    if headless:
        def progress(phase: str, _obs: Observer | None, _o: list[Outcome], _c: Outcome | None) -> None:
            if phase != getattr(progress, "last", None):
                print(f"demo: {phase}", file=sys.stderr, flush=True)
                progress.last = phase  # type: ignore[attr-defined]

        if manual:
            print(f"demo: manual — no runbook runs; find each fault and fix it: {hint}", file=sys.stderr, flush=True)
        result = runner.run(directory, chosen, approve_after=approve_after, timing=timing, show=progress,
                            record=record, manual=manual, signals=signals)
        print(result.as_json(), flush=True)
        return 0 if result.totals()["resolved"] == len(chosen) and result.audit_ok else 1

    out.rule("[bold]Watchkeeper demo: the whole loop, live[/bold]")
    if manual:
        out.print(f"The lab's services run on 127.0.0.1, watched by Prometheus and by `watchkeeper serve`, which "
                  f"ranks causes but runs no "
                  f"runbook: {len(chosen)} faults are injected one after another, each left for you to find and "
                  f"fix from another terminal:\n  [bold]{hint}[/bold]")
    else:
        out.print(f"The lab's services run on 127.0.0.1, watched by Prometheus and by `watchkeeper serve` (its "
                  f"own process, on the lab's watchkeeper.yaml); {len(chosen)} faults are "
                  "injected one after another. Low-risk, confident fixes run by themselves; the rest wait for "
                  f"a human: approve from another terminal with\n  [bold]{hint.format(id='ID')}[/bold]\n"
                  + ("" if approve_after is None else
                     f"(a stand-in approver answers requests left unanswered for {approve_after:g} s)"))
    with Live(console=out, refresh_per_second=4, transient=False) as live:
        def show(phase: str, obs: Observer | None, outcomes: list[Outcome], _c: Outcome | None) -> None:
            rendered: Any = view.render(phase, obs, outcomes, hint, blind=manual)
            live.update(rendered)

        result = runner.run(directory, chosen, approve_after=approve_after, timing=timing, show=show,
                            record=record, manual=manual, signals=signals)
    out.print(view.summary_table(result.outcomes, result.totals()))
    out.print(view.kpi_line(result.kpis, result.audit))
    out.print(f"Explore it: [bold]watchkeeper --config {config} incidents list[/bold]")
    return 0 if result.audit_ok else 1

