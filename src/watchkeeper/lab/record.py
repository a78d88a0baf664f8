"""The recorded-campaign metrics format: ``metrics/<service>.csv``, one wide row per scrape.

``timestamp,request_rate,error_ratio,latency_p90_s,cpu_rate,rss_bytes,disk_used_ratio,up`` with
``timestamp`` in unix seconds and ``nan`` where a value is missing (a service that is down has
only ``up`` = 0). ``eval rca --format lab`` reads it next to the lab's ``faults.jsonl``,
``topology.json`` and ``changes.jsonl``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

#: The derived per-service metrics, in CSV column order.
COLUMNS = ("request_rate", "error_ratio", "latency_p90_s", "cpu_rate", "rss_bytes", "disk_used_ratio", "up")
HEADER = "timestamp," + ",".join(COLUMNS) + "\n"


def format_row(t: float, values: Mapping[str, float]) -> str:
    """One CSV line; a missing or NaN value is written ``nan``.

    >>> format_row(1700000000.5, {"request_rate": 19.75, "up": 1.0})
    '1700000000.500,19.75,nan,nan,nan,nan,nan,1\\n'
    """
    cells = [f"{t:.3f}"]
    for name in COLUMNS:
        v = values.get(name, math.nan)
        cells.append("nan" if math.isnan(v) else f"{v:.6g}" if name != "rss_bytes" else f"{v:.0f}")
    return ",".join(cells) + "\n"


class Recorder:
    """Append each scrape's derived values to ``<dir>/metrics/<service>.csv`` (header written once).

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> r = Recorder(d)
    >>> r.write(10.0, {"api": {"up": 0.0}})
    >>> print((d / "metrics" / "api.csv").read_text(), end="")
    timestamp,request_rate,error_ratio,latency_p90_s,cpu_rate,rss_bytes,disk_used_ratio,up
    10.000,nan,nan,nan,nan,nan,nan,0
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory) / "metrics"

    def path(self, service: str) -> Path:
        if not service or "/" in service or service.startswith("."):
            raise ValueError(f"not a usable service name for a file: {service!r}")
        return self.directory / f"{service}.csv"

    def write(self, t: float, values: Mapping[str, Mapping[str, float]]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for service, metrics in values.items():
            path = self.path(service)
            new = not path.exists() or path.stat().st_size == 0
            with path.open("a", encoding="utf-8") as fh:
                if new:
                    fh.write(HEADER)
                fh.write(format_row(t, metrics))
