"""The top-level commands: ``serve``, ``replay``, ``kpi`` and ``demo`` (added to the root app by the package)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from watchkeeper.cli.common import (
    STATE,
    backend,
    dumps,
    err,
    make_table,
    out,
    settings,
)
from watchkeeper.errors import ConfigError, WatchkeeperError
from watchkeeper.runtime import tune_gc
from watchkeeper.service import Watchkeeper
from watchkeeper.settings import Settings

app = typer.Typer()


# -- serve ---------------------------------------------------------------------------------
@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080)")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML settings file (same as the global --config)")] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="The API alone: no watches, ranking, decisions, "
                                            "actions, delivery (with a bus: 'watchkeeper worker' commits)")] = False,
) -> None:
    """Run the API and the loop: watches, ranking, decisions, actions (migrations run at start-up)."""
    import uvicorn

    from watchkeeper import logconfig
    from watchkeeper.server import create_app

    if config is not None:
        STATE.config, STATE.settings = config, None
    cfg = settings()
    bind_host, bind_port = host or cfg.host, cfg.port if port is None else port
    _check_free(bind_host, bind_port)
    logconfig.configure(cfg.log_level)
    tune_gc()
    wk = Watchkeeper(cfg)
    wk.upgrade()
    _register_shipped_models(wk)
    bus, node = None, None
    if cfg.bus_url:  # ingest publishes to NATS JetStream; a worker commits (docs/scaling.md)
        from watchkeeper.bus import open_jetstream
        from watchkeeper.bus.node import WorkerNode

        bus = open_jetstream(cfg, patience=60.0)
        if not no_worker:
            node = WorkerNode(wk, bus, loop=False).start()
    loop = not no_worker
    err.print(f"watchkeeper {_db_label(cfg)}{f' via {cfg.bus_url}' if bus else ''} listening on "
              f"http://{bind_host}:{bind_port}{'' if loop else ' (API only)'}")
    try:
        uvicorn.run(
            create_app(wk, upgrade=False, responder=loop, watch=loop, rank=loop, bus=bus, intake=cfg.intake_drainer),
            host=bind_host,
            port=bind_port, log_level=cfg.log_level, access_log=False,
        )
    finally:
        if node is not None:
            node.stop()
        if bus is not None:
            bus.close()


def _register_shipped_models(wk: Watchkeeper) -> None:
    """The shipped models (detector, RCA model, default correlation; value/shipped.py SHIPPED) with
    their scores, and the correlation configuration in use, in the model registry when not there yet
    (so decisions and drift checks can name them; docs/value.md)."""
    from watchkeeper.model_registry import Registry

    for added in Registry(wk.db, wk.clock).register_shipped("serve", [wk.correlation_model]):
        err.print(f"registered the shipped model {added}")


def _check_free(host: str, port: int) -> None:
    """Fail with a sentence before saying "listening" when the address cannot be bound."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; is another server "
                              "running there? choose another with --port or 'port:' in the settings") from None


def _db_label(cfg: Settings) -> str:
    return "on SQLite" if cfg.database_url.startswith("sqlite") else "on PostgreSQL"


