from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from fixtures.alertmanager import am_alert, am_webhook
from watchkeeper.errors import InputError
from watchkeeper.eval.correlation import groupkey_clusters, incident_clusters, one_per_alert, read_truth, score
from watchkeeper.eval.correlation_cli import app
from watchkeeper.sources import registry

TRUTH = {"a": "g1", "b": "g1", "c": "g2", "d": "g2"}

# (clusters, precision, recall, f1, purity, inverse purity, compression), computed by hand:
CASES = [
    # perfect: 2 predicted pairs (ab, cd), both true; 2 true pairs
    ([["a", "b"], ["c", "d"]], 1.0, 1.0, 1.0, 1.0, 1.0, 0.5),
    # everything in one: 6 predicted pairs, 2 correct; purity 2/4; inverse 4/4
    ([["a", "b", "c", "d"]], 2 / 6, 1.0, 0.5, 0.5, 1.0, 0.75),
    # singletons: no predicted pair -> precision undefined, recall 0
    ([["a"], ["b"], ["c"], ["d"]], None, 0.0, None, 1.0, 0.5, 0.0),
    # abc + d: pairs ab ac bc (1 correct); true ab, cd; purity (2+1)/4; inverse (2+1)/4
    ([["a", "b", "c"], ["d"]], 1 / 3, 0.5, 0.4, 0.75, 0.75, 0.5),
    # a in two incidents: 4 memberships (a,b | a,c)
    # predicted ab, ac (1 correct); true pairs: a-b, a'-b, a-a' (group g1 has a,b,a' -> 3), none in g2 (c alone)
    ([["a", "b"], ["a", "c"]], 0.5, 1 / 3, 0.4, 0.75, 0.75, 0.5),
]


@pytest.mark.parametrize(("clusters", "precision", "recall", "f1", "purity", "inverse", "compression"), CASES)
def test_scores_by_hand(clusters: list[list[str]], precision: float | None, recall: float, f1: float | None,
                        purity: float, inverse: float, compression: float) -> None:
    s = score("x", clusters, TRUTH)
    assert s.precision == pytest.approx(precision)
    assert s.recall == pytest.approx(recall)
    assert s.f1 == pytest.approx(f1)
    assert s.purity == pytest.approx(purity)
    assert s.inverse_purity == pytest.approx(inverse)
    assert s.compression == pytest.approx(compression)


def test_repeated_fingerprint_in_one_incident_counts_once() -> None:
    assert score("x", [["a", "a", "b"]], TRUTH).alerts == 2


def test_unlabelled_singleton_or_drop() -> None:
    singleton = score("x", [["a", "b", "z"]], TRUTH)
    assert (singleton.alerts, singleton.precision, singleton.unlabelled) == (3, pytest.approx(1 / 3), 1)
    dropped = score("x", [["a", "b", "z"]], TRUTH, unlabelled="drop")
    assert (dropped.alerts, dropped.precision, dropped.unlabelled) == (2, 1.0, 1)
    with pytest.raises(ValueError, match="unlabelled"):
        score("x", [], TRUTH, unlabelled="keep")


def test_empty() -> None:
    s = score("x", [], TRUTH)
    assert (s.alerts, s.incidents, s.compression, s.precision, s.recall, s.purity) == (0, 0, None, None, None, None)


def test_one_per_alert() -> None:
    assert one_per_alert([["a", "b"], ["b", "c"]]) == [["a"], ["b"], ["c"]]


def test_read_truth_formats() -> None:
    assert read_truth(b'{"a": "g", "b": 2}') == {"a": "g", "b": 2}
    assert read_truth(b'{"fingerprint": "a", "group": "g"}\n\n{"fingerprint": "b", "group": "g"}') == {
        "a": "g", "b": "g"}
    assert read_truth(b'{"fingerprint": "a", "group": "g"}') == {"a": "g"}
    with pytest.raises(InputError, match="line 2"):
        read_truth(b'{"fingerprint": "a", "group": "g"}\n{"fp": "b"}')
    with pytest.raises(InputError, match="string or a number"):
        read_truth(b'{"a": [1]}')


def test_incident_clusters_rejects_other_lines() -> None:
    with pytest.raises(InputError, match="line 1"):
        incident_clusters([b'{"id": 1}'])


def test_groupkey_clusters() -> None:
    first = am_webhook(am_alert("Disk", "db", fingerprint="fa"), am_alert("Disk", "db", fingerprint="fb"))
    second = am_webhook(am_alert("Cpu", "db", fingerprint="fc"))
    lines = [orjson.dumps(p) for p in (first, second)] + [b"not json", b'{"events": []}']
    assert groupkey_clusters(lines, registry(plugins=False)) == [["fa", "fb"], ["fc"]]
    assert groupkey_clusters([b'{"x": 1}'], registry(plugins=False)) is None


