"""Correlation strategies and their configuration, table-driven."""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchkeeper.correlate import CoOccurring, Correlator, LabelGroup, TextTemplate, Topology, template
from watchkeeper.correlate.config import load_config
from watchkeeper.correlate.pipeline_config import PipelineConfig
from watchkeeper.correlate.strategies import template_reference
from watchkeeper.dedup.fingerprint import alert_of
from watchkeeper.errors import ConfigError
from watchkeeper.model import Event, EventKind, Severity, Status
from watchkeeper.pipeline import Pipeline, State
from watchkeeper.service import Watchkeeper

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
GRAPH = {"frontend": ["checkout", "catalog"], "checkout": ["payments-db"], "catalog": ["cache"]}


def ev(fp: str, service: str, at: float, summary: str = "", labels: dict[str, str] | None = None) -> Event:
    when = T0 + timedelta(seconds=at)
    return Event("test", EventKind.ALERT, fp, Status.FIRING, Severity.WARNING, fp, service, "",
                 {"service": service, **(labels or {})}, summary or f"{fp} on {service}", when, None, when)


def groups(strategies: tuple[object, ...], events: list[Event]) -> dict[str, tuple[int, str]]:
    ids = itertools.count(1)
    state = State()
    Pipeline(PipelineConfig(strategies=strategies), lambda: next(ids)).observe_all(events, state)  # type: ignore[arg-type]
    reasons = {m.fingerprint: m.reason for m in state.memberships}
    return {fp: (a.incident_id or 0, reasons[fp]) for fp, a in state.alerts.items()}


STORM = [ev("db", "payments-db", 0), ev("co", "checkout", 20), ev("fe", "frontend", 40),
         ev("cache", "cache", 50), ev("other", "batch", 60)]


@pytest.mark.parametrize(("strategies", "expected"), [
    pytest.param((LabelGroup(),), {"db": 1, "co": 2, "fe": 3, "cache": 4, "other": 5}, id="service-only"),
    pytest.param((LabelGroup(), Topology(GRAPH)), {"db": 1, "co": 1, "fe": 1, "cache": 2, "other": 3}, id="topology-1-hop"),
    # cache reaches the payments-db cascade only through frontend, which checkout already explains:
    # a second origin, kept apart (it used to be merged, through an undirected 3-hop path)
    pytest.param((LabelGroup(), Topology(GRAPH, hops=3)), {"db": 1, "co": 1, "fe": 1, "cache": 2, "other": 3},
                 id="topology-3-hops"),
])
def test_topology_groups_a_cascade(strategies: tuple[object, ...], expected: dict[str, int]) -> None:
    got = groups(strategies, STORM)
    assert {fp: inc for fp, (inc, _) in got.items()} == expected


def test_topology_reason_explains_the_path() -> None:
    got = groups((LabelGroup(), Topology(GRAPH)), STORM)
    assert got["co"][1] == "topology" and got["db"][1] == "new_incident"


def test_label_group_by() -> None:
    events = [ev("a", "web", 0, labels={"cluster": "eu"}), ev("b", "db", 5, labels={"cluster": "eu"}),
              ev("c", "db", 6, labels={"cluster": "us"}), ev("d", "x", 7)]
    got = groups((LabelGroup(["cluster"]),), events)
    assert got["a"][0] == got["b"][0] != got["c"][0]
    assert got["b"][1] == "same_labels" and got["d"][1] == "new_incident"


def test_text_templates() -> None:
    assert template("disk 91% on db-1") == template("disk 97% on db-2") == "disk <*>% on <*>"
    events = [ev("a", "db", 0, "disk 91% on db-1"), ev("b", "db2", 5, "Disk 97% on db-2"),
              ev("c", "db", 6, "replication lag 30s")]
    got = groups((TextTemplate("any"),), events)
    assert got["a"][0] == got["b"][0] != got["c"][0] and got["b"][1] == "similar_text"
    scoped = groups((TextTemplate("service"),), events)
    assert scoped["a"][0] != scoped["b"][0]


@pytest.mark.parametrize("text", [
    "", "   ", "disk 91% on db-1", "connection refused from 10.0.0.7:5432", "id DEADBEEF99 and cafebabe",
    "12.5% of 300", "x\t\n  y", "٣٤% on host-٥", "-5 .7 a-1.b_2 %", "9" * 200, "abcdefgh abcdefg",
    "10.0.0.1.2:80 1.2.3 256.1.1.1", "tab\x1cinfo\u2003here",
])
def test_template_equals_the_plain_masks(text: str) -> None:
    """The fast template (masks that need a digit skipped when none is left) is the plain sequence."""
    assert template.__wrapped__(text) == template_reference(text)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([*"ab9f0Z _.-%:\t\n\x1c\u2003٣xy1", "DEAD", "10.0.0.7"]), max_size=30).map("".join))
