"""A NATS server of the test's own (``nats-server -js`` on a free port, its store in a temporary
folder) that the test may stop and start again: the system's NATS is never touched.

In CI (``CI=true``) a missing ``nats-server`` fails the test; elsewhere it skips, saying why."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from conftest import need
from watchkeeper.lab.prometheus import free_port, stop_group

HOST = "127.0.0.1"


def nats_binary() -> str:
    found = shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None)
    need(found is not None, "nats-server is not installed (apt-get install nats-server); the bus tests run "
         "their own NATS with JetStream")
    assert found is not None
    return found


class NatsServer:
    def __init__(self, workdir: Path) -> None:
        self.binary = nats_binary()
        self.workdir = workdir
        self.port = free_port()
        self.url = f"nats://{HOST}:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "nats.log"

    def start(self, timeout: float = 20.0) -> NatsServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-a", HOST, "-p", str(self.port), "-js", "-sd", str(self.workdir / "js")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError(f"nats-server exited: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.05)
        raise AssertionError(f"nats-server not listening on {self.port} within {timeout} s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_group(proc, 10)


def wait_for(check: object, *, timeout: float, what: str, interval: float = 0.05) -> None:
    """Until ``check()`` is true, or fail after ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        if check():  # type: ignore[operator]
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
