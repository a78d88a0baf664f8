"""``python -m watchkeeper.service.drainer FD``: ``serve``'s intake drainer process — the child side of
:class:`watchkeeper.service.intake.IntakeProcess`, which drains the journal with an
:class:`~watchkeeper.service.intake.IntakeStage` of its own."""

from __future__ import annotations

import fcntl
import os
import pickle
import select
import signal
import sys
import time
from pathlib import Path
from typing import Any

import structlog

from watchkeeper.runtime import tune_gc
from watchkeeper.service.intake import STOP, IntakeStage

log = structlog.get_logger("watchkeeper.intake")


class Wakeup:
    """The child's end of the pipe: ``wait`` returns when woken or after ``timeout``; ``stopped`` once
    the API said stop or closed its end (it stopped, or died)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.stopped = False

    def wait(self, timeout: float) -> None:
        if self.stopped:
            return
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            data = os.read(self.fd, 4096)
            if not data or STOP in data:
                self.stopped = True


def drain_forever(settings: Any, path: str, parent: int, wake: Wakeup) -> None:
    """The child process: drain the journal until told to stop (then drain what is left) or
    until the parent is gone (then stop after the batch in hand; its successor resumes)."""
    from watchkeeper.service import Watchkeeper

    with open(path + ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the previous drainer (orphaned by a crash) finishes first
        service = Watchkeeper(settings, metrics=False)
        stage = IntakeStage(service, Path(path))
        stage.open()
        try:
            while os.getppid() == parent:
                try:
                    if stage.drain_once():
                        continue
                except Exception as exc:  # the database away, locked, full: retry, never drop
                    log.error("intake journal not drained; retrying", error=str(exc))
                    time.sleep(1.0)
                    continue
                if wake.stopped:
                    break
                wake.wait(0.2)
        finally:
            if stage.journal is not None:
                stage.journal.close()
            service.db.dispose()


def main(argv: list[str]) -> None:
    """``python -m watchkeeper.service.drainer FD``: settings, journal path and the parent's pid come
    pickled on stdin from :class:`IntakeProcess` (its own child, through a pipe), FD is the wake-up pipe.
    Ctrl-C in the terminal reaches the whole process group: the drainer leaves stopping to its parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tune_gc()
    settings, path, parent = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 -- from our parent, as spawn did
    drain_forever(settings, path, parent, Wakeup(int(argv[0])))


__all__ = ["Wakeup", "drain_forever", "main"]

if __name__ == "__main__":
    main(sys.argv[1:])
