"""``watchkeeper worker``: consume the bus and run the pipeline stages (docs/scaling.md)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from watchkeeper.cli.common import err, settings

app = typer.Typer()


@app.command()
def worker(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Messages fetched per partition per turn")] = 500,
    metrics_port: Annotated[int | None, typer.Option(
        help="Serve /metrics (consumer lag, events) on 127.0.0.1:PORT")] = None,
    no_loop: Annotated[bool, typer.Option(
        "--no-loop", help="Only correlate: no ranking, decisions, actions or delivery in this process")] = False,
) -> None:
    """Consume the partitions this worker owns (PostgreSQL advisory locks) and run correlate, rank,
    decide, act and deliver; SIGTERM or Ctrl-C stops it after the batch in hand."""
    from watchkeeper import logconfig
    from watchkeeper.bus import open_jetstream
    from watchkeeper.bus.node import WorkerNode
    from watchkeeper.errors import ConfigError
    from watchkeeper.runtime import tune_gc
    from watchkeeper.service import Watchkeeper

    cfg = settings()
    if not cfg.bus_url:
        raise ConfigError("the worker needs a bus: set WATCHKEEPER_BUS_URL (e.g. nats://127.0.0.1:4222) and run "
                          "'watchkeeper bus init'")
    logconfig.configure(cfg.log_level)
    tune_gc()
    wk = Watchkeeper(cfg)
    wk.upgrade()
    bus = open_jetstream(cfg, patience=60.0)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from watchkeeper.server.bus_ingest import BusLag

        if wk.metrics is not None:
            wk.metrics.collector("bus", BusLag(bus))
            start_http_server(metrics_port, "127.0.0.1", registry=wk.metrics.registry)
    node = WorkerNode(wk, bus, loop=not no_loop, batch=batch).start()
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    db = "SQLite (one worker only)" if wk.db.is_sqlite else "PostgreSQL"
    err.print(f"watchkeeper worker on {cfg.bus_url} ({cfg.bus_partitions} partitions) and {db}")
    try:
        stopped.wait()
    finally:
        node.stop()
        bus.close()
        wk.close()
