"""The join score on small storms with Alertmanager-like labels: concurrent faults kept apart,
cascades folded into their cause, flapping kept as one incident, splits audited."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from watchkeeper.correlate import Host, Mentions
from watchkeeper.correlate.config import CorrelationConfig, load_config
from watchkeeper.correlate.pipeline_config import PipelineConfig
from watchkeeper.errors import ConfigError
from watchkeeper.model import Event, EventKind, Severity, Status
from watchkeeper.pipeline import Pipeline, State

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
GRAPH = {"proxy": ["shop", "blog"], "shop": ["cache", "db"], "blog": ["search"]}


def am(name: str, service: str, instance: str, at: float, status: str = "firing", **labels: str) -> Event:
    """An event as the Alertmanager source normalizes it: fingerprint from the labels."""
    when = T0 + timedelta(seconds=at)
    job = "node" if name.startswith("Node") else service
    tags = {"alertname": name, "instance": instance, "job": job, "severity": "warning", **labels}
    if job != "node":
        tags["service"] = service
    fingerprint = ",".join(f"{k}={v}" for k, v in sorted(tags.items()) if k != "severity")
    return Event("alertmanager", EventKind.ALERT, fingerprint, Status(status), Severity.WARNING, name, service,
                 instance, tags, f"{name} on {instance}", when, when if status == "resolved" else None,
                 when + timedelta(seconds=5))


def run(events: list[Event], config: PipelineConfig | None = None) -> tuple[State, list[str]]:
    ids, state, kinds = itertools.count(1), State(), []
    pipeline = Pipeline(config or PipelineConfig(), lambda: next(ids))
    for event in events:
        pipeline.observe(event, state)
        kinds += [c.kind for c in state.changes]
        state.changes.clear()
    return state, kinds


def incident_of(state: State, name: str, instance: str) -> int:
    found = {a.incident_id for a in state.alerts.values() if a.name == name and a.resource == instance}
    assert len(found) == 1, found
    return found.pop() or 0


def with_graph(**join: object) -> PipelineConfig:
    return CorrelationConfig.model_validate({"graph": GRAPH, "join": join}).pipeline()


def test_concurrent_sibling_faults_are_kept_apart() -> None:
    """db crashes (shop, its caller, names it) while blog, shop's sibling under the proxy, throws
    errors of its own: two incidents, the second naming the first as possibly related."""
    storm = [
        am("ServiceDown", "db", "data-1:5432", 0),
        am("DependencyErrors", "shop", "app-1:8080", 8, dependency="db"),
        am("HighErrorRate", "blog", "app-2:8081", 10),
        am("HighErrorRate", "shop", "app-1:8080", 12),
        am("HighErrorRate", "blog", "app-3:8081", 14),
    ]
    state, _ = run(storm, with_graph())
    db = incident_of(state, "ServiceDown", "data-1:5432")
    assert incident_of(state, "DependencyErrors", "app-1:8080") == db
    assert incident_of(state, "HighErrorRate", "app-1:8080") == db
    blog = incident_of(state, "HighErrorRate", "app-2:8081")
    assert blog != db and incident_of(state, "HighErrorRate", "app-3:8081") == blog
    opened = next(m for m in state.memberships if m.incident_id == blog)
    assert opened.reason == "new_incident" and f"possibly related: incident {db}" in opened.detail


def test_the_old_undirected_topology_merged_those_siblings() -> None:
    """The same storm, without the join score's direction: what the correlator used to do."""
    storm = [am("HighErrorRate", "shop", "app-1:8080", 0), am("HighErrorRate", "blog", "app-2:8081", 5)]
    state, _ = run(storm, with_graph())
    assert incident_of(state, "HighErrorRate", "app-1:8080") != incident_of(state, "HighErrorRate", "app-2:8081")


def test_a_cascade_folds_into_its_cause_even_when_the_cause_fires_last() -> None:
    storm = [
        am("HighErrorRate", "shop", "app-1:8080", 0),                    # symptoms first
        am("DependencyErrors", "shop", "app-2:8080", 2, dependency="db"),
        am("HighErrorRate", "proxy", "edge-1:443", 6),                   # the caller's caller
        am("ServiceDown", "db", "data-1:5432", 15),                      # a `for: 30s` rule: late
        am("ServiceDown", "db", "data-2:5432", 17),
    ]
    state, _ = run(storm, with_graph())
    db = incident_of(state, "ServiceDown", "data-1:5432")
    assert {a.incident_id for a in state.alerts.values()} == {db}
    # shop's first alert had opened an incident of its own; db's alert, named by shop's other alert,
    # reveals the origin: the symptom is split off into the cause's incident (so is the proxy's)
    reasons = {m.reason for m in state.memberships if m.incident_id == db}
    assert {"mentioned", "split"} <= reasons
    # with no graph, the labels alone: the alert naming db and db's own alerts are one incident
    state, _ = run(storm)
    db = incident_of(state, "ServiceDown", "data-1:5432")
    assert incident_of(state, "ServiceDown", "data-2:5432") == incident_of(state, "DependencyErrors", "app-2:8080") == db


