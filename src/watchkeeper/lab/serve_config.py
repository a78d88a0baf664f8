"""``<lab dir>/watchkeeper.yaml``: everything Watchkeeper needs to watch the lab, as a user would
configure it for their own services — the lab's Prometheus, one watch per derived signal (PromQL,
harmful direction, floor), the service graph, the runbooks, the correlation settings and the RCA
windows. ``watchkeeper serve --config <lab dir>/watchkeeper.yaml`` runs the whole loop on it; no
lab knowledge lives in the core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from watchkeeper.lab.prometheus import JOB
from watchkeeper.rca.calibration import LAB_CALIBRATION_FILE

MB = 1024 * 1024
#: The lab's confidence model, copied into the lab directory.
CALIBRATION_NAME = "rca-calibration.json"


@dataclass(frozen=True, slots=True)
class LabWatch:
    """One lab signal: its PromQL (per service), the harmful side, and the smallest deviation
    that counts (2 ms more latency or one error in a thousand is not an anomaly)."""

    name: str
    query: str
    direction: str
    floor: float


def lab_watches(job: str = JOB, window: str = "10s") -> tuple[LabWatch, ...]:
    """The signals the lab's RCA reads (traffic volume is left out: it moves with the load generator,
    not with a fault)."""
    sel = f'job="{job}"'
    return (
        # "or … * 0": a service without any 5xx has no such series; its ratio is 0, not missing
        LabWatch("error_ratio", f'(sum by (service) (rate(lab_requests_total{{{sel},status=~"5.."}}[{window}]))'
                 f" or sum by (service) (rate(lab_requests_total{{{sel}}}[{window}])) * 0)"
                 f" / sum by (service) (rate(lab_requests_total{{{sel}}}[{window}]))", "up", 0.02),
        LabWatch("latency_p90_s", "histogram_quantile(0.9, sum by (service, le) "
                 f"(rate(lab_request_duration_seconds_bucket{{{sel}}}[{window}])))", "up", 0.1),
        LabWatch("cpu_rate", f"max by (service) (rate(process_cpu_seconds_total{{{sel}}}[{window}]))", "up", 0.15),
        LabWatch("rss_bytes", f"max by (service) (process_resident_memory_bytes{{{sel}}})", "up", 32.0 * MB),
        LabWatch("disk_used_ratio", f"max by (service) (lab_disk_used_bytes{{{sel}}} / lab_disk_capacity_bytes"
                 f"{{{sel}}})", "up", 0.05),
        LabWatch("dependency_error_rate", f"sum by (service) (rate(lab_dependency_errors_total{{{sel}}}[{window}]))",
                 "up", 1.0),
        # up is 0 or 1, so any floor below 1 detects the same; a small one keeps a crash (1 → 0) as
        # strong as evidence for the ranker as 100 % errors (the floor sets the scale a deviation is
        # measured in), above the callers that relay part of its failures
        LabWatch("up", f"min by (service) (up{{{sel}}})", "down", 0.03),
    )


def correlation_yaml(topology: Mapping[str, Any], window_s: int = 300, flap_window_s: int = 60) -> str:
    """The correlation config for the lab: a service's alerts group, and so do alerts on services
    within two hops of each other in the lab's dependency graph. The lab compresses time — a fault
    every half minute, and the front end's alerts fire and clear with each — so "flapping" is judged
    over one minute (6 state changes: firing and clearing three times), not the production default of
    4 in ten.

    >>> print(correlation_yaml({"edges": [["a", "b"]]}).splitlines()[-1])
          a: [b]
    """
    graph: dict[str, list[str]] = {}
    for caller, callee in topology["edges"]:
        graph.setdefault(caller, []).append(callee)
    lines = [f"window: {window_s}s", "flapping:", "  transitions: 6", f"  window: {flap_window_s}s",
             "strategies:", "  - type: labels", "    group_by: [service]",
             "  - type: topology", "    hops: 2", "    graph:"]
    lines += [f"      {caller}: [{', '.join(callees)}]" for caller, callees in sorted(graph.items())]
    return "\n".join(lines) + "\n"


def settings_document(
    directory: Path, topology: Mapping[str, Any], *, port: int, prometheus_url: str | None,
    interval: float = 2.0, runbooks: bool = True, signals: bool = False,
) -> dict[str, Any]:
    """The settings YAML for the lab in ``directory`` (paths relative to it). ``signals`` adds the
    logs and traces the lab's services emit: ``logs: {files: [{path, service}]}`` (one file-tail
    input per service's JSON log) and ``traces: {enabled: true}`` (the services export OTLP to this
    server's ``POST /v1/traces``); off by default until the server reads both."""
    depends: dict[str, list[str]] = {str(s): [] for s in topology["services"]}
    for caller, callee in topology["edges"]:
        depends[str(caller)].append(str(callee))
    doc: dict[str, Any] = {
        "database_url": f"sqlite:///{(directory / 'watchkeeper.db').resolve()}",
        "host": "127.0.0.1",
        "port": port,
        "correlation_config": "correlation.yaml",
        "responder_interval_seconds": 0.5,
    }
    if runbooks:
        doc["runbooks_dir"] = "runbooks"
    if prometheus_url is not None:
        doc["watch"] = {
            "prometheus": [{"name": "lab", "url": prometheus_url, "timeout": "5s"}],
            "watches": [
                {"name": w.name, "query": w.query, "service_label": "service", "direction": w.direction,
                 "floor": w.floor, "detector": "robust",
                 # the lab runs for minutes: no season, a short window, a quick warm-up
                 "options": {"window": 32, "season": "none", "warmup": 10},
                 "severity": "warning", "interval": f"{interval:g}s"}
                for w in lab_watches()
            ],
        }
    doc["topology"] = {"services": {s: {"depends_on": d} for s, d in sorted(depends.items())}}
    if signals:
        doc.update(signals_document(directory, [str(s) for s in topology["services"]]))
    # Faults come every half minute and the lab has minutes of history: short windows.
    doc["rca"] = {"window": "60s", "reference": "5m", "delay": f"{interval:g}s", "rerank": f"{interval:g}s",
                  # the confidence model fitted on a recorded lab campaign (as a user would fit theirs
                  # with 'watchkeeper rca calibrate'); written next to this file by write()
                  "calibration": CALIBRATION_NAME}
    return doc


