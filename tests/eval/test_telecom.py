import random
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from watchkeeper.correlate.cooccurrence import CoOccurrence
from watchkeeper.eval import telecom
from watchkeeper.eval.correlation_cli import app

TRUTH = np.array([[0, 1, 1], [0, 0, 0], [0, 0, 0]], dtype=bool)  # 0→1, 0→2


@pytest.mark.parametrize(("learned", "directed", "precision", "recall", "f1"), [
    ([[0, 1, 1], [0, 0, 0], [0, 0, 0]], True, 1.0, 1.0, 1.0),
    ([[0, 1, 0], [0, 0, 0], [1, 0, 0]], True, 0.5, 0.5, 0.5),     # 2→0 is reversed
    ([[0, 1, 0], [0, 0, 0], [1, 0, 0]], False, 1.0, 1.0, 1.0),
    ([[1, 0, 0], [0, 0, 1], [0, 0, 0]], True, 0.0, 0.0, 0.0),     # the diagonal is ignored
    ([[0, 0, 0], [0, 0, 0], [0, 0, 0]], True, 0.0, 0.0, 0.0),
])
def test_graph_scores(learned: list[list[int]], directed: bool, precision: float, recall: float, f1: float) -> None:
    s = telecom.graph_scores(np.array(learned, dtype=bool), TRUTH, directed=directed)
    assert (s.precision, s.recall, s.f1) == (pytest.approx(precision), pytest.approx(recall), pytest.approx(f1))


def write_set(root: Path) -> None:
    """Type 0 on device 0, then type 1 on the adjacent device 1 8 s later; type 2 independent."""
    rng = random.Random(3)
    rows = []
    for _ in range(150):
        t = rng.randrange(0, 100_000)
        rows += [(0, 0, t, t), (1, 1, t + 8, t + 8), (2, rng.randrange(2), rng.randrange(0, 100_000), 0)]
    root.mkdir()
    (root / "Alarm.csv").write_text("alarm_id,device_id,start_timestamp,end_timestamp\n"
                                    + "".join(f"{a},{d},{s},{e}\n" for a, d, s, e in rows))
    (root / "DAG.csv").write_text("0,1,0\n0,0,0\n0,0,0\n")
    (root / "Topology.csv").write_text("0,1\n1,0\n")


def test_learn_graph_uses_topology(tmp_path: Path) -> None:
    write_set(tmp_path / "toy")
    data = telecom.load(tmp_path / "toy")
    graph = telecom.learn_graph(data, CoOccurrence(window_s=30))
    assert graph.astype(int).tolist() == [[0, 1, 0], [0, 0, 0], [0, 0, 0]]
    assert not telecom.learn_graph(data, CoOccurrence(window_s=30), use_topology=False).any()


def test_cli_telecom(tmp_path: Path) -> None:
    write_set(tmp_path / "toy")
    result = CliRunner().invoke(app, ["telecom", str(tmp_path / "toy"), "--window", "30", "--json"])
    assert result.exit_code == 0, result.output
    assert '"f1":1.0' in result.stdout
    table = CliRunner().invoke(app, ["telecom", str(tmp_path / "toy"), "--window", "30"])
    assert table.exit_code == 0, table.output
    assert "optimistic" in table.stdout