def test_flapping_is_one_incident() -> None:
    events = []
    for n in range(3):  # on 60 s, off 30 s, three times
        events += [am("HighLatency", "cache", "data-1:6379", 90 * n), am("HighLatency", "cache", "data-1:6379",
                                                                           90 * n + 60, "resolved")]
    state, kinds = run(events, PipelineConfig(flapping=None))
    assert len(state.incidents) == 1 and kinds.count("incident.reopened") == 2
    assert [m.reason for m in state.memberships] == ["new_incident"]
    late, _ = run([*events, am("HighLatency", "cache", "data-1:6379", 900)], PipelineConfig(flapping=None))
    assert len(late.incidents) == 2  # back after the window: a new incident


def test_a_second_origin_is_split_off_and_audited() -> None:
    """shop's errors first join shop's latency incident (same service, onsets close: a weak join);
    then db crashes: the errors' origin is db (shop calls db), so they move, with the reason."""
    storm = [
        am("HighLatency", "shop", "app-1:8080", 0),
        am("HighErrorRate", "shop", "app-2:8080", 25),
        am("ServiceDown", "db", "data-1:5432", 40),  # 40 s after the latency: not its cause
    ]
    state, kinds = run(storm, with_graph())
    latency, errors = incident_of(state, "HighLatency", "app-1:8080"), incident_of(state, "HighErrorRate", "app-2:8080")
    assert errors == incident_of(state, "ServiceDown", "data-1:5432") != latency
    assert "incident.split" in kinds
    moved = next(m for m in state.memberships if m.reason == "split")
    assert moved.incident_id == errors and f"split from incident {latency}" in moved.detail
    assert state.departures == [] or state.departures[-1][0] == latency
    assert state.incidents[latency].alert_count == 1 and state.incidents[errors].alert_count == 2


def test_the_split_change_says_why() -> None:
    storm = [am("HighLatency", "shop", "app-1:8080", 0), am("HighErrorRate", "shop", "app-2:8080", 25),
             am("ServiceDown", "db", "data-1:5432", 40)]
    ids, state = itertools.count(1), State()
    pipeline = Pipeline(with_graph(), lambda: next(ids))
    for event in storm[:2]:
        pipeline.observe(event, state)
    state.clear_changes()
    pipeline.observe(storm[2], state)
    split = next(c for c in state.changes if c.kind == "incident.split")
    assert split.payload["reason"] == "second_origin" and split.payload["into"] == 2
    (moved,) = split.payload["alerts"]
    assert moved["score_after"] > moved["score_before"] and "calls 'db'" in moved["evidence"]
    assert state.departures == [(1, moved["fingerprint"])]


def test_same_service_far_apart_in_time_is_another_fault() -> None:
    storm = [am("HighLatency", "shop", "app-1:8080", 0), am("HighErrorRate", "shop", "app-2:8080", 120)]
    state, _ = run(storm)
    assert incident_of(state, "HighLatency", "app-1:8080") != incident_of(state, "HighErrorRate", "app-2:8080")


def test_same_rule_on_another_replica_joins_even_a_little_later() -> None:
    storm = [am("HighErrorRate", "shop", "app-1:8080", 0), am("HighErrorRate", "shop", "app-2:8080", 40)]
    state, _ = run(storm)
    assert incident_of(state, "HighErrorRate", "app-1:8080") == incident_of(state, "HighErrorRate", "app-2:8080")


@pytest.mark.parametrize(("first", "second", "joined"), [
    pytest.param(("NodeHighCPU", "node", "data-1:9100"), ("HighLatency", "cache", "data-1:6379"), True,
                 id="host-fault-then-its-service"),
    pytest.param(("HighLatency", "cache", "data-1:6379"), ("HighErrorRate", "db", "data-1:5432"), False,
                 id="two-services-sharing-a-host"),
    pytest.param(("NodeHighCPU", "node", "127.0.0.1:9100"), ("HighLatency", "cache", "127.0.0.1:6379"), False,
                 id="loopback-is-no-evidence"),
])
def test_host_evidence_has_a_direction(first: tuple[str, str, str], second: tuple[str, str, str],
                                       joined: bool) -> None:
    state, _ = run([am(*first, 0), am(*second, 10)])
    assert (incident_of(state, first[0], first[2]) == incident_of(state, second[0], second[2])) is joined


