"""Outbox throughput: messages delivered per second from the outbox to a local webhook sink, next to
a baseline measured in the same run against the same sink — signed webhook posts straight from
httpx with the same number of threads, no database.

    .venv/bin/python benchmarks/outbox.py                     # SQLite, about 30 s
    .venv/bin/python benchmarks/outbox.py --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test

The sink is uvicorn with a minimal ASGI app in a process of its own (it answers 204). The outbox
figure covers the whole path: claim with a lease (one write transaction per batch), sign and POST
every message (incidents in parallel on ``--workers`` threads, each incident's messages in order),
and settle each batch (one write transaction). Messages are ``--messages`` spread over
``--incidents`` incidents. Target (issue 17): at least 1,000 deliveries/s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from watchkeeper.integrations.base import EventKind, Message
from watchkeeper.integrations.config import OutboxConfig
from watchkeeper.integrations.delivery import Delivery
from watchkeeper.integrations.webhook.config import WebhookConfig
from watchkeeper.integrations.webhook.notifier import WebhookNotifier
from watchkeeper.storage import Database
from watchkeeper.storage.tables import outbox

SECRET = "bench-secret-0123456789"


async def _sink(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _serve(port: int) -> None:
    import uvicorn

    uvicorn.run(_sink, host="127.0.0.1", port=port, log_level="error", access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def payload(incident: int) -> dict[str, Any]:
    return {"incident": {"id": incident, "title": "checkout latency", "status": "open", "severity": "critical",
                         "services": ["checkout"], "labels": {}, "opened_at": "2026-11-22T06:00:00+00:00"},
            "change": {"kind": "incident.opened", "seq": 1, "actor": "bench", "at": "2026-11-22T06:00:00+00:00",
                       "payload": {}}, "cause": None, "approval": None}


def fill(db: Database, messages: int, incidents: int) -> None:
    now = datetime.now(UTC)
    rows = [{"incident_id": 1 + n % incidents, "target": "sink", "event": "opened", "audit_seq": n,
             "payload": payload(1 + n % incidents), "status": "pending", "attempts": 0, "created_at": now,
             "next_attempt_at": now} for n in range(messages)]
    with db.write() as conn:
        for i in range(0, len(rows), 1000):
            conn.execute(insert(outbox), rows[i:i + 1000])


def baseline(url: str, messages: int, workers: int) -> float:
    """Signed webhook posts with httpx on ``workers`` threads (one client each): deliveries/s."""
    config = WebhookConfig(type="webhook", url=url, secret=SECRET)  # type: ignore[arg-type]
    senders = [WebhookNotifier("sink", config) for _ in range(workers)]
    message = Message(1, 1, "sink", EventKind.OPENED, payload(1))

    def run(sender: WebhookNotifier, count: int) -> None:
        for _ in range(count):
            sender.deliver(message)

    per = messages // workers
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, senders, [per] * workers))
    took = time.perf_counter() - started
    for sender in senders:
        sender.close()
    return per * workers / took


def through_outbox(url: str, db_url: str, messages: int, incidents: int, workers: int, batch: int) -> float:
    db = Database(db_url)
    db.upgrade()
    fill(db, messages, incidents)
    config = OutboxConfig(workers=workers, batch=batch)
    notifier = WebhookNotifier("sink", WebhookConfig(type="webhook", url=url, secret=SECRET))  # type: ignore[arg-type]
    delivery = Delivery(db, {"sink": notifier}, config, lambda: datetime.now(UTC))
    started = time.perf_counter()
    done = delivery.drain(max_rounds=10_000_000)
    took = time.perf_counter() - started
    delivery.stop()
    db.dispose()
    assert done == messages, f"delivered {done} of {messages}"
    return messages / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--postgres-url", default=None, help="also measure on PostgreSQL (a fresh schema)")
    parser.add_argument("--rounds", type=int, default=1, help="alternate baseline and outbox runs this many times "
                        "(on a shared machine the load moves: each ratio is against the baseline just before it)")
    args = parser.parse_args()
    port = free_port()
    sink = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    sink.start()
    url = f"http://127.0.0.1:{port}/hook"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.post(url, content=b"{}")
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise SystemExit("the sink did not start") from None
            time.sleep(0.1)
    try:
        ratios: dict[str, list[float]] = {"SQLite": [], "PostgreSQL": []}
        for _ in range(args.rounds):
            raw = baseline(url, args.messages, args.workers)
            print(f"{'baseline: signed httpx posts, ' + str(args.workers) + ' threads, no database':58} "
                  f"{raw:8.0f} deliveries/s")
            with tempfile.TemporaryDirectory() as tmp:
                lite = through_outbox(url, f"sqlite:///{Path(tmp) / 'wk.db'}", args.messages, args.incidents,
                                      args.workers, args.batch)
            ratios["SQLite"].append(lite / raw)
            print(f"{'outbox on SQLite (claim, deliver in order, settle)':58} {lite:8.0f} deliveries/s  "
                  f"({lite / raw:.2f}x baseline; target >= 1,000/s: {'met' if lite >= 1000 else 'NOT met'})")
            if args.postgres_url:
                raw = baseline(url, args.messages, args.workers)
                print(f"{'baseline again':58} {raw:8.0f} deliveries/s")
                pg = _postgres(url, args)
                ratios["PostgreSQL"].append(pg / raw)
                print(f"{'outbox on PostgreSQL':58} {pg:8.0f} deliveries/s  ({pg / raw:.2f}x baseline; "
                      f"target >= 1,000/s: {'met' if pg >= 1000 else 'NOT met'})")
        if args.rounds > 1:
            for name, found in ratios.items():
                if found:
                    print(f"median ratio to the baseline, {name}: {statistics.median(found):.2f}x "
                          f"over {len(found)} rounds")
    finally:
        sink.terminate()
        sink.join(5)


def _postgres(url: str, args: argparse.Namespace) -> float:
    import psycopg

    schema = f"wk_bench_{uuid.uuid4().hex[:8]}"
    dsn = args.postgres_url.replace("+psycopg", "")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in args.postgres_url else "?"
        return through_outbox(url, f"{args.postgres_url}{sep}options=-csearch_path%3D{schema}", args.messages,
                              args.incidents, args.workers, args.batch)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