def signals_document(directory: Path, services: Sequence[str]) -> dict[str, Any]:
    """The ``logs:`` and ``traces:`` sections for the lab's services (absolute log paths: the file-tail
    input follows them wherever the server runs).

    >>> doc = signals_document(Path("/lab"), ["api"])
    >>> doc["logs"]["files"], doc["traces"]
    ([{'path': '/lab/logs/api.log', 'service': 'api'}], {'enabled': True})
    """
    logs = directory.absolute() / "logs"
    return {"logs": {"files": [{"path": str(logs / f"{s}.log"), "service": s} for s in services]},
            "traces": {"enabled": True}}


def write(
    directory: Path, topology: Mapping[str, Any], *, port: int, prometheus_url: str | None,
    interval: float = 2.0, name: str = "watchkeeper.yaml", runbooks: bool = True, signals: bool = False,
) -> Path:
    """Write ``correlation.yaml`` and the settings file into ``directory``; return the settings' path."""
    (directory / "correlation.yaml").write_text(correlation_yaml(topology), encoding="utf-8")
    (directory / CALIBRATION_NAME).write_text(LAB_CALIBRATION_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    doc = settings_document(directory, topology, port=port, prometheus_url=prometheus_url, interval=interval,
                            runbooks=runbooks, signals=signals)
    path = directory / name
    header = (f"# Written by 'watchkeeper lab up' for the lab in {directory}.\n"
              f"# Run: watchkeeper serve --config {path}\n")
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=200), encoding="utf-8")
    return path


def targets_document(instances: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """Prometheus ``file_sd`` targets: each service's instances, labelled ``service`` (rewritten by
    the lab whenever an instance is added, so Prometheus follows ``lab scale``)."""
    return [{"targets": list(t), "labels": {"service": s}} for s, t in sorted(instances.items())]