def test_defaults_use_only_alertmanager_labels() -> None:
    names = [s.name for s in PipelineConfig().strategies]
    assert names == ["labels", "mentions", "host"]
    assert [s.name for s in CorrelationConfig().build()] == names
    assert isinstance(PipelineConfig().strategies[1], Mentions) and isinstance(PipelineConfig().strategies[2], Host)


def test_config_graph_and_join(tmp_path: Path) -> None:
    (tmp_path / "services.yaml").write_text("proxy: [shop]\n")
    (tmp_path / "c.yaml").write_text("graph_file: services.yaml\nhops: 1\njoin:\n  threshold: 0.7\n  lag: 45s\n")
    config = load_config(tmp_path / "c.yaml")
    pipeline = config.pipeline(tmp_path)
    assert [s.name for s in pipeline.strategies] == ["labels", "mentions", "host", "topology"]
    assert pipeline.join.join == 0.7 and pipeline.join.lag == timedelta(seconds=45)
    (tmp_path / "bad.yaml").write_text("join:\n  threshold: 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:2: join\.threshold"):
        load_config(tmp_path / "bad.yaml")


def test_a_higher_threshold_keeps_weak_joins_apart_but_says_so() -> None:
    storm = [am("HighLatency", "shop", "app-1:8080", 0), am("HighErrorRate", "shop", "app-2:8080", 5)]
    state, _ = run(storm, CorrelationConfig.model_validate({"join": {"threshold": 0.6}}).pipeline())
    second = next(m for m in state.memberships if "HighErrorRate" in m.fingerprint)
    assert second.reason == "new_incident" and "possibly related: incident 1 (0.50: same service 'shop')" in second.detail


def test_a_split_is_stored_and_on_the_incident_timeline(tmp_path: Path, make_service: object, sqlite_url: str,
                                                         clock: object) -> None:
    import orjson

    from watchkeeper.service import Watchkeeper

    config = tmp_path / "correlation.yaml"
    config.write_text("graph: {proxy: [shop], shop: [db]}\n")
    wk: Watchkeeper = make_service(sqlite_url, correlation_config=config)  # type: ignore[operator]
    ids = []
    for name, service, at in (("HighLatency", "shop", 0), ("HighErrorRate", "shop", 25), ("ServiceDown", "db", 40)):
        clock.now = T0 + timedelta(seconds=at + 5)  # type: ignore[attr-defined]
        body = {"service": service, "name": name, "summary": f"{name} on {service}", "fingerprint": name,
                "starts_at": (T0 + timedelta(seconds=at)).isoformat()}
        ids.append(wk.ingest("events", orjson.dumps(body), "application/json", "t").incidents[0])
    latency, errors, db = ids
    assert errors == latency != db  # the errors first joined the latency incident, weakly
    source, target = wk.incident(latency), wk.incident(db)
    assert [a["fingerprint"] for a in source["alerts"]] == ["HighLatency"]
    assert sorted(a["fingerprint"] for a in target["alerts"]) == ["HighErrorRate", "ServiceDown"]
    split = next(e for e in source["timeline"] if e["kind"] == "incident.split")
    assert split["reason"] == "second_origin" and split["into"] == db


def _late(event: Event, received: float) -> Event:
    """The same event, delivered at ``received`` (Alertmanager's group_wait, a slow notification)."""
    return replace(event, received_at=T0 + timedelta(seconds=received))


@pytest.mark.parametrize(("caller_onset", "lead", "joined"), [
    pytest.param(0, "15s", False, id="caller-started-30s-before-its-dependency-is-not-its-symptom"),
    pytest.param(20, "15s", True, id="caller-started-10s-before-the-dependency's-late-alert-is"),
    pytest.param(0, "1h", True, id="without-onset-order-it-joins"),
])
def test_onset_order_a_symptom_does_not_start_before_its_cause(caller_onset: float, lead: str, joined: bool) -> None:
    """shop calls db; shop's error alert is delivered after db's crash alert opened an incident, but it
    started well before db's: another fault of shop's own, not db's symptom (``join.lead``)."""
    storm = [am("ServiceDown", "db", "data-1:5432", 30),
             _late(am("HighErrorRate", "shop", "app-1:8080", caller_onset), 40)]
    state, _ = run(storm, with_graph(lead=lead))
    same = incident_of(state, "HighErrorRate", "app-1:8080") == incident_of(state, "ServiceDown", "data-1:5432")
    assert same is joined


