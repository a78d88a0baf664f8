"""Start real servers for end-to-end tests: node exporter, Prometheus, Alertmanager, watchkeeper.

Every server binds to 127.0.0.1 on a free port, runs in its own process group with its own
working directory and log file, and is stopped (group SIGTERM, then SIGKILL) when the
:class:`Servers` that started it closes, so a failing test leaves nothing behind::

    with Servers() as servers:
        wk = start_watchkeeper(servers, tmp_path / "wk")
        ...
        wait_until(check, what="the incident opens", servers=servers)  # failures show every log tail

In CI (``CI=true``) a missing binary fails the test; elsewhere it skips, naming the Debian package.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

import httpx
import yaml

from conftest import need
from watchkeeper.lab.prometheus import alertmanager_config, free_port, prometheus_config, static_jobs, stop_group

T = TypeVar("T")

HOST = "127.0.0.1"

NODE_EXPORTER = Path("/usr/bin/prometheus-node-exporter")
PROMETHEUS = Path("/usr/bin/prometheus")
ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
DEBIAN_PACKAGES = {
    NODE_EXPORTER: "prometheus-node-exporter",
    PROMETHEUS: "prometheus",
    ALERTMANAGER: "prometheus-alertmanager",
}
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def need_binary(path: Path) -> Path:
    """``path`` if it is an executable file; otherwise skip/fail naming its Debian package."""
    package = DEBIAN_PACKAGES.get(path, "?")
    need(os.access(path, os.X_OK), f"{path} is missing (apt-get install {package})")
    return path


def watchkeeper_command() -> Path:
    """The ``watchkeeper`` console script of the running interpreter's environment."""
    script = Path(sys.executable).parent / "watchkeeper"
    need(os.access(script, os.X_OK), f"{script} is missing (run `make setup`)")
    return script


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment minus proxies and inherited ``WATCHKEEPER_*`` settings, plus ``extra``."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith("WATCHKEEPER_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env.update(extra or {})
    return env


def http() -> httpx.Client:
    """A client for loopback servers: short timeouts, never a proxy."""
    return httpx.Client(timeout=5.0, trust_env=False)


@dataclass
class Server:
    """One real server process: start, stop, restart on the same port, tail its log."""

    name: str
    argv: list[str]
    workdir: Path
    port: int
    ready_path: str | None = None
    env: dict[str, str] = field(default_factory=clean_env)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = READY_TIMEOUT) -> Server:
        """Start (or restart) the process and wait until ``ready_path`` answers 200."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log.write(f"==== {time.strftime('%H:%M:%S')} starting: {' '.join(self.argv)}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            self.argv, cwd=self.workdir, env=self.env, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        if self.ready_path is not None:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        url = self.url + (self.ready_path or "/")

        def ready() -> bool:
            if not self.running:
                raise AssertionError(
                    f"{self.name} exited with code {self.proc and self.proc.returncode} before it was "
                    f"ready\n{self.log_tail()}"
                )
            try:
                with http() as client:
                    return client.get(url).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=timeout, what=f"{self.name} ready at {url}", logs=self.log_tail)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the process group (as the lab's daemons are); always close the log."""
        proc, self.proc = self.proc, None
        try:
            if proc is not None:
                stop_group(proc, timeout)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_bytes().decode("utf-8", "replace")
        except OSError as exc:
            return f"---- {self.name}: no log ({exc})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"---- {self.name} ({self.log_path}), last {lines} lines:\n{tail}"


class Servers:
    """The servers of one test; closing stops them all, newest first, even after a failure."""

    def __init__(self) -> None:
        self.started: list[Server] = []

    def start(self, server: Server, timeout: float = READY_TIMEOUT) -> Server:
        self.started.append(server)
        return server.start(timeout)

    def logs(self, lines: int = 40) -> str:
        return "\n".join(s.log_tail(lines) for s in self.started)

    def close(self) -> None:
        errors: list[BaseException] = []
        for server in reversed(self.started):
            try:
                server.stop()
            except BaseException as exc:  # keep stopping the others
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Servers:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()


def wait_until(
    check: Callable[[], T | None], *, what: str, timeout: float = 60.0, interval: float = 0.25,
    servers: Servers | None = None, logs: Callable[[], str] | None = None,
) -> T:
    """Poll ``check`` until it returns something truthy (returned) or ``timeout`` passes (fails).

    An HTTP error from ``check`` counts as "not yet". The failure names ``what``, the last value
    or error seen, and the log tails of ``servers`` (or ``logs()``).

    >>> wait_until(lambda: 42, what="the answer")
    42
    """
    deadline = time.monotonic() + timeout
    last: T | httpx.HTTPError | None = None
    while True:
        try:
            found = check()
        except httpx.HTTPError as exc:  # a server still starting, or restarting: try again
            last = exc
        else:
            if found:
                return found
            last = found
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    tails = servers.logs() if servers is not None else logs() if logs is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}\n{tails}")


