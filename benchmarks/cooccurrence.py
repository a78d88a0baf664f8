"""Learning time of CoOccurrence on a PCIC 2021 alarm set (default: 24V_439N_Microwave, 64,598 alarms).

    .venv/bin/python benchmarks/cooccurrence.py [DIR]

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from watchkeeper.correlate.cooccurrence import CoOccurrence
from watchkeeper.eval import telecom

DEFAULT = Path("/work/shared/data/telecom_alarms/24V_439N_Microwave")


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    data = telecom.load(root)
    print(f"{data.name}: {len(data.kinds):,} alarms, {data.n_types} types, {int(data.devices.max()) + 1} devices")
    for hops, use_topology in ((0, False), (1, True), (2, True)):
        runs = []
        for _ in range(3):
            model = CoOccurrence(window_s=120.0, alpha=0.01, min_support=5, hops=hops)
            started = time.perf_counter()
            telecom.learn_graph(data, model, use_topology=use_topology)
            runs.append(time.perf_counter() - started)
        print(f"hops={hops} topology={use_topology}: learn median {statistics.median(runs):.2f} s "
              f"(min {min(runs):.2f}, max {max(runs):.2f}, 3 runs), {len(model.edges())} edges, "
              f"{len(data.kinds) / statistics.median(runs):,.0f} alarms/s")


if __name__ == "__main__":
    main()