# -- replay --------------------------------------------------------------------------------
@app.command()
def replay(
    file: Annotated[
        Path, typer.Argument(help="JSONL: one webhook body per line", exists=True, dir_okay=False)
    ],
    out_file: Annotated[Path | None, typer.Option("--out", help="Write incidents as JSONL here")] = None,
    window: Annotated[float | None, typer.Option(help="Correlation window, seconds")] = None,
    config_path: Annotated[Path | None, typer.Option("--correlation", help="Correlation config YAML")] = None,
    strict: Annotated[bool, typer.Option(help="Stop at the first bad line (exit 2)")] = False,
    prometheus: Annotated[str | None, typer.Option(help="Rank each incident's causes from this Prometheus "
                                                        "(the watches of the settings, rca: true)")] = None,
    topology: Annotated[Path | None, typer.Option(help="Service graph for ranking (YAML/JSON services "
                                                       "mapping, or a lab topology.json)", exists=True,
                                                  dir_okay=False)] = None,
    changes: Annotated[Path | None, typer.Option(help="Change events for ranking (JSON or JSONL, as the "
                                                      "changes API takes them)", exists=True, dir_okay=False)] = None,
    settings_file: Annotated[Path | None, typer.Option("--config", help="YAML settings file (same as the global "
                                                                       "--config)")] = None,
) -> None:
    """Run the pipeline offline on a file, no server, and print or write the incidents (with
    --prometheus: each with its ranked "causes")."""
    from dataclasses import replace
    from datetime import timedelta

    from watchkeeper.correlate.config import load_config
    from watchkeeper.correlate.pipeline_config import PipelineConfig
    from watchkeeper.kpi import compression, dedup_ratio
    from watchkeeper.replay import incident_records
    from watchkeeper.replay import replay as run
    from watchkeeper.sources import registry

    if settings_file is not None:
        STATE.config, STATE.settings = settings_file, None
    cfg = settings()
    config = PipelineConfig(
        window=timedelta(seconds=window or cfg.correlation_window_seconds), auto_resolve=cfg.auto_resolve
    )
    path = config_path or cfg.correlation_config
    if path is not None:
        config = load_config(path).pipeline(path.parent)
        if window:
            config = replace(config, window=timedelta(seconds=window))
    with file.open("rb") as fh:
        result = run(fh, registry(), config, strict=strict)
    for bad in result.bad[:20]:
        err.print(f"line {bad.number}: skipped: {bad.error}")
    if len(result.bad) > 20:
        err.print(f"... and {len(result.bad) - 20} more bad lines")
    records = list(incident_records(result))
    if prometheus is not None or topology is not None or changes is not None:
        from watchkeeper.ranking import replay_causes
        from watchkeeper.replay import onsets

        ranked = replay_causes(onsets(result), cfg, prometheus=prometheus, topology=topology, changes_file=changes)
        for record in records:
            record["causes"] = ranked.get(record["id"], [])
    if out_file is not None:
        with out_file.open("wb") as fh:
            for record in records:
                fh.write(dumps(record).encode() + b"\n")
    else:
        for record in records:
            print(dumps(record))
    alerts = sum(len(r["alerts"]) for r in records)
    ratio, comp = dedup_ratio(result.events, len(result.state.alerts)), compression(alerts, len(records))
    err.print(
        f"{result.lines} lines, {result.events} events → {len(result.state.alerts)} alerts → "
        f"{len(records)} incidents (dedup {_pct(ratio)}, compression {_pct(comp)}); "
        f"{len(result.bad)} bad lines skipped" + (f"; written to {out_file}" if out_file else "")
    )
    if result.lines and len(result.bad) == result.lines:
        raise WatchkeeperError("no line of the file could be read")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


