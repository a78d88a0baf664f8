"""``watchkeeper demo``: the lab, its Prometheus and Alertmanager, and ``watchkeeper serve --config
<lab dir>/watchkeeper.yaml`` as its own process — then faults injected one after another, and what
the server does with each measured through its API (shown live with Rich, or ``--headless`` as one
JSON line). The demo is one more user of the server: it detects, ranks and decides nothing itself.

Without Prometheus (not installed, and not root to install it), the demo says so and watches the
lab's services directly: it scrapes them and posts the SLO alerts to the server's ingest API, as
any monitoring agent could; the server then has alerts but no series to rank causes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from watchkeeper.demo.closed_loop import APPROVER, Api, Observer, Outcome
from watchkeeper.lab import Lab, serve_config
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.settings import load_settings

READY_TIMEOUT = 60.0
#: Whether the demo's lab sends traces to the server and the server tails the services' logs
#: (``Lab.up(signals=True)``: ``traces:`` and ``logs: {files: …}`` in the generated settings); the CLI's
#: ``--signals``. Off by default: log anomalies resolve only after quiet minutes, so with them on an
#: incident closes minutes after its fault is fixed, longer than the demo's per-fault timeout.
SIGNALS = False


@dataclass(frozen=True, slots=True)
class Timing:
    """How long each phase may take, in seconds (the defaults suit the lab on a laptop)."""

    interval: float = 2.0       # how often the demo looks at the server's API
    warmup: float = 24.0        # healthy traffic the detectors learn from before the first fault
    timeout: float = 150.0      # per fault: give up waiting for detection and resolution
    settle: float = 20.0        # healthy time between two faults (detectors judge "normal" on it)


@dataclass(slots=True)
class DemoRun:
    directory: Path
    url: str = ""
    config: Path = Path()
    outcomes: list[Outcome] = field(default_factory=list)
    kpis: dict[str, Any] = field(default_factory=dict)
    audit: str = ""
    audit_ok: bool = False
    manual: bool = False
    prometheus: bool = True

    def totals(self) -> dict[str, Any]:
        n = len(self.outcomes)
        detected = [o for o in self.outcomes if o.detected]
        resolved = [o for o in self.outcomes if o.resolved and o.mttr_s is not None]
        return {
            "faults": n,
            "detected": len(detected),
            "top1": round(sum(o.cause_correct for o in self.outcomes) / n, 3) if n else None,
            "resolved": len(resolved),
            "automated": sum(1 for o in self.outcomes if o.action is not None),
            "mean_detected_after_s": _mean([o.detected_after_s for o in detected]),
            "mean_mttr_s": _mean([o.mttr_s for o in resolved]),
            "audit_ok": self.audit_ok,
            "mode": "manual" if self.manual else "automated",
            "signals": "prometheus" if self.prometheus else "direct scrape",
        }

    def as_json(self) -> str:
        return json.dumps({"faults": [o.summary() for o in self.outcomes], "totals": self.totals()},
                          default=str, separators=(",", ":"))


def _mean(values: Sequence[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return round(sum(xs) / len(xs), 1) if xs else None


Show = Callable[[str, Observer | None, list[Outcome], Outcome | None], None]


def _quiet(_phase: str, _obs: Observer | None, _outcomes: list[Outcome], _current: Outcome | None) -> None:
    return None


class Server:
    """``watchkeeper serve --config FILE`` as a child process in its own process group."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log_path = config, log
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = READY_TIMEOUT) -> Server:
        settings = load_settings({}, self.config)
        self.url = f"http://{settings.host}:{settings.port}"
        self._log = self.log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHKEEPER_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "watchkeeper.cli", "--config", str(self.config), "serve"],
            env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while True:
                if self.proc.poll() is not None:
                    code = self.proc.returncode
                    self.stop()
                    raise RuntimeError(f"watchkeeper serve exited with code {code}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.url + "/healthz").status_code in (200, 503):
                        return self
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"watchkeeper serve was not ready after {timeout:.0f}s:\n{self.log_tail()}")
                time.sleep(0.2)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"


def approver_token_file(config: Path) -> Path:
    """Where the demo leaves an approver token for the person watching (mode 600)."""
    return config.parent / "approver.token"


def tokens(config: Path) -> dict[Role, str]:
    """An approver token (the stand-in approver) and an admin token (audit verification) in the
    database the server will use."""
    service = Watchkeeper(load_settings({}, config), metrics=False)
    try:
        service.upgrade()
        made = {Role.APPROVER: service.create_token(Role.APPROVER, APPROVER, "demo"),
                Role.ADMIN: service.create_token(Role.ADMIN, "demo-admin", "demo")}
        # yours, for approving from another terminal (four-eyes: you are not the policy nor the stand-in)
        path = approver_token_file(config)
        path.write_text(service.create_token(Role.APPROVER, "you", "demo") + "\n", encoding="utf-8")
        path.chmod(0o600)
        return made
    finally:
        service.close()


class DirectWatch:
    """The fallback without Prometheus: scrape the lab's services, evaluate the SLO rules, and post the
    alerts to the server's ingest API (as a monitoring agent would)."""

    def __init__(self, lab: Lab, interval: float) -> None:
        from watchkeeper.lab.signals import Monitor, Scraper

        wk = lab.state().get("watchkeeper") or {}
        self.monitor = Monitor(Scraper.from_lab(lab.dir), detector=None)
        self.interval = interval
        self._client = httpx.Client(base_url=wk["url"], timeout=10.0, trust_env=False,
                                    headers={"Authorization": f"Bearer {wk['ingest_token']}"})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-direct-watch", daemon=True)

    def start(self) -> DirectWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        from watchkeeper.lab.signals import as_native, watch

        def emit(events: list[Any]) -> None:
            with contextlib.suppress(httpx.HTTPError):
                self._client.post("/api/v1/ingest/events", json={"events": [as_native(e) for e in events]})

        watch(self.monitor, self.interval, emit, self._stop)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.monitor.close()
        self._client.close()


