"""The lab's control plane: :class:`Lab` starts and stops the services and the load generator,
injects faults and repairs them, and keeps the lab directory's files (the lab contract, see
``docs/lab.md``): ``lab.json``, ``topology.json``, ``faults.jsonl`` (ground truth), ``changes.jsonl``,
``logs/``, ``config/``, ``data/`` and ``runbooks/``.

Every process runs in its own session (so its own process group): ``down`` and the remediations
signal whole groups, and nothing is left behind.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from watchkeeper.errors import WatchkeeperError
from watchkeeper.lab import service as svc
from watchkeeper.lab.net import HOST, append_line, free_ports, get_json, now_iso, request
from watchkeeper.model import ChangeKind

SERVICES: tuple[str, ...] = ("frontend", "checkout", "catalog", "payment", "cache", "store")
#: caller → callee (the caller depends on the callee).
EDGES: tuple[tuple[str, str], ...] = (
    ("frontend", "checkout"), ("frontend", "catalog"), ("checkout", "payment"), ("checkout", "cache"),
    ("catalog", "cache"), ("catalog", "store"),
)
FAULTS: tuple[str, ...] = ("crash", "hang", "error_burst", "cpu_hog", "memory_leak", "disk_fill", "bad_deploy",
                           "dependency_outage", "exception", "wrong_value", "edge_delay")
#: The code-level faults: their signal is in logs and traces rather than in resource metrics.
CODE_FAULTS: tuple[str, ...] = ("exception", "wrong_value", "edge_delay")
#: Which faults each remediation ends (its ``ended_by`` in faults.jsonl). A restart loses in-process
#: state, but not a full disk nor a bad configuration; scaling out relieves saturation (the lab's
#: ``hang`` and ``cpu_hog`` stand for it). An injected ``exception`` and an ``edge_delay`` go with the
#: process (like a chaos agent attached to it, or a pod's network namespace); a ``wrong_value`` is in
#: the deployed configuration, so only a rollback undoes it.
ENDS: dict[str, frozenset[str]] = {
    "restart": frozenset({"crash", "hang", "error_burst", "cpu_hog", "memory_leak", "dependency_outage",
                          "exception", "edge_delay"}),
    "scale": frozenset({"hang", "cpu_hog"}),
    "clear": frozenset({"disk_fill"}),
    "rollback": frozenset({"bad_deploy", "wrong_value"}),
}
BAD_CONFIG = {"version": "v2", "error_ratio": 0.6, "note": "bad deploy: a broken connection-pool setting"}
WRONG_CONFIG = {"version": "v2", "error_ratio": 0.0, "wrong_value": 1.0,
                "note": "bad deploy: prices are sent as refunds (sign flipped)"}
#: Faults that deploy a configuration (a ``deploy`` change event; ``rollback`` ends them).
CONFIG_FAULTS: dict[str, dict[str, Any]] = {"bad_deploy": BAD_CONFIG, "wrong_value": WRONG_CONFIG}
MAX_INSTANCES = 4
START_TIMEOUT = 15.0
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # started here: kept so they can be reaped


class LabError(WatchkeeperError):
    """A request the lab cannot carry out, in one sentence (the CLI exits 2 with it): part of the one
    error hierarchy, so any command that drives the lab reports it the same way."""


_SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


def check_topology(services: Sequence[str], edges: Iterable[Sequence[str]]) -> tuple[list[str], list[tuple[str, str]]]:
    """The lab's services and caller → callee edges, checked: names a file can carry (lower case,
    digits, ``-``), no duplicate, no edge to an unknown service or to itself, no cycle (a request would
    loop), and every service reachable from the first one, which the load generator calls. Raises
    :class:`LabError` with a sentence.

    >>> check_topology(["gw", "api", "db"], [["gw", "api"], ["api", "db"]])
    (['gw', 'api', 'db'], [('gw', 'api'), ('api', 'db')])
    >>> check_topology(["gw", "db"], [])
    Traceback (most recent call last):
    ...
    watchkeeper.lab.control.LabError: db: not reachable from gw, the first service (the load generator calls it)
    """
    names = [str(n) for n in services]
    if not names:
        raise LabError("the topology names no service")
    if len(names) > 24:
        raise LabError(f"the topology names {len(names)} services; the lab runs at most 24 (one process each)")
    bad = [n for n in names if not _SERVICE_NAME.match(n)]
    if bad:
        raise LabError(f"service names are lower case letters, digits and '-' (at most 40), starting with a "
                       f"letter: not {', '.join(map(repr, bad))}")
    if len(set(names)) != len(names):
        raise LabError("the topology names a service twice")
    pairs: list[tuple[str, str]] = []
    for e in edges:
        if isinstance(e, str) or len(e) != 2:
            raise LabError(f"an edge is [caller, callee], not {e!r}")
        pairs.append((str(e[0]), str(e[1])))
    unknown = sorted({n for e in pairs for n in e} - set(names))
    if unknown:
        raise LabError(f"edges name services that are not in the lab: {', '.join(unknown)}")
    if any(a == b for a, b in pairs):
        raise LabError("a service cannot call itself")
    if len(set(pairs)) != len(pairs):
        raise LabError("the topology names an edge twice")
    callees: dict[str, list[str]] = {n: [] for n in names}
    for a, b in pairs:
        callees[a].append(b)
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in callees[node]:
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt):], node, nxt] if nxt in path else [node, nxt]
                raise LabError(f"the topology has a cycle ({' → '.join(cycle)}): a request would loop")
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    visit(names[0], [])
    unreached = [n for n in names if n not in state]
    if unreached:
        raise LabError(f"{', '.join(unreached)}: not reachable from {names[0]}, the first service (the load "
                       "generator calls it)")
    return names, pairs


def read_topology(path: str | Path) -> tuple[list[str], list[tuple[str, str]]]:
    """A topology file, ``{"services": [...], "edges": [[caller, callee], ...]}`` (what ``topology.json``
    holds; the first service is the entry the load generator calls), checked by :func:`check_topology`."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise LabError(f"{path}: cannot read the topology ({e.strerror or e})") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LabError(f"{path}: the topology is not JSON ({e})") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), list) \
            or not isinstance(doc.get("edges", []), list):
        raise LabError(f"{path}: a topology is {{\"services\": [...], \"edges\": [[caller, callee], ...]}}")
    if not all(isinstance(n, str) for n in doc["services"]) or not all(
            isinstance(e, list) and all(isinstance(x, str) for x in e) for e in doc.get("edges", [])):
        raise LabError(f"{path}: services are names and edges are [caller, callee] pairs of names")
    return check_topology(doc["services"], doc.get("edges", []))


