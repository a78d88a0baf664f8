"""``watchkeeper lab …``: run the local lab, break it and heal it (also ``python -m watchkeeper.lab.cli``,
which the lab's runbooks call so that they run with the same Python)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from watchkeeper.lab.control import FAULTS, Lab, LabError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="The lab: local services to watch, break and heal.")
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

Dir = Annotated[Path, typer.Option("--dir", help="The lab's state directory")]
DEFAULT_DIR = Path(".watchkeeper-lab")


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"error: {exc}", markup=False, soft_wrap=True)
    return typer.Exit(2)


def _show(result: Any, as_json: bool = True) -> None:
    if as_json:
        out.print_json(json.dumps(result, default=str))


@app.command()
def up(
    directory: Dir = DEFAULT_DIR,
    rps: Annotated[float, typer.Option(help="Requests per second the load generator sends to the frontend")] = 20.0,
    capacity_mb: Annotated[float, typer.Option(help="Capacity of each service's data directory (MB)")] = 50.0,
    monitoring: Annotated[bool, typer.Option(
        "--monitoring/--no-monitoring",
        help="Also start Prometheus and Alertmanager (when installed) and write watchkeeper.yaml")] = True,
    otlp_endpoint: Annotated[str | None, typer.Option(
        help="The services export their traces over OTLP/HTTP to this base URL (e.g. http://127.0.0.1:4318); "
             "default: $OTEL_EXPORTER_OTLP_ENDPOINT, else no export")] = None,
    signals: Annotated[bool, typer.Option(
        "--signals/--no-signals",
        help="Traces to the lab's Watchkeeper and its log files in watchkeeper.yaml (logs: and traces: "
             "sections; needs a server that has them)")] = False,
    topology: Annotated[Path | None, typer.Option(
        "--topology", help="A topology file, {\"services\": [...], \"edges\": [[caller, callee], ...]} (the first "
                           "service is the one the load generator calls); default: the lab's six services")] = None,
) -> None:
    """Start the services and the load generator on 127.0.0.1; write lab.json and topology.json; with
    monitoring, start the lab's Prometheus and Alertmanager and write watchkeeper.yaml for `serve`."""
    from watchkeeper.lab.control import EDGES, SERVICES, read_topology
    from watchkeeper.lab.otel import endpoint_from

    lab = Lab(directory)
    try:
        services, edges = read_topology(topology) if topology else (list(SERVICES), list(EDGES))
        state = lab.up(rps=rps, capacity_mb=capacity_mb, monitoring=monitoring, services=services, edges=edges,
                       otlp_endpoint=None if signals else endpoint_from(otlp_endpoint), signals=signals)
    except LabError as exc:
        raise _fail(exc) from None
    _table(lab)
    if (state.get("otlp") or {}).get("endpoint"):
        out.print(f"Traces: OTLP/HTTP to {state['otlp']['endpoint']}/v1/traces · logs: {lab.dir / 'logs'}/*.log "
                  "(JSON lines)")
    out.print(f"Topology: {lab.dir / 'topology.json'} · runbooks: {lab.dir / 'runbooks'} · "
              f"stop with 'watchkeeper lab down --dir {directory}'")
    if monitoring:
        daemons = state.get("monitoring") or {}
        if daemons.get("prometheus"):
            out.print(f"Prometheus: {daemons['prometheus']['url']}"
                      + (f" · Alertmanager: {daemons['alertmanager']['url']}" if daemons.get("alertmanager") else ""))
        else:
            out.print("Prometheus is not installed (apt-get install prometheus prometheus-alertmanager): "
                      "watchkeeper.yaml has no watches.")
        out.print(f"Run the loop on it: [bold]watchkeeper serve --config {lab.settings_file}[/bold]")


@app.command()
def down(directory: Dir = DEFAULT_DIR) -> None:
    """Stop every process of the lab (whole process groups)."""
    pids = Lab(directory).down()
    out.print(f"stopped {len(pids)} processes" if pids else "the lab was not running")