def run(
    directory: Path, faults: Sequence[tuple[str, str]], *, approve_after: float | None = None,
    timing: Timing = Timing(), show: Show = _quiet, record: Path | None = None, manual: bool = False,
    signals: bool = SIGNALS,
) -> DemoRun:
    """Run the lab campaign in ``directory`` (wiped first). ``show`` is called on every tick.

    ``manual``: the server detects, correlates and ranks but has no runbooks — each fault is left
    for a person to fix with ``watchkeeper lab restart|scale|clear-tmp|rollback`` — the baseline the
    automated MTTR is compared with. ``record``: the lab's signals (scraped directly, every
    ``interval``) and ground truth are written there for ``watchkeeper eval rca --format lab``.
    ``signals``: the lab's services also send their traces to the server and the server tails their
    logs (see :data:`SIGNALS`)."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    lab = Lab(directory / "lab")
    result = DemoRun(directory, manual=manual)
    show("starting the lab, Prometheus and Alertmanager", None, result.outcomes, None)
    lab.up(signals=signals)
    recorder_stop = threading.Event()
    recorder: threading.Thread | None = None
    direct: DirectWatch | None = None
    server: Server | None = None
    try:
        state = lab.state()
        result.prometheus = bool((state.get("monitoring") or {}).get("prometheus"))
        config = lab.settings_file
        if manual:  # the same settings without runbooks: nothing may run by itself
            settings = load_settings({}, config)
            config = serve_config.write(lab.dir, lab.topology(), port=settings.port,
                                       prometheus_url=settings.watch.prometheus[0].url if settings.watch.prometheus
                                       else None, name="watchkeeper-manual.yaml", runbooks=False, signals=signals)
        result.config = config
        keys = tokens(config)
        show("starting watchkeeper serve", None, result.outcomes, None)
        server = Server(config, directory / "serve.log").start()
        result.url = server.url
        if not result.prometheus:
            direct = DirectWatch(lab, timing.interval).start()
        if record is not None:
            recorder = _start_recorder(lab, record, timing.interval, recorder_stop)
        api = Api(server.url, keys[Role.ADMIN])
        observer = Observer(api, approve_after=approve_after)
        try:
            _campaign(lab, observer, faults, timing, show, result, blind=manual)
            result.kpis = api.kpis()
            verdict = api.audit_verify()
            result.audit_ok = bool(verdict.get("ok"))
            result.audit = str(verdict.get("message") or verdict.get("detail") or verdict)
        finally:
            api.close()
    finally:
        recorder_stop.set()
        if recorder is not None:
            recorder.join(timeout=30)
        if direct is not None:
            direct.stop()
        if server is not None:
            server.stop()
        if record is not None:
            lab.export_ground_truth(record)
        lab.down()
    return result


def _start_recorder(lab: Lab, record: Path, interval: float, stop: threading.Event) -> threading.Thread:
    """Record the lab's derived signals for ``eval rca --format lab`` (scraped directly: the recording
    is the evaluation's, not the loop's)."""
    from watchkeeper.lab.record import Recorder
    from watchkeeper.lab.signals import Scraper

    def loop() -> None:
        scraper, recorder = Scraper.from_lab(lab.dir), Recorder(record)
        try:
            while not stop.is_set():
                now = time.time()
                recorder.write(now, scraper.scrape(now))
                stop.wait(max(0.0, interval - (time.time() - now)))
        finally:
            scraper.close()

    thread = threading.Thread(target=loop, name="demo-recorder", daemon=True)
    thread.start()
    return thread


def _campaign(lab: Lab, observer: Observer, faults: Sequence[tuple[str, str]], timing: Timing, show: Show,
              result: DemoRun, *, blind: bool = False) -> None:
    """Inject the faults one after another; ``blind`` keeps each fault's kind and target out of the
    phase shown (a person fixing them must find the cause the way an on-call engineer would)."""
    truth: dict[str, Any] = {}

    def wait(seconds: float, phase: str, current: Outcome | None,
             until: Callable[[list[dict[str, Any]]], bool] | None = None) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.monotonic()
            open_incidents = observer.open_incidents()
            observer.approve_pending(time.time())
            if current is not None and not current.timed_out:
                fault = next((f for f in lab.faults() if f["id"] == truth.get("id")), None)
                observer.observe(current, fault)
            show(phase, observer, result.outcomes, current)
            if until is not None and until(open_incidents):
                return
            time.sleep(max(0.0, timing.interval - (time.monotonic() - started)))

    wait(timing.warmup, "learning normal traffic", None)
    for number, (kind, target) in enumerate(faults, 1):
        truth = lab.inject(kind, target)
        outcome = Outcome(kind, target, injected_at=_started(truth))
        result.outcomes.append(outcome)

        def resolved(_open: list[dict[str, Any]], o: Outcome = outcome) -> bool:
            return o.resolved

        phase = f"fault {number} of {len(faults)} injected" if blind else f"{kind} on {target}"
        wait(timing.timeout, phase, outcome, resolved)
        if not outcome.resolved:  # leave the lab healthy for the next fault; the outcome stays unresolved
            outcome.timed_out = True
            lab.repair(target)
        wait(timing.timeout, "waiting for every incident to close", outcome, lambda open_: not open_)
        wait(timing.settle, "settling", outcome)


def _started(truth: dict[str, Any]) -> float:
    from datetime import datetime

    return datetime.fromisoformat(str(truth["started_at"])).timestamp()
