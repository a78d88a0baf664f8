"""Outbox throughput: messages delivered per second from the outbox to a local webhook sink, next to
two baselines measured just before it in the same round against the same sink, with the same
number of threads and no database: signed webhook posts from httpx (what the outbox sent with
before), and from a bare urllib3 pool (what it sends with now, without retries or redaction).

    .venv/bin/python benchmarks/outbox.py                     # SQLite, about 30 s
    .venv/bin/python benchmarks/outbox.py --rounds 3 --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test

The sink is uvicorn with a minimal ASGI app in a process of its own (it answers 204). The outbox
figure covers the whole path: claim with a lease (one write transaction per batch), sign and POST
every message (incidents in parallel on ``--workers`` threads, each incident's messages in order),
and settle each batch (one write transaction). Messages are ``--messages`` spread over
``--incidents`` incidents. Target (issue 17): at least 1,000 deliveries/s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import urllib3
from sqlalchemy import insert, text

from watchkeeper.integrations.base import EventKind, Message
from watchkeeper.integrations.config import OutboxConfig
from watchkeeper.integrations.delivery import Delivery
from watchkeeper.integrations.webhook.config import WebhookConfig
from watchkeeper.integrations.webhook.notifier import WebhookNotifier, body, sign
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
    return {
        "incident": {
            "id": incident,
            "title": "checkout latency",
            "status": "open",
            "severity": "critical",
            "services": ["checkout"],
            "labels": {},
            "opened_at": "2026-11-22T06:00:00+00:00",
        },
        "change": {
            "kind": "incident.opened",
            "seq": 1,
            "actor": "bench",
            "at": "2026-11-22T06:00:00+00:00",
            "payload": {},
        },
        "cause": None,
        "approval": None,
    }


def fill(db: Database, messages: int, incidents: int) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "incident_id": 1 + n % incidents,
            "target": "sink",
            "event": "opened",
            "audit_seq": n,
            "payload": payload(1 + n % incidents),
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        }
        for n in range(messages)
    ]
    with db.write() as conn:
        for i in range(0, len(rows), 1000):
            conn.execute(insert(outbox), rows[i : i + 1000])


def _signed(message: Message) -> tuple[bytes, dict[str, str]]:
    """The webhook's body and headers, built as the notifier builds them."""
    raw = body(message)
    stamp = int(time.time())
    return raw, {
        "Content-Type": "application/json",
        "User-Agent": "Watchkeeper",
        "X-Watchkeeper-Timestamp": str(stamp),
        "X-Watchkeeper-Signature": sign(SECRET, stamp, raw),
        "X-Watchkeeper-Delivery": message.idempotency_key,
        "X-Watchkeeper-Event": message.event.value,
    }


def _threads(send: Callable[[int], None], messages: int, workers: int) -> float:
    """``send(worker)`` ``messages`` times over ``workers`` threads: sends per second."""
    per = messages // workers

    def run(worker: int) -> None:
        for _ in range(per):
            send(worker)

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, range(workers)))
    return per * workers / (time.perf_counter() - started)


def baseline_httpx(url: str, messages: int, workers: int) -> float:
    """Signed webhook posts from httpx (one client per thread, as the outbox used to send), no
    database: deliveries/s."""
    clients = [httpx.Client(timeout=httpx.Timeout(10.0), follow_redirects=False) for _ in range(workers)]
    message = Message(1, 1, "sink", EventKind.OPENED, payload(1))

    def send(worker: int) -> None:
        raw, headers = _signed(message)
        clients[worker].post(url, content=raw, headers=headers).raise_for_status()

    try:
        return _threads(send, messages, workers)
    finally:
        for client in clients:
            client.close()


def baseline_urllib3(url: str, messages: int, workers: int) -> float:
    """Signed webhook posts from one bare urllib3 pool shared by the threads (what the outbox
    sends with now, without its retries, redaction or database): deliveries/s."""
    pool = urllib3.PoolManager(maxsize=workers, retries=False, timeout=urllib3.Timeout(10.0))
    message = Message(1, 1, "sink", EventKind.OPENED, payload(1))

    def send(_worker: int) -> None:
        raw, headers = _signed(message)
        if pool.urlopen("POST", url, body=raw, headers=headers, redirect=False).status >= 300:
            raise RuntimeError("the sink refused a post")

    try:
        return _threads(send, messages, workers)
    finally:
        pool.clear()


def through_outbox(url: str, db_url: str, messages: int, incidents: int, workers: int, batch: int) -> float:
    db = Database(db_url)
    db.upgrade()
    fill(db, messages, incidents)
    if db.engine.dialect.name == "postgresql":
        # The planner's statistics of the freshly filled table, as autovacuum would gather them
        # within a minute of such an insert (without them it scans every pending row per claim).
        with db.write() as conn:
            conn.execute(text("ANALYZE outbox"))
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
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="alternate baseline and outbox runs this many times "
        "(on a shared machine the load moves: each ratio is against the baselines just before it)",
    )
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
        ratios: dict[str, list[float]] = {}
        for n in range(1, args.rounds + 1):
            print(f"round {n} (load average {_load()})")
            databases = [("SQLite", None)] + ([("PostgreSQL", args.postgres_url)] if args.postgres_url else [])
            for name, pg_url in databases:
                raw = baseline_httpx(url, args.messages, args.workers)
                lean = baseline_urllib3(url, args.messages, args.workers)
                print(f"  {'baseline: signed posts from httpx, no database':52} {raw:7.0f} deliveries/s")
                print(f"  {'baseline: signed posts from bare urllib3, no database':52} {lean:7.0f} deliveries/s")
                if pg_url is None:
                    with tempfile.TemporaryDirectory() as tmp:
                        got = through_outbox(
                            url,
                            f"sqlite:///{Path(tmp) / 'wk.db'}",
                            args.messages,
                            args.incidents,
                            args.workers,
                            args.batch,
                        )
                else:
                    got = _postgres(url, args)
                ratios.setdefault(f"{name} / httpx", []).append(got / raw)
                ratios.setdefault(f"{name} / urllib3", []).append(got / lean)
                ratios.setdefault(f"{name} deliveries/s", []).append(got)
                print(
                    f"  {'outbox on ' + name + ' (claim, deliver in order, settle)':52} {got:7.0f} deliveries/s "
                    f"({got / raw:.2f}x httpx, {got / lean:.2f}x bare urllib3; target >= 1,000/s: "
                    f"{'met' if got >= 1000 else 'NOT met'})"
                )
        print(f"after the rounds: load average {_load()}")
        for name, found in ratios.items():
            rate = name.endswith("deliveries/s")
            text = ", ".join(f"{v:.0f}" if rate else f"{v:.2f}" for v in found)
            median = statistics.median(found)
            shown = f"{median:.0f}" if rate else f"{median:.2f}x"
            print(f"median {name}: {shown} over {len(found)} rounds ({text})")
    finally:
        sink.terminate()
        sink.join(5)


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def _postgres(url: str, args: argparse.Namespace) -> float:
    """The outbox on a fresh PostgreSQL database (not a schema): Watchkeeper serializes writers
    with an advisory lock, and advisory locks are per database, so a schema in a database other
    sessions write to (tests, on a shared machine) would wait on their writes as well."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"wk_bench_{uuid.uuid4().hex[:8]}"
    target = make_url(args.postgres_url)
    admin = target.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        return through_outbox(
            url,
            target.set(database=name).render_as_string(hide_password=False),
            args.messages,
            args.incidents,
            args.workers,
            args.batch,
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