# -- KPIs ----------------------------------------------------------------------------------
@app.command()
def kpi(
    start: Annotated[datetime | None, typer.Option("--from", help="Window start (ISO 8601)")] = None,
    end: Annotated[datetime | None, typer.Option("--to", help="Window end (ISO 8601)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """MTTA, MTTR, deduplication and compression over incidents opened in a window."""
    from watchkeeper.model import utc

    with backend() as wk:
        report = wk.kpis(utc(start) if start else None, utc(end) if end else None)
    data = report if isinstance(report, dict) else report.as_dict()
    if as_json:
        print(dumps(data))
        return
    if isinstance(report, dict):  # from a server: its figures as they came
        table = make_table("KPI", "value", title=f"Watchkeeper KPIs ({STATE.url})")
        for key, value in _flat(report):
            table.add_row(key, "n/a" if value is None else str(value))
        out.print(table)
        return
    table = make_table("KPI", "value", title="Watchkeeper KPIs")
    table.add_row("events → alerts (dedup)",
                  f"{report.events} → {report.alerts} ({_pct(report.dedup_ratio)})")
    table.add_row("alerts → incidents (compression)",
                  f"{report.alerts} → {report.incidents} ({_pct(report.compression)})")
    g = report.grouping
    if g is not None:
        table.add_row("grouping precision (judged by humans)",
                      f"{_pct(g.precision)} ({g.moved_out} of {g.auto_joined} joins moved out; {g.merges} merges)")
    for label, stats in (("MTTA from receipt", report.mtta), ("MTTA from source start", report.mtta_from_source_start),
                         ("MTTR from receipt", report.mttr), ("MTTR from source start", report.mttr_from_source_start)):
        table.add_row(label, "n/a" if stats is None or stats.mean is None else (
            f"mean {_dur(stats.mean)}, median {_dur(stats.median)}, p90 {_dur(stats.p90)} (n={stats.count})"))
    out.print(table)


def _flat(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``{"mtta": {"mean": 1}}`` as ``[("mtta.mean", 1)]``."""
    if isinstance(value, dict):
        return [kv for k, v in value.items() for kv in _flat(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), value)]


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


# -- demo ----------------------------------------------------------------------------------
@app.command()
def demo(
    headless: Annotated[bool, typer.Option(help="No live view: end with one JSON line of outcomes")] = False,
    faults: Annotated[str | None, typer.Option(
        help="Comma-separated KIND[:SERVICE] (default: one fault of every kind)")] = None,
    auto_approve: Annotated[bool, typer.Option(help="Approve every pending action at once (unattended)")] = False,
    approve_after: Annotated[float | None, typer.Option(min=0, help=(
        "A stand-in approver answers requests nobody approved within this many seconds "
        "(default: 45 with the live view, never with --headless)"))] = None,
    directory: Annotated[Path, typer.Option("--dir", help="Working directory (wiped first, kept afterwards)")] = Path(
        ".watchkeeper-demo"),
    record: Annotated[Path | None, typer.Option(
        help="Also record the campaign (metrics, faults, topology) for 'eval rca --format lab'")] = None,
    warmup: Annotated[float, typer.Option(min=4, help="Seconds of healthy traffic before the first fault")] = 24.0,
    timeout: Annotated[float | None, typer.Option(min=10, help=(
        "Seconds to wait for each fault's resolution (default 150; 1800 with --manual)"))] = None,
    manual: Annotated[bool, typer.Option(help=(
        "Run no runbook: leave each fault for a person to find and fix with 'watchkeeper lab …' "
        "(the human baseline for MTTR; --timeout defaults to 1800)"))] = False,
    signals: Annotated[bool, typer.Option(help=(
        "The lab's services also send OTLP traces to serve and serve tails their JSON logs: root cause from "
        "metrics, traces and logs (log anomalies resolve after quiet minutes, so incidents close later)"))]
    = False,
    storm: Annotated[bool, typer.Option(help="Instead: replay a recorded Alertmanager storm (no lab)")] = False,
    database: Annotated[Path, typer.Option(help="--storm: SQLite file the replay writes")] = Path(
        "watchkeeper-demo.db"),
    speed: Annotated[float, typer.Option(help="--storm: simulated seconds per real second (0: flat out)")] = 0.0,
) -> None:
    """The whole loop, live: start the lab and Watchkeeper, inject faults, and watch detection,
    root cause, governed runbooks and resolution; a summary with MTTR per fault at the end."""
    if storm:
        _storm_demo(database, speed)
        return
    from watchkeeper.demo import cli as demo_cli

    if manual and (auto_approve or approve_after is not None):
        out.print("[red]error:[/red] --manual runs no runbook, so there is nothing to approve: drop --auto-approve "
                  "and --approve-after")
        raise typer.Exit(2)
    if auto_approve:
        approve_after = 0.0
    elif approve_after is None and not headless and not manual:
        approve_after = 45.0
    code = demo_cli.main(out, directory=directory, faults=faults, headless=headless, approve_after=approve_after,
                         record=record, warmup=warmup, timeout=timeout if timeout is not None else
                         (1800.0 if manual else 150.0), manual=manual, signals=signals)
    if code:
        raise typer.Exit(code)


def _storm_demo(database: Path, speed: float) -> None:
    """Replay a realistic alert storm through a live server and show what Watchkeeper made of it."""
    from rich.progress import Progress

    from watchkeeper.demo import storm as demo_mod

    out.rule("[bold]Watchkeeper demo[/bold]")
    out.print("A live Watchkeeper on 127.0.0.1 (SQLite, in-process) receives, over HTTP, what "
              "Alertmanager would send during a simulated 10-minute morning: two overlapping outages "
              f"and a disk warning. A simulated on-call engineer acknowledges each incident "
              f"{demo_mod.ACK_AFTER_S // 60}m{demo_mod.ACK_AFTER_S % 60:02d}s after it opens; "
              "incidents resolve when their alerts do. Times below are simulated time.")
    with Progress(console=out, transient=True) as progress:
        result = demo_mod.run(database, speed=speed, progress=progress)
    alerts = sum(len(i.alerts) for i in result.incidents)
    out.print(f"\n[bold]{result.webhooks}[/bold] webhooks carrying [bold]{result.alert_events}[/bold] "
              f"alert notifications → [bold]{alerts}[/bold] distinct alerts → "
              f"[bold]{len(result.incidents)}[/bold] incidents\n")
    table = make_table("id", "status", "sev", "services", "alerts", "why they joined", title="incidents")
    for i in sorted(result.incidents, key=lambda i: i.id):
        reasons: dict[str, int] = {}
        for a in i.alerts:
            reasons[a.reason] = reasons.get(a.reason, 0) + 1
        table.add_row(str(i.id), i.status.value, i.severity.value, ",".join(i.services),
                      str(len(i.alerts)), ", ".join(f"{n}× {r}" for r, n in reasons.items()))
    out.print(table)
    k = result.kpis
    summary = make_table("KPI", "value", title="KPIs")
    summary.add_row("events → alerts (dedup)", f"{k['events']} → {k['alerts']} ({_pct(k['dedup_ratio'])})")
    summary.add_row("alerts → incidents (compression)",
                    f"{k['alerts']} → {k['incidents']} ({_pct(k['compression'])})")
    summary.add_row("MTTA (mean)", _dur(k["mtta"]["mean"]))
    summary.add_row("MTTR (mean / p90)", f"{_dur(k['mttr']['mean'])} / {_dur(k['mttr']['p90'])}")
    summary.add_row("audit chain", result.audit)
    out.print(summary)
    out.print(f"\nExplore it: [bold]WATCHKEEPER_DATABASE_URL=sqlite:///{result.database} "
              "watchkeeper incidents show 1[/bold]  (or incidents list, kpi, audit verify)")
    if not result.audit_ok:
        raise typer.Exit(1)
