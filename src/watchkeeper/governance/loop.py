"""A background thread that repeats one step, and stays quiet while the database is away."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from watchkeeper.storage.outage import Burst, is_outage, reason


class Loop:
    """Run ``step`` every ``interval`` seconds (at once again when it did some work) on a daemon
    thread until :meth:`stop`. Exceptions never end the loop: a database outage is logged once
    per burst without a traceback, anything else with its traceback."""

    def __init__(self, name: str, step: Callable[[], int], interval: float) -> None:
        self.name = name
        self.step = step
        self.interval = interval
        self.log = structlog.get_logger(f"watchkeeper.{name}")
        self.burst = Burst()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"watchkeeper-{self.name}", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            did = 0
            try:
                did = self.step()
            except Exception as exc:  # keep the loop alive
                if is_outage(exc):
                    if self.burst.failed(time.monotonic()):
                        self.log.warning("database unreachable; retrying", error=reason(exc), loop=self.name)
                else:
                    self.log.exception(f"{self.name} iteration failed", loop=self.name)
            else:
                if (failures := self.burst.recovered()) > 0:
                    self.log.info("database reachable again", failures=failures, loop=self.name)
            if did:
                continue
            self._wake.wait(self.interval)
            self._wake.clear()