def test_cli_table_and_json(tmp_path: Path) -> None:
    incidents = tmp_path / "incidents.jsonl"
    incidents.write_bytes(b"\n".join(orjson.dumps({"id": i, "alerts": [{"fingerprint": f} for f in c]})
                                     for i, c in enumerate([["fa", "fb"], ["fc"]], start=1)))
    truth = tmp_path / "truth.json"
    truth.write_bytes(orjson.dumps({"fa": "disk", "fb": "disk", "fc": "disk"}))
    payloads = tmp_path / "payloads.jsonl"
    payloads.write_bytes(b"\n".join(orjson.dumps(am_webhook(am_alert("Disk", "db", fingerprint=f)))
                                    for f in ("fa", "fb", "fc")))
    runner = CliRunner()
    result = runner.invoke(app, ["correlation", str(incidents), str(truth), "--payloads", str(payloads), "--json"])
    assert result.exit_code == 0, result.output
    data = orjson.loads(result.stdout)
    by_name = {g["name"]: g for g in data["groupings"]}
    assert by_name["watchkeeper"]["precision"] == 1.0
    assert by_name["watchkeeper"]["recall"] == pytest.approx(1 / 3)
    assert by_name["one incident per alert"]["incidents"] == 3
    assert by_name["one incident per Alertmanager group"]["recall"] == 1.0
    table = runner.invoke(app, ["correlation", str(incidents), str(truth)])
    assert table.exit_code == 0, table.output
    assert "Correlation vs ground truth" in table.stdout
    assert "0.3" in table.stdout


def test_cli_replays_payloads_itself(tmp_path: Path) -> None:
    """`eval correlation PAYLOADS TRUTH`: webhook bodies are replayed with the same pipeline."""
    import orjson as _orjson
    from typer.testing import CliRunner

    from watchkeeper.eval.correlation_cli import app

    def body(name: str, service: str, fp: str, at: str) -> bytes:
        alert = {"status": "firing", "labels": {"alertname": name, "service": service}, "annotations": {},
                 "startsAt": at, "endsAt": "0001-01-01T00:00:00Z", "fingerprint": fp}
        return _orjson.dumps({"version": "4", "status": "firing", "receiver": "wk", "groupKey": f"{{}}:{name}",
                              "alerts": [alert], "received_at": at})

    payloads = tmp_path / "webhooks.jsonl"
    payloads.write_bytes(b"\n".join([body("Down", "db", "a", "2026-11-23T06:00:00Z"),
                                     body("Errors", "web", "b", "2026-11-23T06:00:10Z"),
                                     body("Slow", "db", "c", "2026-11-23T06:00:20Z")]) + b"\n")
    truth = tmp_path / "truth.jsonl"
    truth.write_text('{"fingerprint": "a", "group": 1}\n{"fingerprint": "b", "group": 1}\n'
                     '{"fingerprint": "c", "group": 1}\n')
    config = tmp_path / "correlation.yaml"
    config.write_text("strategies: [{type: labels}, {type: topology, graph: {web: [db]}}]\n")
    plain = CliRunner().invoke(app, ["correlation", str(payloads), str(truth), "--json"])
    assert plain.exit_code == 0, plain.output
    first = _orjson.loads(plain.stdout)["groupings"][0]
    assert (first["alerts"], first["incidents"]) == (3, 2)  # service grouping: db, web
    topo = CliRunner().invoke(app, ["correlation", str(payloads), str(truth), "--json", "--correlation", str(config)])
    assert topo.exit_code == 0, topo.output
    got = _orjson.loads(topo.stdout)["groupings"][0]
    assert (got["incidents"], got["precision"], got["recall"]) == (1, 1.0, 1.0)
    # the ablation: without topology, web's alert is no longer joined to db's incident
    ablation = {row["name"]: row for row in _orjson.loads(topo.stdout)["ablation"]}
    assert set(ablation) == {"without labels", "without topology", "without onset times (lag)",
                             "without onset order (lead)", "without learned lags", "without golden signals",
                             "without splits"}
    assert (ablation["without topology"]["incidents"], ablation["without topology"]["recall"]) == (2, 1 / 3)
    assert ablation["without splits"]["incidents"] == 1
    table = CliRunner().invoke(app, ["correlation", str(payloads), str(truth), "--correlation", str(config)],
                               env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "Ablation" in table.stdout and "without topology" in table.stdout
    skipped = CliRunner().invoke(app, ["correlation", str(payloads), str(truth), "--json", "--no-ablation"])
    assert _orjson.loads(skipped.stdout)["ablation"] == []


def test_cli_shows_each_join_reason_and_how_often_it_was_right(tmp_path: Path) -> None:
    incidents = tmp_path / "incidents.jsonl"
    records = [{"id": 1, "alerts": [{"fingerprint": "a", "reason": "new_incident"},
                                    {"fingerprint": "b", "reason": "mentioned"},
                                    {"fingerprint": "c", "reason": "topology"}]},
               {"id": 2, "alerts": [{"fingerprint": "d", "reason": "new_incident"},
                                    {"fingerprint": "e", "reason": "same_service"}]}]
    incidents.write_bytes(b"\n".join(orjson.dumps(r) for r in records))
    truth = tmp_path / "truth.json"
    truth.write_bytes(orjson.dumps({"a": 1, "b": 1, "c": 2, "d": 3, "e": 3}))
    runner = CliRunner()
    result = runner.invoke(app, ["correlation", str(incidents), str(truth), "--json"])
    assert result.exit_code == 0, result.output
    joins = {j["reason"]: (j["joins"], j["right"], j["precision"]) for j in orjson.loads(result.stdout)["joins"]}
    assert joins == {"mentioned": (1, 1, 1.0), "same_service": (1, 1, 1.0), "topology": (1, 0, 0.0)}
    table = runner.invoke(app, ["correlation", str(incidents), str(truth)], env={"COLUMNS": "160"})
    assert "Joins per reason" in table.stdout and "topology" in table.stdout