def test_a_callers_own_failure_is_not_its_dependencys_symptom() -> None:
    """db fails; shop calls db: shop's errors are db's symptom, but shop's ServiceDown (its own process
    down) is a fault of its own."""
    storm = [am("HighErrorRate", "db", "data-1:5432", 0), am("ServiceDown", "shop", "app-1:8080", 5),
             am("HighErrorRate", "shop", "app-2:8080", 8)]
    state, _ = run(storm, with_graph())
    db = incident_of(state, "HighErrorRate", "data-1:5432")
    assert incident_of(state, "HighErrorRate", "app-2:8080") == db
    assert incident_of(state, "ServiceDown", "app-1:8080") != db


def test_host_level_alerts_on_two_hosts_are_not_one_service() -> None:
    """node-exporter alerts all carry the job ``node``: the same job on two hosts is no shared cause."""
    storm = [am("NodeHighCPU", "node", "data-1:9100", 0), am("NodeMemoryPressure", "node", "app-2:9100", 5),
             am("NodeLoadHigh", "node", "data-1:9100", 8)]
    state, _ = run(storm)
    data = incident_of(state, "NodeHighCPU", "data-1:9100")
    assert incident_of(state, "NodeLoadHigh", "data-1:9100") == data
    assert incident_of(state, "NodeMemoryPressure", "app-2:9100") != data


def test_a_late_kind_joins_its_service_at_its_learned_lag() -> None:
    """An error-budget burn rate fires ~90 s after the errors on its service began: the first ones
    (nothing learned yet) open incidents of their own, later ones join their service's incident."""
    storm: list[Event] = []
    for n, service in enumerate(["shop", "blog", "cache", "db", "proxy"]):
        t = n * 600
        storm += [am("HighErrorRate", service, f"app-{n}:80", t), am("HighErrorRate", service, f"app-{n}:81", t + 3),
                  am("ErrorBudgetBurn", service, "", t + 90)]
    learned, _ = run(storm)
    blind, _ = run(storm, CorrelationConfig.model_validate({"join": {"learn_lag": False}}).pipeline())
    for state, joined in ((learned, ["db", "proxy"]), (blind, [])):
        together = [s for s in ["shop", "blog", "cache", "db", "proxy"]
                    if len({a.incident_id for a in state.alerts.values() if a.service == s}) == 1]
        assert together == joined


def test_a_symptom_services_own_failure_is_a_second_origin() -> None:
    """db fails; shop's alerts name db (a symptom, in db's incident). Then shop's own process goes down:
    without any graph, ServiceDown on shop does not join through "same service" — shop was there only
    as db's symptom — it opens an incident of its own, naming db's as possibly related."""
    storm = [am("HighErrorRate", "db", "data-1:5432", 0),
             am("DependencyErrors", "shop", "app-1:8080", 3, dependency="db"),
             am("ServiceDown", "shop", "app-2:8080", 20)]
    state, _ = run(storm)
    db = incident_of(state, "HighErrorRate", "data-1:5432")
    assert incident_of(state, "DependencyErrors", "app-1:8080") == db
    down = state.alerts[next(fp for fp, a in state.alerts.items() if a.name == "ServiceDown")]
    assert down.incident_id != db
    detail = next(m.detail for m in state.memberships if m.fingerprint == down.fingerprint)
    assert f"possibly related: incident {db}" in detail


def test_a_service_that_failed_first_keeps_its_own_down_alerts() -> None:
    """shop's own failure opened the incident: its second replica going down joins it (same fault)."""
    storm = [am("ServiceDown", "shop", "app-1:8080", 0), am("HighErrorRate", "proxy", "edge-1:443", 2),
             am("ServiceDown", "shop", "app-2:8080", 6)]
    state, _ = run(storm, with_graph())
    assert incident_of(state, "ServiceDown", "app-1:8080") == incident_of(state, "ServiceDown", "app-2:8080")


def _named_cascade(at: float, n: int, spread: float) -> list[Event]:
    """A dependency fault whose callers name it, ``spread`` seconds behind it."""
    return [am("HighErrorRate", f"db{n}", f"data-{n}:5432", at),
            am("DependencyErrors", f"shop{n}", f"app-{n}:8080", at + spread, dependency=f"db{n}"),
            am("DependencyErrors", f"shop{n}", f"app-{n}:8081", at + spread + 1, dependency=f"db{n}")]