# -- the servers ---------------------------------------------------------------------------------
def start_node_exporter(servers: Servers, workdir: Path, port: int | None = None) -> Server:
    """A scrape target: node exporter with only the cheap ``time`` collector."""
    port = port or free_port()
    argv = [str(need_binary(NODE_EXPORTER)), f"--web.listen-address={HOST}:{port}",
            "--collector.disable-defaults", "--collector.time"]
    return servers.start(Server("node-exporter", argv, workdir, port, ready_path="/metrics"))


def start_prometheus(
    servers: Servers, workdir: Path, *, scrape_jobs: Mapping[str, Sequence[str]],
    alert_rules: Sequence[Mapping[str, Any]] = (), alertmanager: str | None = None,
    interval: str = "1s", port: int | None = None,
) -> Server:
    """Prometheus scraping ``scrape_jobs`` (job -> ["host:port"]) every ``interval``,
    evaluating ``alert_rules`` every ``interval`` and sending alerts to ``alertmanager``."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    rules_file = workdir / "rules.yml"
    rules = {"groups": [{"name": "e2e", "rules": [dict(rule) for rule in alert_rules]}]}
    rules_file.write_text(yaml.safe_dump(rules))
    config = prometheus_config(static_jobs(scrape_jobs), interval=interval, rule_files=[rules_file],
                               alertmanager=alertmanager)
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    argv = [str(need_binary(PROMETHEUS)), f"--config.file={config_file}",
            f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address={HOST}:{port}"]
    return servers.start(Server("prometheus", argv, workdir, port, ready_path="/-/ready"))


def start_alertmanager(
    servers: Servers, workdir: Path, *, webhook_url: str, bearer_token: str | None = None,
    port: int | None = None,
) -> Server:
    """Alertmanager (gossip off) sending every alert, and its resolution, to one webhook
    after 1 s of grouping."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = alertmanager_config(webhook_url, bearer_token=bearer_token, group_by=("alertname",))
    config_file = workdir / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(config))
    argv = [str(need_binary(ALERTMANAGER)), f"--config.file={config_file}",
            f"--storage.path={workdir / 'data'}", f"--web.listen-address={HOST}:{port}",
            "--cluster.listen-address="]
    return servers.start(Server("alertmanager", argv, workdir, port, ready_path="/-/ready"))


@dataclass
class WatchkeeperServer:
    """``watchkeeper serve`` on its own SQLite file, with one token per role it was started with."""

    server: Server
    command: Path
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def create_token(self, role: str, name: str | None = None) -> str:
        """Mint a token with ``watchkeeper token create`` (it prints the token as its last line)."""
        argv = [str(self.command), "token", "create", "--role", role, "--name", name or f"e2e-{role}"]
        done = subprocess.run(
            argv, cwd=self.server.workdir, env=self.server.env, capture_output=True, timeout=60, check=False
        )
        lines = done.stdout.decode().strip().splitlines()
        if done.returncode != 0 or not lines:
            raise AssertionError(
                f"`{' '.join(argv)}` exited {done.returncode}\nstdout: {done.stdout.decode()}\n"
                f"stderr: {done.stderr.decode()}"
            )
        self.tokens[role] = lines[-1].strip()
        return self.tokens[role]


def start_watchkeeper(
    servers: Servers, workdir: Path, *, roles: Sequence[str] = ("ingest", "viewer"), port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> WatchkeeperServer:
    """``watchkeeper serve`` with its own SQLite file in ``workdir``; a token per role is
    created (``.tokens[role]``) before it starts."""
    workdir.mkdir(parents=True, exist_ok=True)
    command = watchkeeper_command()
    port = port or free_port()
    full_env = clean_env({"WATCHKEEPER_DATABASE_URL": f"sqlite:///{workdir.resolve() / 'watchkeeper.db'}", **(env or {})})
    argv = [str(command), "serve", "--host", HOST, "--port", str(port)]
    server = Server("watchkeeper", argv, workdir, port, ready_path="/healthz", env=full_env)
    wk = WatchkeeperServer(server, command)
    for role in roles:
        wk.create_token(role)
    servers.start(wk.server)
    return wk