class Lab:
    """The lab in ``directory``.

    >>> lab = Lab("/tmp/no-such-lab-dir")
    >>> lab.is_up(), sorted(lab.topology()["services"])[:2]
    (False, ['cache', 'catalog'])
    """

    def __init__(self, directory: Path | str = ".watchkeeper-lab", *, python: str | None = None) -> None:
        self.dir = Path(directory).absolute()
        self.python = python or sys.executable

    # -- files ----------------------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.dir / "lab.json"

    def state(self) -> dict[str, Any]:
        """``lab.json``; :class:`LabError` when the lab is not up."""
        try:
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LabError(f"the lab in {self.dir} is not up; start it with 'watchkeeper lab up --dir {self.dir}'"
                           ) from None
        except ValueError as exc:
            raise LabError(f"{self.state_file} is not valid JSON ({exc}); 'watchkeeper lab down' cleans up") from exc
        return dict(state)

    def _save(self, state: dict[str, Any]) -> None:
        for name, entry in state["services"].items():
            entry["version"] = str(svc.read_config(self.dir, name).get("version", "v1"))
            if entry["instances"]:
                entry["port"], entry["pid"] = entry["instances"][0]["port"], entry["instances"][0]["pid"]
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
        tmp.replace(self.state_file)
        if state.get("monitoring", {}).get("prometheus"):
            self._write_targets(state)

    def topology(self) -> dict[str, Any]:
        """``{"services": [...], "edges": [[caller, callee], ...]}`` (from topology.json when up)."""
        with contextlib.suppress(OSError, ValueError):
            return dict(json.loads((self.dir / "topology.json").read_text(encoding="utf-8")))
        return {"services": list(SERVICES), "edges": [list(e) for e in EDGES]}

    def endpoints(self) -> dict[str, str]:
        """service → base URL of its first instance."""
        return {name: f"http://{HOST}:{entry['port']}" for name, entry in self.state()["services"].items()}

    def instance_urls(self, name: str) -> list[str]:
        return [f"http://{HOST}:{i['port']}" for i in self._entry(self.state(), name)["instances"]]

    def changes(self) -> list[dict[str, Any]]:
        """The change events of ``changes.jsonl``, oldest first."""
        return _read_jsonl(self.dir / "changes.jsonl")

    def faults(self) -> list[dict[str, Any]]:
        """Ground truth: one record per injection, its ``ended_at``/``ended_by`` filled from the
        later line when there is one (the first end wins)."""
        records: dict[str, dict[str, Any]] = {}
        for line in _read_jsonl(self.dir / "faults.jsonl"):
            fid = str(line.get("id"))
            if "fault" in line:
                records[fid] = dict(line)
            elif fid in records and records[fid].get("ended_at") is None:
                records[fid]["ended_at"] = line.get("ended_at")
                records[fid]["ended_by"] = line.get("ended_by")
        return list(records.values())

    def open_faults(self, target: str | None = None) -> list[dict[str, Any]]:
        return [f for f in self.faults() if f.get("ended_at") is None and target in (None, f["target"])]

    @property
    def runbooks_dir(self) -> Path:
        """The lab's runbooks, made runnable here: written into ``<dir>/runbooks`` with this Python
        and this lab directory in their commands (the shipped files say ``watchkeeper … --dir
        .watchkeeper-lab``)."""
        out = self.dir / "runbooks"
        out.mkdir(parents=True, exist_ok=True)
        for name, text in shipped_runbooks().items():
            (out / name).write_text(localize(text, self.python, self.dir), encoding="utf-8")
        return out

    def export_ground_truth(self, dest: Path | str) -> Path:
        """Copy ``faults.jsonl``, ``topology.json`` and ``changes.jsonl`` into ``dest`` (a recorded
        campaign, next to the metrics the signals recorder wrote)."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("faults.jsonl", "topology.json", "changes.jsonl"):
            src = self.dir / name
            if src.exists():
                shutil.copyfile(src, dest / name)
            else:
                (dest / name).write_text("", encoding="utf-8")
        return dest

    # -- life cycle -------------------------------------------------------------------------------
    def is_up(self) -> bool:
        try:
            state = self.state()
        except LabError:
            return False
        return any(_alive(pid) for pid in _pids(state))

    def up(self, *, rps: float = 20.0, capacity_mb: float = 50.0, services: Sequence[str] = SERVICES,
           edges: Iterable[tuple[str, str]] = EDGES, monitoring: bool = True,
           serve_port: int | None = None, otlp_endpoint: str | None = None, signals: bool = False,
           item_share: float = 0.2, otlp_logs: bool | None = None) -> dict[str, Any]:
        """Start every service and the load generator, wait until each answers ``/healthz``, write
        ``lab.json`` and ``topology.json``. With ``monitoring`` (the default), also start the lab's
        Prometheus and Alertmanager when they are installed (Alertmanager sends its alerts to the
        Watchkeeper that ``watchkeeper.yaml`` describes) and write ``watchkeeper.yaml``: the settings
        ``watchkeeper serve --config`` runs the whole loop on. Returns the ``lab.json`` contents.

        ``otlp_endpoint``: the services export their spans there (OTLP/HTTP base URL). ``signals``
        (with monitoring): the services export to the Watchkeeper of ``watchkeeper.yaml`` (its ingest
        token as bearer) and the settings gain the ``logs:`` (one file input per service log) and
        ``traces:`` sections — for a server that has ``POST /v1/traces`` and log file inputs.
        ``otlp_logs``: also export the log lines over OTLP (default: yes, except with ``signals``,
        where the server tails the log files and would otherwise read every line twice)."""
        if not 0 < rps <= 500 or not 0 < capacity_mb <= 1024:
            raise LabError("--rps must be in (0, 500] and --capacity-mb in (0, 1024] (the lab stays small)")
        if not 0 <= item_share <= 1:
            raise LabError("the share of GET /item must be in [0, 1]")
        if otlp_endpoint is not None and not otlp_endpoint.startswith(("http://", "https://")):
            raise LabError(f"--otlp-endpoint must be an http(s) URL such as http://127.0.0.1:4318, not "
                           f"{otlp_endpoint!r}")
        if signals and not monitoring:
            raise LabError("signals need monitoring: they go to the Watchkeeper that watchkeeper.yaml describes")
        if self.is_up():
            pids = ", ".join(str(p) for p in _pids(self.state()) if _alive(p))
            raise LabError(f"the lab in {self.dir} is already up (pids {pids}); "
                           f"run 'watchkeeper lab down --dir {self.dir}' first")
        names, edges = check_topology(services, edges)
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in ("faults.jsonl", "changes.jsonl", "lab.json", "watchkeeper.db", "watchkeeper.db-wal",
                      "watchkeeper.db-shm"):
            (self.dir / stale).unlink(missing_ok=True)
        for sub in ("config", "data"):
            shutil.rmtree(self.dir / sub, ignore_errors=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        (self.dir / "changes.jsonl").touch()
        (self.dir / "faults.jsonl").touch()
        topology = {"services": names, "edges": [list(e) for e in edges]}
        (self.dir / "topology.json").write_text(json.dumps(topology, indent=2), encoding="utf-8")
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        deps = {n: [callee for caller, callee in edges if caller == n] for n in names}
        state: dict[str, Any] = {"started_at": now_iso(), "capacity_mb": capacity_mb, "services": {}, "loadgen": {}}
        if signals:  # the services need the server's address and token before they start
            state["watchkeeper"] = self._watchkeeper_entry(serve_port)
            otlp_endpoint = state["watchkeeper"]["url"]
        state["otlp"] = {"endpoint": otlp_endpoint, "watchkeeper_token": signals,
                         "logs": (not signals) if otlp_logs is None else bool(otlp_logs)}
        try:
            for name in names:
                svc.write_config(self.dir, name, dict(svc.BASELINE))
                pid = self._spawn_service(name, ports[name], {d: [f"http://{HOST}:{ports[d]}"] for d in deps[name]},
                                          capacity_mb, state)
                state["services"][name] = {"port": ports[name], "pid": pid, "deps": deps[name], "version": "v1",
                                           "instances": [{"port": ports[name], "pid": pid}]}
            self._save(state)
            self._wait_healthy([f"http://{HOST}:{ports[n]}" for n in names])
            entry = names[0]
            pid = self._spawn([self.python, "-m", "watchkeeper.lab.loadgen", "--url", f"http://{HOST}:{ports[entry]}",
                               "--rps", str(rps), "--item-share", str(item_share),
                               "--log", str(self.dir / "logs" / "loadgen.log")], "loadgen")
            state["loadgen"] = {"pid": pid, "rps": float(rps), "target": entry}
            self._save(state)
            self.runbooks_dir  # noqa: B018 (writes the runnable runbooks)
            if monitoring:
                self._start_monitoring(state, topology, serve_port, signals=signals)
        except BaseException:
            self.down()
            raise
        return state

    @property
    def settings_file(self) -> Path:
        """``watchkeeper.yaml``: what ``watchkeeper serve --config`` needs to watch this lab."""
        return self.dir / "watchkeeper.yaml"

    def _watchkeeper_entry(self, serve_port: int | None) -> dict[str, Any]:
        """The lab's Watchkeeper: its URL (a free port unless given) and an ingest token for the lab's
        senders, created in the lab's Watchkeeper database."""
        from watchkeeper.service import Role, Watchkeeper
        from watchkeeper.settings import Settings

        port = serve_port or free_ports(1)[0]
        service = Watchkeeper(Settings(database_url=f"sqlite:///{self.dir / 'watchkeeper.db'}"), metrics=False)
        try:
            service.upgrade()
            token = service.create_token(Role.INGEST, "lab", "lab")
        finally:
            service.close()
        return {"url": f"http://{HOST}:{port}", "ingest_token": token, "config": str(self.settings_file)}

    def _start_monitoring(self, state: dict[str, Any], topology: dict[str, Any], serve_port: int | None,
                          signals: bool = False) -> None:
        """Prometheus + Alertmanager for the lab (when installed), an ingest token for them in the lab's
        Watchkeeper database, and ``watchkeeper.yaml``."""
        from watchkeeper.lab import prometheus, serve_config

        if "watchkeeper" not in state:
            state["watchkeeper"] = self._watchkeeper_entry(serve_port)
        url, token = state["watchkeeper"]["url"], state["watchkeeper"]["ingest_token"]
        port = int(url.rsplit(":", 1)[1])
        prometheus_url = None
        if prometheus.installed():
            targets = self.dir / "prometheus" / "targets.json"
            self._write_targets(state, targets)
            stack = prometheus.start(self.dir, webhook_url=f"{url}/api/v1/ingest/alertmanager", bearer_token=token,
                                     targets_file=targets.resolve())
            daemons = {}
            for daemon in (stack.prometheus, stack.alertmanager):
                proc = daemon.detach() if daemon is not None else None
                if daemon is not None and proc is not None:
                    _CHILDREN[proc.pid] = proc  # reaped by down()
                    daemons[daemon.name] = {"pid": proc.pid, "port": daemon.port, "url": daemon.url}
            state["monitoring"] = daemons
            prometheus_url = stack.prometheus.url
        else:
            state["monitoring"] = {}
        self._save(state)
        serve_config.write(self.dir, topology, port=port, prometheus_url=prometheus_url, signals=signals)

    def _write_targets(self, state: dict[str, Any], path: Path | None = None) -> None:
        """Prometheus' file_sd targets, so that it follows ``lab scale``."""
        from watchkeeper.lab.serve_config import targets_document

        path = path or self.dir / "prometheus" / "targets.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        instances = {name: [f"{HOST}:{i['port']}" for i in entry["instances"]]
                     for name, entry in state["services"].items()}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(targets_document(instances), indent=2), encoding="utf-8")
        tmp.replace(path)

    def publish_change(self, record: dict[str, Any]) -> bool:
        """Tell the lab's Watchkeeper of a deploy or rollback (``POST /api/v1/ingest/changes``), as a
        delivery pipeline would; best effort: False when nobody is listening."""
        try:
            wk = self.state().get("watchkeeper") or {}
        except LabError:
            return False
        if not wk.get("url"):
            return False
        body = {"service": record["service"], "kind": record.get("kind", ChangeKind.DEPLOY.value),
                "version": record.get("to_version"),
                "at": record["at"], "who": "lab",
                "description": f"{record['kind']} {record.get('from_version')}→{record.get('to_version')}"}
        try:
            request("POST", f"{wk['url']}/api/v1/ingest/changes", body, timeout=2.0,
                    headers={"Authorization": f"Bearer {wk['ingest_token']}"})
        except (OSError, ValueError, http.client.HTTPException):
            return False
        return True

    def down(self) -> list[int]:
        """Stop every process of the lab (whole process groups: SIGTERM, then SIGKILL after 5 s);
        faults still open are ended ``down``. Returns the pids that were running."""
        try:
            state = self.state()
        except LabError:
            return []
        pids = [p for p in _pids(state) if _alive(p)]
        _stop(pids)
        pids += _stop_daemons(state, self.dir)
        for fault in self.open_faults():
            self._end(fault, "down")
        self.state_file.unlink(missing_ok=True)
        return pids

    def status(self) -> dict[str, Any]:
        """Per service: ``up`` (every instance answers /healthz), its instances (port, pid, alive,
        healthy), version and open faults (ground truth); and the load generator."""
        state = self.state()
        open_faults = self.open_faults()
        services: dict[str, Any] = {}
        for name, entry in state["services"].items():
            instances = []
            for inst in entry["instances"]:
                health = get_json(f"http://{HOST}:{inst['port']}/healthz", timeout=1.0)
                instances.append({"port": inst["port"], "pid": inst["pid"], "alive": _alive(int(inst["pid"])),
                                  "healthy": health is not None,
                                  "faults": (health or {}).get("faults", [])})
            services[name] = {
                "up": all(i["healthy"] for i in instances), "port": entry["port"], "pid": entry["pid"],
                "version": svc.read_config(self.dir, name).get("version", "v1"), "instances": instances,
                "faults": [f"{f['fault']} ({f['id']})" for f in open_faults if f["target"] == name],
                "disk_used_bytes": svc.disk_used(svc.data_dir(self.dir, name)),
            }
        loadgen = dict(state.get("loadgen") or {})
        loadgen["alive"] = bool(loadgen.get("pid")) and _alive(int(loadgen["pid"]))
        return {"dir": str(self.dir), "started_at": state["started_at"], "services": services, "loadgen": loadgen}

    # -- faults -----------------------------------------------------------------------------------
    def inject(self, kind: str, target: str, duration_s: float | None = None, **params: Any) -> dict[str, Any]:
        """Inject a fault of ``kind`` into ``target``; returns its ground-truth record (also appended
        to ``faults.jsonl``)."""
        state = self.state()
        if kind not in FAULTS:
            raise LabError(f"unknown fault {kind!r}; the lab's faults are: {', '.join(FAULTS)}")
        entry = self._entry(state, target)
        if duration_s is not None and duration_s <= 0:
            raise LabError("--duration must be positive")
        if kind == "crash" and duration_s is not None:
            raise LabError("a crash has no duration: the service stays down until 'watchkeeper lab restart'")
        if kind == "dependency_outage" and not entry["deps"]:
            callers = ", ".join(n for n, e in state["services"].items() if e["deps"])
            raise LabError(f"{target} has no dependencies to lose; dependency_outage needs one of: {callers}")
        if kind == "edge_delay":
            calling = [n for n, e in state["services"].items() if target in e["deps"]]
            if not calling:
                raise LabError(f"nothing in the lab calls {target}; edge_delay needs a service with callers: "
                               + ", ".join(sorted({d for e in state["services"].values() for d in e["deps"]})))
            params.setdefault("from", calling[0])
            if params["from"] not in calling:
                raise LabError(f"{params['from']!r} does not call {target}; its callers are: {', '.join(calling)}")
        alive = [i for i in entry["instances"] if _alive(int(i["pid"]))]
        if not alive:
            raise LabError(f"{target} is down; restart it first ('watchkeeper lab restart {target}')")
        fid = f"f-{sum(1 for line in _read_jsonl(self.dir / 'faults.jsonl') if 'fault' in line) + 1}"
        started = now_iso()
        detail: dict[str, Any] = {}
        if kind == "crash":
            pids = [int(i["pid"]) for i in alive]
            _kill_groups(pids, signal.SIGKILL)
            detail = {"signal": "SIGKILL", "pids": pids}
        else:
            if kind in CONFIG_FAULTS:
                config = dict(CONFIG_FAULTS[kind])
                if kind == "wrong_value":
                    ratio = params.get("ratio", 1.0)
                    if not isinstance(ratio, int | float) or not 0 < ratio <= 1:
                        raise LabError(f"wrong_value: ratio must be a number in (0, 1], not {ratio!r}")
                    config["wrong_value"] = float(ratio)
                old = str(svc.read_config(self.dir, target).get("version", "v1"))
                svc.write_config(self.dir, target, config)
                change = {"at": started, "service": target, "kind": ChangeKind.DEPLOY.value, "from_version": old,
                          "to_version": config["version"]}
                append_line(self.dir / "changes.jsonl", change)
                self.publish_change(change)
                self._save(state)
                detail = {"from_version": old, "to_version": config["version"],
                          **{k: config[k] for k in ("error_ratio", "wrong_value") if config.get(k)}}
            if kind == "dependency_outage":
                detail = {"dependencies": list(entry["deps"]), "calls_go_to": svc.REFUSED_URL}
            body = {"kind": kind, "id": fid, "duration_s": duration_s, **params}
            for n, inst in enumerate(alive):
                reply = self._admin("POST", int(inst["port"]), body | {"journal": n == 0})
                if n == 0:
                    detail = {**reply.get("params", {}), **detail}
            if kind == "disk_fill":
                detail["capacity_bytes"] = int(float(state.get("capacity_mb", 50.0)) * svc.MB)
        record = {"id": fid, "fault": kind, "target": target, "started_at": started, "duration_s": duration_s,
                  "ended_at": None, "detail": detail}
        append_line(self.dir / "faults.jsonl", record)
        return record

    # -- remediation --------------------------------------------------------------------------------
    def restart(self, name: str) -> dict[str, Any]:
        """Restart every instance of ``name`` on its port (SIGTERM its process group, SIGKILL after
        5 s, start it again, wait for /healthz). Ends crash, hang, error_burst, cpu_hog, memory_leak
        dependency_outage, exception and edge_delay; not disk_fill (the files stay) nor bad_deploy and
        wrong_value (the configuration stays)."""
        state = self.state()
        entry = self._entry(state, name)
        _stop([int(i["pid"]) for i in entry["instances"] if _alive(int(i["pid"]))])
        capacity = float(state.get("capacity_mb", 50.0))
        for inst in entry["instances"]:
            inst["pid"] = self._spawn_service(name, int(inst["port"]), self._dep_urls(state, name), capacity, state)
        self._save(state)
        self._wait_healthy([f"http://{HOST}:{i['port']}" for i in entry["instances"]])
        return {"service": name, "pids": [i["pid"] for i in entry["instances"]],
                "ended": self._end_all(name, "restart")}

    def scale(self, name: str) -> dict[str, Any]:
        """Start one more instance of ``name`` on a new port; its callers spread their calls over
        every instance (they follow lab.json). Ends hang and cpu_hog (saturation) on the others."""
        state = self.state()
        entry = self._entry(state, name)
        if len(entry["instances"]) >= MAX_INSTANCES:
            raise LabError(f"{name} already runs {len(entry['instances'])} instances (the lab's limit)")
        port = free_ports(1)[0]
        pid = self._spawn_service(name, port, self._dep_urls(state, name), float(state.get("capacity_mb", 50.0)),
                                  state)
        try:
            self._wait_healthy([f"http://{HOST}:{port}"])
        except LabError:
            _stop([pid])
            raise
        entry["instances"].append({"port": port, "pid": pid})
        self._save(state)
        for fault in self.open_faults(name):
            if fault["fault"] in ENDS["scale"]:
                self._clear_in_process(entry, fault["fault"])
        return {"service": name, "instance": {"port": port, "pid": pid}, "instances": len(entry["instances"]),
                "ended": self._end_all(name, "scale")}

    def clear_tmp(self, name: str) -> dict[str, Any]:
        """Stop any disk filler and delete the files in ``name``'s data directory. Ends disk_fill."""
        state = self.state()
        entry = self._entry(state, name)
        self._clear_in_process(entry, "disk_fill")
        data = svc.data_dir(self.dir, name)
        freed = svc.disk_used(data)
        if data.exists():
            for path in data.iterdir():
                if path.is_file() or path.is_symlink():
                    path.unlink(missing_ok=True)
                elif path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
        return {"service": name, "freed_bytes": freed, "ended": self._end_all(name, "clear")}

    def rollback(self, name: str) -> dict[str, Any]:
        """Put ``name``'s configuration back to the baseline (v1) and have its instances reload it;
        a ``rollback`` change event is written when the version changes. Ends bad_deploy and wrong_value."""
        state = self.state()
        entry = self._entry(state, name)
        old = str(svc.read_config(self.dir, name).get("version", "v1"))
        svc.write_config(self.dir, name, dict(svc.BASELINE))
        if old != svc.BASELINE["version"]:
            change = {"at": now_iso(), "service": name, "kind": ChangeKind.ROLLBACK.value, "from_version": old,
                      "to_version": svc.BASELINE["version"]}
            append_line(self.dir / "changes.jsonl", change)
            self.publish_change(change)
        self._save(state)
        for kind in CONFIG_FAULTS:
            self._clear_in_process(entry, kind)  # reloads the configuration
        return {"service": name, "from_version": old, "to_version": svc.BASELINE["version"],
                "ended": self._end_all(name, "rollback")}

    def repair(self, name: str) -> list[str]:
        """Whatever it takes to bring ``name`` back: rollback, clear-tmp and restart as its open faults
        and state need. Returns the remediations run, in order."""
        state = self.state()
        entry = self._entry(state, name)
        kinds = {f["fault"] for f in self.open_faults(name)}
        done = []
        if kinds & ENDS["rollback"] or svc.read_config(self.dir, name).get("version") != svc.BASELINE["version"]:
            self.rollback(name)
            done.append("rollback")
        if "disk_fill" in kinds:
            self.clear_tmp(name)
            done.append("clear-tmp")
        dead = any(not _alive(int(i["pid"])) for i in entry["instances"])
        if dead or kinds & ENDS["restart"]:
            self.restart(name)
            done.append("restart")
        return done

    def check(self, name: str, probes: int = 3) -> list[str]:
        """What is still wrong with ``name`` (empty when healthy). Runbooks verify with it.

        For ``name`` and every service it depends on (transitively, so a remediation aimed at the
        wrong service of a cascade does not pass): an instance not answering /healthz, an active
        fault, a data directory ≥ 90 % full, a configuration other than the baseline. Then the
        symptom itself: ``probes`` calls of ``GET /`` on ``name`` must all answer below 500."""
        state = self.state()
        self._entry(state, name)
        problems: list[str] = []
        for service in _closure(state, name):
            problems += self._problems(state, service)
        if problems:
            return problems
        url = f"http://{HOST}:{state['services'][name]['port']}/"
        for _ in range(probes):
            try:
                status, _body = request("GET", url, timeout=10.0)
            except (OSError, http.client.HTTPException) as exc:
                return [f"GET / on {name} failed: {exc}"]
            if status >= 500:
                return [f"GET / on {name} still answers {status}"]
        return []

    def _problems(self, state: dict[str, Any], name: str) -> list[str]:
        entry = state["services"][name]
        problems = []
        for inst in entry["instances"]:
            health = get_json(f"http://{HOST}:{inst['port']}/healthz", timeout=2.0)
            if health is None:
                problems.append(f"{name} on port {inst['port']} does not answer /healthz")
            elif health.get("faults"):
                problems.append(f"{name} on port {inst['port']} has active faults: {', '.join(health['faults'])}")
        used = svc.disk_used(svc.data_dir(self.dir, name))
        capacity = float(state.get("capacity_mb", 50.0)) * svc.MB
        if used >= 0.9 * capacity:
            problems.append(f"{name}'s data directory is {used / capacity:.0%} full")
        version = svc.read_config(self.dir, name).get("version")
        if version != svc.BASELINE["version"]:
            problems.append(f"{name} runs configuration {version}, not {svc.BASELINE['version']}")
        return problems

    # -- helpers ------------------------------------------------------------------------------------
    def _entry(self, state: dict[str, Any], name: str) -> dict[str, Any]:
        services = state["services"]
        if name not in services:
            raise LabError(f"unknown service {name!r}; the lab's services are: {', '.join(services)}")
        entry: dict[str, Any] = services[name]  # the live entry: callers update it and save the state
        return entry

    def _dep_urls(self, state: dict[str, Any], name: str) -> dict[str, list[str]]:
        return {d: [f"http://{HOST}:{i['port']}" for i in state["services"][d]["instances"]]
                for d in state["services"][name]["deps"]}

    def _spawn_service(self, name: str, port: int, deps: dict[str, list[str]], capacity_mb: float,
                       state: dict[str, Any] | None = None) -> int:
        argv = [self.python, "-m", "watchkeeper.lab.service", "--name", name, "--port", str(port),
                "--dir", str(self.dir), "--capacity-mb", f"{capacity_mb:g}"]
        if deps:
            argv += ["--deps", *[f"{d}={','.join(urls)}" for d, urls in deps.items()]]
        otlp = (state or {}).get("otlp") or {}
        env = None
        if otlp.get("endpoint"):
            argv += ["--otlp-endpoint", str(otlp["endpoint"])]
            if not otlp.get("logs", True):
                argv.append("--no-otlp-logs")
            token = ((state or {}).get("watchkeeper") or {}).get("ingest_token")
            if otlp.get("watchkeeper_token") and token:  # in the environment, not on the command line
                from watchkeeper.lab.otel import ENV_HEADERS, auth_headers

                env = dict(os.environ) | {ENV_HEADERS: auth_headers(str(token))}
        return self._spawn(argv, name, env)

    def _spawn(self, argv: list[str], name: str, env: dict[str, str] | None = None) -> int:
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        with open(self.dir / "logs" / f"{name}.out", "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True, env=env)
        _CHILDREN[proc.pid] = proc
        return proc.pid

    def _wait_healthy(self, urls: Sequence[str], timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(urls)
        while waiting:
            waiting = [u for u in waiting if get_json(u + "/healthz", timeout=1.0) is None]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise LabError(f"not healthy after {timeout:g}s: {', '.join(waiting)} (see {self.dir / 'logs'})")
            time.sleep(0.05)

    def _admin(self, method: str, port: int, body: dict[str, Any] | None = None, query: str = "") -> dict[str, Any]:
        url = f"http://{HOST}:{port}/admin/fault" + (f"?{query}" if query else "")
        try:
            status, data = request(method, url, body, timeout=5.0)
        except (OSError, http.client.HTTPException) as exc:
            raise LabError(f"the service on port {port} did not take the request: {exc}") from exc
        reply = json.loads(data or b"{}")
        if status != 200:
            raise LabError(f"the service on port {port} refused: {reply.get('error', status)}")
        return dict(reply)

    def _clear_in_process(self, entry: dict[str, Any], kind: str) -> None:
        for inst in entry["instances"]:
            if _alive(int(inst["pid"])):
                with contextlib.suppress(LabError):
                    self._admin("DELETE", int(inst["port"]), query=f"kind={kind}")

    def _end(self, fault: dict[str, Any], by: str) -> dict[str, Any]:
        line = {"id": fault["id"], "ended_at": now_iso(), "ended_by": by}
        append_line(self.dir / "faults.jsonl", line)
        return line

    def _end_all(self, name: str, remediation: str) -> list[str]:
        ended = []
        for fault in self.open_faults(name):
            if fault["fault"] in ENDS[remediation]:
                self._end(fault, remediation)
                ended.append(str(fault["id"]))
        return ended


# -- runbooks ---------------------------------------------------------------------------------------
def shipped_runbooks() -> dict[str, str]:
    """File name → text of the runbooks shipped in ``watchkeeper/lab/runbooks``."""
    root = resources.files("watchkeeper.lab") / "runbooks"
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(root.iterdir(), key=lambda p: p.name)
            if p.name.endswith((".yaml", ".yml"))}


def localize(text: str, python: str, directory: Path) -> str:
    """Make a shipped runbook runnable for one lab: ``watchkeeper lab`` becomes this Python's
    ``-m watchkeeper.lab.cli`` and ``--dir .watchkeeper-lab`` names the lab's directory.

    >>> localize("argv: [watchkeeper, lab, restart, --dir, .watchkeeper-lab, --, x]", "/v/bin/python", Path("/l"))
    'argv: ["/v/bin/python", -m, watchkeeper.lab.cli, restart, --dir, "/l", --, x]'
    """
    return (text.replace("[watchkeeper, lab,", f"[{json.dumps(python)}, -m, watchkeeper.lab.cli,")
            .replace("--dir, .watchkeeper-lab,", f"--dir, {json.dumps(str(directory))},"))


# -- processes --------------------------------------------------------------------------------------
def _pids(state: dict[str, Any]) -> list[int]:
    pids = [int(i["pid"]) for e in state.get("services", {}).values() for i in e.get("instances", [])]
    if (state.get("loadgen") or {}).get("pid"):
        pids.append(int(state["loadgen"]["pid"]))
    return pids


def _stop_daemons(state: dict[str, Any], directory: Path) -> list[int]:
    """Stop the lab's Prometheus and Alertmanager (recognised by their command line naming the lab's
    directory, so a reused pid is never signalled)."""
    stopped = []
    for daemon in (state.get("monitoring") or {}).values():
        pid = int(daemon["pid"])
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if str(directory).encode() not in f.read():
                    continue
        except OSError:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        proc = _CHILDREN.pop(pid, None)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and (proc.poll() is None if proc else Path(f"/proc/{pid}").exists()):
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        if proc is not None:
            proc.wait()
        stopped.append(pid)
    return stopped


def _reap() -> None:
    """Collect the exit status of every lab process this process started that has ended (a
    remediation run from the command line may have replaced it)."""
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[pid]


def _alive(pid: int) -> bool:
    """Is ``pid`` a running lab process? A zombie is not, nor a process that reused the pid of a
    lab process long gone (its command line must name a ``watchkeeper.lab`` module)."""
    _reap()
    if pid in _CHILDREN:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as b:
            return b"watchkeeper.lab." in b.read()
    except (OSError, IndexError):
        return False


def _kill_groups(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)  # each lab process leads its own group (start_new_session)
    for pid in pids:
        with contextlib.suppress(subprocess.TimeoutExpired):
            if pid in _CHILDREN:
                _CHILDREN[pid].wait(timeout=2.0)


def _stop(pids: Sequence[int], grace: float = 5.0) -> None:
    """SIGTERM each process group, SIGKILL what is left after ``grace`` seconds; wait until gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    left = [p for p in pids if _alive(p)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


def _closure(state: dict[str, Any], name: str) -> list[str]:
    """``name`` and every service it depends on, directly or not, in breadth-first order."""
    order, queue = [name], [name]
    while queue:
        for dep in state["services"][queue.pop(0)]["deps"]:
            if dep not in order:
                order.append(dep)
                queue.append(dep)
    return order


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                if isinstance(item, dict):
                    out.append(item)
    return out