def test_template_equals_the_plain_masks_on_any_text(text: str) -> None:
    assert template.__wrapped__(text) == template_reference(text)


CONFIG = """\
window: 2m
strategies:
  - type: labels
    group_by: [service]
  - type: topology
    hops: 1
    graph_file: graph.yaml
"""


def test_config_file(tmp_path: Path) -> None:
    (tmp_path / "graph.yaml").write_text("frontend: [checkout]\n")
    (tmp_path / "correlation.yaml").write_text(CONFIG)
    config = load_config(tmp_path / "correlation.yaml")
    assert config.window == 120.0
    strategies = config.build(tmp_path)
    assert [s.name for s in strategies] == ["labels", "topology"]


@pytest.mark.parametrize(("text", "message"), [
    ("window: soon\n", "correlation.yaml:1: window"),
    ("strategies:\n  - type: magic\n", "correlation.yaml:2: strategies.0"),
    ("strategies:\n  - type: topology\n    hops: 9\n", "correlation.yaml:3: strategies.0.hops"),
    ("strategies: []\n", "strategies"),
    ("strategies:\n  - type: topology\n    graph_file: missing.yaml\n", "cannot read the service graph"),
])
def test_config_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "correlation.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(tmp_path / "correlation.yaml")


def test_service_reloads_config_without_restart(tmp_path: Path, make_service: object, sqlite_url: str) -> None:
    path = tmp_path / "correlation.yaml"
    path.write_text("strategies: [{type: labels}]\n")
    wk: Watchkeeper = make_service(sqlite_url, correlation_config=path)  # type: ignore[operator]

    def post(service: str, fp: str) -> int:
        body = {"service": service, "name": fp, "summary": "x", "fingerprint": fp}
        return wk.ingest("events", orjson.dumps(body), "application/json", "t").incidents[0]

    assert post("frontend", "a") != post("checkout", "b")
    path.write_text("strategies: [{type: labels}, {type: topology, graph: {web: [api, auth]}}]\n")
    os.utime(path, (1, 2))  # a new modification time, whatever the clock's resolution
    first = post("api", "c")
    assert post("web", "d") == first  # a caller of a failing dependency, through the reloaded graph
    path.write_text("strategies: [{type: nonsense}]\n")
    os.utime(path, (3, 4))
    assert post("web", "e") == first  # a bad edit keeps the last good configuration


def test_cooccurrence_strategy_joins_related_types() -> None:
    from watchkeeper.correlate import CoOccurring

    events = [ev("LinkDown", "router-1", 0), ev("BgpDown", "router-2", 30), ev("DiskFull", "router-3", 40)]
    got = groups((LabelGroup(), CoOccurring({"LinkDown": ["BgpDown"]})), events)
    assert got["BgpDown"] == (got["LinkDown"][0], "co_occurrence")
    assert got["DiskFull"][0] != got["LinkDown"][0]


def test_learn_from_history_then_correlate(tmp_path: Path, make_service: object, sqlite_url: str, clock: object) -> None:
    from typer.testing import CliRunner

    from watchkeeper.cli import app

    wk: Watchkeeper = make_service(sqlite_url)  # type: ignore[operator]
    for n in range(12):  # LinkDown is followed by BgpDown 20 s later, on other services; Noise is unrelated
        for name, offset in (("LinkDown", 0), ("BgpDown", 20), ("Noise", 1000 + 37 * n)):
            clock.now = T0 + timedelta(hours=2 * n, seconds=offset)  # type: ignore[attr-defined]
            body = {"service": f"{name.lower()}-{n}", "name": name, "summary": name, "fingerprint": f"{name}-{n}"}
            wk.ingest("events", orjson.dumps(body), "application/json", "t")
    graph = tmp_path / "graph.yaml"
    env = {"WATCHKEEPER_DATABASE_URL": sqlite_url}
    learned = CliRunner().invoke(app, ["correlation", "learn", "--out", str(graph), "--min-support", "5"], env=env)
    assert learned.exit_code == 0, learned.stderr
    assert "LinkDown" in graph.read_text() and "BgpDown" in graph.read_text() and "Noise" not in graph.read_text()
    config = tmp_path / "correlation.yaml"
    config.write_text(f"strategies: [{{type: labels}}, {{type: cooccurrence, graph_file: {graph.name}}}]\n")
    checked = CliRunner().invoke(app, ["correlation", "validate", str(config)])
    assert checked.exit_code == 0 and "cooccurrence" in checked.stdout
    strategies = load_config(config).build(tmp_path)
    got = groups(strategies, [ev("LinkDown", "a", 0), ev("BgpDown", "b", 10)])
    assert got["BgpDown"] == (got["LinkDown"][0], "co_occurrence")