@pytest.mark.parametrize(("spread", "joined"), [
    pytest.param(2.0, False, id="fast-system-learns-a-short-lag"),
    pytest.param(40.0, True, id="slow-system-keeps-the-policy-lag"),
])
def test_the_onset_lag_is_learned_from_named_culprits(spread: float, joined: bool) -> None:
    """Symptoms that name their cause show how fast faults travel here. Where they follow within ~2 s,
    an alert on the same service 25 s after the incident began is another fault; where they take 40 s,
    the policy's 30 s lag (its ceiling) still holds and it joins."""
    storm = [*_named_cascade(0, 1, spread), *_named_cascade(300, 2, spread),
             am("HighErrorRate", "db3", "data-3:5432", 600), am("HighLatency", "db3", "data-3:5433", 625)]
    state, _ = run(storm)
    together = incident_of(state, "HighErrorRate", "data-3:5432") == incident_of(state, "HighLatency", "data-3:5433")
    assert together is joined
    blind, _ = run(storm, CorrelationConfig.model_validate({"join": {"learn_lag": False}}).pipeline())
    assert incident_of(blind, "HighErrorRate", "data-3:5432") == incident_of(blind, "HighLatency", "data-3:5433")


def _related_to(state: State, fingerprint: str) -> str:
    return next(m.detail for m in state.memberships if m.fingerprint == fingerprint)


def _fp(state: State, name: str, instance: str) -> str:
    return next(fp for fp, a in state.alerts.items() if a.name == name and a.resource == instance)


@pytest.mark.parametrize("signals", [True, False], ids=["signals", "without-signals"])
def test_a_callers_latency_is_not_its_crashed_dependencys_symptom(signals: bool) -> None:
    """db goes down; shop calls db: shop's errors are db's symptom, but shop's latency is another signal
    than db's outage shows (a refused connection fails fast): neither "a caller of a failing dependency"
    nor "same service" (shop is there only as db's symptom) merges it; it names db's incident."""
    storm = [am("ServiceDown", "db", "data-1:5432", 0), am("HighErrorRate", "shop", "app-1:8080", 3),
             am("HighLatency", "shop", "app-2:8080", 6)]
    state, _ = run(storm, with_graph(signals=signals))
    db = incident_of(state, "ServiceDown", "data-1:5432")
    assert incident_of(state, "HighErrorRate", "app-1:8080") == db
    slow = incident_of(state, "HighLatency", "app-2:8080")
    assert (slow != db) is signals
    if signals:
        assert f"possibly related: incident {db}" in _related_to(state, _fp(state, "HighLatency", "app-2:8080"))


@pytest.mark.parametrize("signals", [True, False], ids=["signals", "without-signals"])
def test_a_callers_errors_are_not_a_slow_dependencys_symptom(signals: bool) -> None:
    """db is slow; its caller shop then fails requests (a fault of its own) and is slow (db's symptom):
    the latency joins db's incident, the errors open their own, naming db's as possibly related."""
    storm = [am("HighLatency", "db", "data-1:5432", 0), am("HighErrorRate", "shop", "app-1:8080", 3),
             am("HighLatency", "shop", "app-2:8080", 4)]
    state, _ = run(storm, with_graph(signals=signals))
    db = incident_of(state, "HighLatency", "data-1:5432")
    assert incident_of(state, "HighLatency", "app-2:8080") == db
    assert (incident_of(state, "HighErrorRate", "app-1:8080") != db) is signals


@pytest.mark.parametrize("signals", [True, False], ids=["signals", "without-signals"])
def test_a_split_does_not_move_a_callers_latency_into_a_dependencys_errors(signals: bool) -> None:
    """proxy turns slow (its own fault); 7 s later shop, which proxy calls, fails requests: shop's errors
    would explain proxy's errors, not its latency, so proxy's latency is not split into shop's incident."""
    storm = [am("HighLatency", "proxy", "edge-1:443", 0), am("HighErrorRate", "shop", "app-1:8080", 7)]
    state, kinds = run(storm, with_graph(signals=signals))
    apart = incident_of(state, "HighLatency", "edge-1:443") != incident_of(state, "HighErrorRate", "app-1:8080")
    assert apart is signals
    assert ("incident.split" in kinds) is not signals


def test_a_dependency_whose_alerts_name_no_signal_still_explains_its_callers() -> None:
    """A cascade whose cause's alert names no golden signal (its connection pool exhausted): its callers' errors
    and latency both join it."""
    storm = [am("ConnectionPoolExhausted", "db", "data-1:5432", 0), am("HighErrorRate", "shop", "app-1:8080", 3),
             am("HighLatency", "shop", "app-2:8080", 5)]
    state, _ = run(storm, with_graph())
    db = incident_of(state, "ConnectionPoolExhausted", "data-1:5432")
    assert incident_of(state, "HighErrorRate", "app-1:8080") == incident_of(state, "HighLatency", "app-2:8080") == db
