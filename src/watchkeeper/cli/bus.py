"""``watchkeeper bus``: create and inspect the NATS JetStream stream and its consumers."""

from __future__ import annotations

import typer

from watchkeeper.cli.common import out, settings

app = typer.Typer(no_args_is_help=True, help="The NATS JetStream bus (docs/scaling.md).")


@app.command("init")
def bus_init() -> None:
    """Create or update the stream (one subject per partition) and one durable consumer per partition."""
    from watchkeeper.bus import open_jetstream

    cfg = settings()
    bus = open_jetstream(cfg, check=False)
    try:
        for line in bus.init(cfg.bus_max_messages):
            out.print(line)
    finally:
        bus.close()


@app.command("status")
def bus_status() -> None:
    """Check the configuration (as serve and worker do at start-up) and print the lag per partition."""
    from watchkeeper.bus import open_jetstream

    cfg = settings()
    bus = open_jetstream(cfg)
    try:
        lag = bus.lag()
    finally:
        bus.close()
    out.print(f"stream {cfg.bus_stream} on {cfg.bus_url}: {cfg.bus_partitions} partitions, "
              f"{sum(lag.values())} messages not yet acknowledged")
    for p, n in sorted(lag.items()):
        out.print(f"  partition {p}: lag {n}")
