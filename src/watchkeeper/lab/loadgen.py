"""The lab's load generator, run as its own process::

    python -m watchkeeper.lab.loadgen --url http://127.0.0.1:8000 --rps 20 --log .watchkeeper-lab/logs/loadgen.log

Sends ``GET /`` (and a share ``--item-share``, default 0.2, of ``GET /item``) at a steady rate
(open loop: a slow service does not slow the arrivals; at most
``--concurrency`` requests are in flight, and an arrival that finds them all busy is counted as
dropped). Every 10 s it logs one line: sent, answered by status, errors, dropped.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

from watchkeeper.lab.net import now_iso, request

TIMEOUT = 8.0
CALLER = {"X-Lab-Caller": "loadgen"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Steady GET / traffic for the Watchkeeper lab.")
    parser.add_argument("--url", required=True, help="the base URL to call, e.g. the frontend's")
    parser.add_argument("--rps", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--item-share", type=float, default=0.2, help="share of requests that are GET /item")
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.rps <= 0:
        parser.error("--rps must be positive")
    if not 0 <= args.item_share <= 1:
        parser.error("--item-share must be in [0, 1]")
    rng = random.Random()  # noqa: S311 - a traffic mix, not a secret
    args.log.parent.mkdir(parents=True, exist_ok=True)
    log = open(args.log, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    slots = threading.BoundedSemaphore(args.concurrency)
    url = args.url.rstrip("/") + "/"

    def call(path: str) -> None:
        try:
            status, _ = request("GET", url + path, timeout=TIMEOUT, headers=CALLER)
            key = str(status)
        except (OSError, http.client.HTTPException) as exc:
            key = f"error:{type(exc).__name__}"
        finally:
            slots.release()
        with lock:
            counts[key] += 1

    def on_term(signum: int, _frame: object) -> None:
        log.write(f"{now_iso()} INFO loadgen stopping on signal {signum}\n")
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    log.write(f"{now_iso()} INFO loadgen started: {url} at {args.rps:g} rps ({args.item_share:.0%} /item) "
              f"pid={os.getpid()}\n")
    period, next_at, report_at = 1.0 / args.rps, time.monotonic(), time.monotonic() + 10.0
    while True:
        if slots.acquire(blocking=False):
            path = "item" if rng.random() < args.item_share else ""
            threading.Thread(target=call, args=(path,), daemon=True).start()
            with lock:
                counts["sent"] += 1
        else:
            with lock:
                counts["dropped"] += 1
        next_at += period
        now = time.monotonic()
        if now >= report_at:
            with lock:
                summary, counts = " ".join(f"{k}={v}" for k, v in sorted(counts.items())), Counter()
            log.write(f"{now_iso()} INFO loadgen last 10s: {summary}\n")
            report_at += 10.0
        if next_at > now:
            time.sleep(next_at - now)
        else:
            next_at = now  # fell behind (a suspended machine): do not burst to catch up


if __name__ == "__main__":
    main()
