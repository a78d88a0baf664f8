"""The background loop survives every error; a database outage is logged once per burst without a
traceback, a bug with its traceback, and the end of an outage once."""

from __future__ import annotations

import threading
import time

from sqlalchemy.exc import IntegrityError, OperationalError
from structlog.testing import capture_logs

from watchkeeper.governance.loop import Loop


def test_an_outage_is_one_line_and_a_bug_keeps_its_traceback() -> None:
    script: list[BaseException | None] = [
        *(OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused")) for _ in range(20)),
        None,  # the database is back
        IntegrityError("INSERT", {}, Exception("duplicate key")),  # a bug, not an outage
    ]
    done = threading.Event()

    def step() -> int:
        if not script:
            done.set()
            return 0
        exc = script.pop(0)
        if exc is not None:
            raise exc
        return 0

    loop = Loop("worker", step, interval=0.001)
    with capture_logs() as captured:
        loop.start()
        assert done.wait(10)
        loop.stop()
    logs = [e for e in captured if e.get("loop") == "worker"]  # not other tests' leftover threads
    events = [(e["event"], e["log_level"], "exc_info" in e) for e in logs]
    assert events == [
        ("database unreachable; retrying", "warning", False),
        ("database reachable again", "info", False),
        ("worker iteration failed", "error", True),
    ]
    assert logs[0]["error"] == "ConnectionRefusedError: connection refused" and logs[1]["failures"] == 20


def test_work_done_means_look_again_at_once() -> None:
    calls: list[float] = []

    def step() -> int:
        calls.append(time.monotonic())
        return 1 if len(calls) < 5 else 0

    loop = Loop("responder", step, interval=60)
    loop.start()
    deadline = time.monotonic() + 5
    while len(calls) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    loop.stop()
    assert len(calls) == 5  # no 60 s wait between steps that did work