def test_topology_edges_declared_by_labels() -> None:
    events = [ev("db", "payments-db", 0), ev("co", "checkout", 10, labels={"depends_on": "payments-db, cache"}),
              ev("ca", "cache", 20), ev("x", "batch", 30)]
    got = groups((LabelGroup(), Topology({}, labels=["depends_on"])), events)
    # cache, declared a dependency of checkout, which payments-db already explains: a second origin
    # (was: joined to the payments-db incident)
    assert got["co"] == (got["db"][0], "topology") and got["ca"][0] != got["db"][0]
    assert got["x"][0] != got["db"][0]
    plain = groups((LabelGroup(), Topology({})), events)
    assert plain["co"][0] != plain["db"][0]


def test_learn_a_service_graph(tmp_path: Path, make_service: object, sqlite_url: str, clock: object) -> None:
    from typer.testing import CliRunner

    from watchkeeper.cli import app

    wk: Watchkeeper = make_service(sqlite_url)  # type: ignore[operator]
    for n in range(12):  # checkout alerts follow payments-db alerts, whatever the alert names
        for service, offset in (("payments-db", 0), ("checkout", 15), (f"noise{n}", 900 + 37 * n)):
            clock.now = T0 + timedelta(hours=2 * n, seconds=offset)  # type: ignore[attr-defined]
            body = {"service": service, "name": f"Alert{n}", "summary": "x", "fingerprint": f"{service}-{n}"}
            wk.ingest("events", orjson.dumps(body), "application/json", "t")
    graph = tmp_path / "services.yaml"
    result = CliRunner().invoke(app, ["correlation", "learn", "--by", "service", "--out", str(graph),
                                      "--min-support", "5"], env={"WATCHKEEPER_DATABASE_URL": sqlite_url})
    assert result.exit_code == 0, result.stderr
    learned = load_config_graph(graph)
    assert learned in ({"payments-db": ["checkout"]}, {"checkout": ["payments-db"]})


def load_config_graph(path: Path) -> dict[str, list[str]]:
    import yaml

    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("strategies", [
    pytest.param((LabelGroup(),), id="service"),
    pytest.param((LabelGroup(["cluster", "service"]),), id="labels"),
    pytest.param((LabelGroup(), Topology(GRAPH, hops=2)), id="topology"),
    pytest.param((TextTemplate(),), id="text"),
    pytest.param((TextTemplate("service"), CoOccurring({"a": ["b"]})), id="text-cooccurrence"),
])
def test_correlator_keys_are_the_index_and_probe_keys(strategies: tuple[object, ...]) -> None:
    """``keys`` (used to load state) is the cheap form of ``index_keys`` + ``probe_keys``."""
    correlator = Correlator(timedelta(minutes=5), strategies)  # type: ignore[arg-type]
    found: set[str] = set()
    for event in [*STORM, ev("a", "checkout", 0, "disk 91% on db-1", {"cluster": "eu"}), ev("b", "x", 0, labels={})]:
        alert = alert_of(event)
        keys = set(correlator.keys(alert))
        assert keys == set(correlator.index_keys(alert) + correlator.probe_keys(alert))
        found |= keys
    assert found  # not vacuous: some alert has keys


def test_host_remembers_the_services_of_its_most_recently_seen_hosts_only() -> None:
    """A host seen under more than ``max_services`` services is no evidence; beyond ``max_hosts``
    hosts the least recently seen one is forgotten and starts afresh (memory bounded in a storm)."""
    from watchkeeper.correlate import Host
    from watchkeeper.model import Alert

    def on(host: str, service: str) -> Alert:
        return Alert(f"{host}/{service}", "am", "Down", service, f"{host}:9100", Severity.CRITICAL, Status.FIRING,
                     {}, "x", T0, T0)

    strategy = Host(max_services=2, max_hosts=3)
    for service in ("a", "b", "c"):
        strategy.probe(on("shared", service))
    assert strategy.probe(on("shared", "a")) == []  # three services: shared too widely
    for host in ("h1", "h2"):
        strategy.probe(on(host, "a"))
    assert strategy.probe(on("shared", "a")) == []  # seen again: the most recent of three
    assert list(strategy.services) == ["h1", "h2", "shared"]
    strategy.probe(on("h3", "a"))  # a fourth host: h1, the least recently seen, is forgotten
    assert list(strategy.services) == ["h2", "shared", "h3"]
    for host in ("h4", "h5"):
        strategy.probe(on(host, "a"))
    assert "shared" not in strategy.services
    assert [p.key for p in strategy.probe(on("shared", "a"))] == ["node:shared", "host:shared"]  # afresh
    assert len(strategy.services) == 3