@app.command()
def status(
    directory: Dir = DEFAULT_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """Per service: up or down, pid, port, instances, version, active faults."""
    lab = Lab(directory)
    try:
        if as_json:
            _show(lab.status())
        else:
            _table(lab)
    except LabError as exc:
        raise _fail(exc) from None


def _table(lab: Lab) -> None:
    st = lab.status()
    table = Table(title=f"Watchkeeper lab in {st['dir']} (since {st['started_at']})")
    for col in ("service", "state", "port", "pid", "instances", "version", "faults"):
        table.add_column(col)
    for name, s in st["services"].items():
        up_ = sum(i["healthy"] for i in s["instances"])
        state = "[green]up[/green]" if s["up"] else "[red]down[/red]"
        table.add_row(name, state, str(s["port"]), str(s["pid"]),
                      f"{up_}/{len(s['instances'])}", str(s["version"]), ", ".join(s["faults"]) or "-")
    lg = st["loadgen"]
    if lg:
        table.add_row("loadgen", "[green]up[/green]" if lg.get("alive") else "[red]down[/red]",
                      f"→ {lg.get('target', 'frontend')} at {lg.get('rps', 0):g} rps", str(lg.get("pid")), "", "", "")
    out.print(table)


def _params(values: list[str]) -> dict[str, float | str]:
    from watchkeeper.lab.record import number_or_text

    params: dict[str, float | str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise typer.BadParameter(f"--set takes KEY=VALUE, e.g. delay_s=3 or from=checkout, not {item!r}")
        params[key] = number_or_text(value)
    return params


@app.command()
def inject(
    fault: Annotated[str, typer.Argument(help=f"One of: {', '.join(FAULTS)}")],
    target: Annotated[str, typer.Option(help="The service to break")],
    duration: Annotated[str | None, typer.Option(help="Ends by itself after this long (30s, 2m); default: "
                                                      "until repaired")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help=(
        "A fault parameter KEY=VALUE (delay_s, ratio, rate_mb_s, max_mb, target_ratio, threads; exception: "
        "path=/ or /item; edge_delay: from=CALLER, delay_ms)"))] = None,
    directory: Dir = DEFAULT_DIR,
) -> None:
    """Inject a fault; prints its ground-truth record (also appended to faults.jsonl)."""
    seconds: float | None = None
    if duration is not None:
        from watchkeeper.yamlfile import parse_duration

        try:
            seconds = float(parse_duration(duration.strip()))
        except ValueError as exc:
            raise _fail(ValueError(f"--duration: {exc}")) from None
    try:
        _show(Lab(directory).inject(fault, target, seconds, **_params(set_ or [])))
    except LabError as exc:
        raise _fail(exc) from None


def _remedy(verb: str, service: str, directory: Path) -> None:
    lab = Lab(directory)
    try:
        _show(getattr(lab, verb)(service))
    except LabError as exc:
        raise _fail(exc) from None


Service = Annotated[str, typer.Argument(help="The lab service", metavar="SERVICE")]


@app.command()
def restart(service: Service, directory: Dir = DEFAULT_DIR) -> None:
    """Restart every instance of SERVICE (ends crash, hang, error_burst, cpu_hog, memory_leak, dependency_outage)."""
    _remedy("restart", service, directory)


@app.command()
def scale(service: Service, directory: Dir = DEFAULT_DIR) -> None:
    """Start one more instance of SERVICE (ends hang and cpu_hog: the added capacity relieves them)."""
    _remedy("scale", service, directory)


@app.command("clear-tmp")
def clear_tmp(service: Service, directory: Dir = DEFAULT_DIR) -> None:
    """Delete the files in SERVICE's data directory (ends disk_fill)."""
    _remedy("clear_tmp", service, directory)


@app.command()
def rollback(service: Service, directory: Dir = DEFAULT_DIR) -> None:
    """Put SERVICE's configuration back to v1 (ends bad_deploy; writes a rollback change event)."""
    _remedy("rollback", service, directory)


@app.command()
def repair(service: Service, directory: Dir = DEFAULT_DIR) -> None:
    """Whatever SERVICE needs: rollback, clear-tmp and/or restart."""
    _remedy("repair", service, directory)


@app.command()
def check(service: Service, directory: Dir = DEFAULT_DIR) -> None:
    """Exit 0 when SERVICE and everything it depends on are healthy (every instance answers /healthz,
    no active fault, disk below 90 %, baseline configuration) and its GET / answers below 500;
    otherwise print what is wrong and exit 1. Runbooks verify with it."""
    try:
        problems = Lab(directory).check(service)
    except LabError as exc:
        raise _fail(exc) from None
    for problem in problems:
        out.print(problem, markup=False)
    if problems:
        raise typer.Exit(1)
    out.print(f"{service}: healthy")


@app.command()
def record(
    out_dir: Annotated[Path, typer.Argument(help="Where the campaign goes (keep it out of the repository)")],
    faults_: Annotated[str | None, typer.Option(
        "--faults", help="Comma-separated KIND:TARGET[:KEY=VALUE...], e.g. edge_delay:payment:from=checkout "
                         "(default: a campaign of the code-level faults and three others)")] = None,
    warmup: Annotated[float, typer.Option(min=0, help="Seconds of healthy traffic first")] = 40.0,
    fault_seconds: Annotated[float, typer.Option(min=5, help="How long each fault lasts")] = 30.0,
    gap: Annotated[float, typer.Option(min=0, help="Healthy seconds after each group of faults")] = 20.0,
    concurrent: Annotated[int, typer.Option(min=1, max=3, help="Faults at once (different targets)")] = 2,
    rps: Annotated[float, typer.Option(help="Load generator requests per second")] = 20.0,
    interval: Annotated[float, typer.Option(min=0.5, max=60, help="Seconds between metric scrapes")] = 2.0,
    topology: Annotated[Path | None, typer.Option(
        "--topology", help="A topology file, {\"services\": [...], \"edges\": [[caller, callee], ...]} (the first "
                           "service is the one the load generator calls); default: the lab's six services")] = None,
) -> None:
    """Record a campaign with every signal (metrics, spans, JSON logs, ground truth) in a lab of its
    own, for 'watchkeeper eval rca --format lab OUT_DIR'."""
    from watchkeeper.lab.control import read_topology
    from watchkeeper.lab.record import DEFAULT_CAMPAIGN, CampaignTiming, parse_campaign, record_campaign

    try:
        shape = read_topology(topology) if topology else None
        if shape and not faults_:
            raise ValueError("with --topology, name the faults with --faults (the default campaign names the "
                             "lab's own services)")
        specs = parse_campaign(faults_ or DEFAULT_CAMPAIGN)
        unknown = sorted({s.kind for s in specs} - set(FAULTS))
        if unknown:
            raise ValueError(f"unknown fault {', '.join(unknown)}; the lab's faults are: {', '.join(FAULTS)}")
        if not specs:
            raise ValueError("--faults names no fault")
        timing = CampaignTiming(warmup, fault_seconds, gap, concurrent, interval)
        summary = record_campaign(out_dir, specs, timing, rps=rps, progress=lambda msg: err.print(msg, markup=False),
                                  topology=shape)
    except (ValueError, LabError) as exc:
        raise _fail(exc) from None
    _show(summary)


@app.command()
def faults(directory: Dir = DEFAULT_DIR) -> None:
    """The ground truth: every injected fault with its start and end."""
    _show(Lab(directory).faults())


if __name__ == "__main__":
    app(prog_name="watchkeeper lab")
