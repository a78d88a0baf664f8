"""Logs through the service on SQLite and PostgreSQL: stored durably with their templates and
counts, files followed across rotation and restart with nothing lost or doubled, anomalies opening
incidents through the alert path, bad frames counted and dead-lettered, raw lines pruned."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import networkx as nx
import pytest

from conftest import Clock
from watchkeeper.logs.config import AnomalyConfig, FileInput, LogRetention, LogsConfig
from watchkeeper.logs.record import LogRecord
from watchkeeper.model import Severity
from watchkeeper.service import Watchkeeper
from watchkeeper.service.logs import LogIngest


def records(clock: Clock, n: int, text: str = "user {i} logged in", severity: Severity = Severity.INFO,
            service: str = "cart") -> list[LogRecord]:
    return [LogRecord(service, clock(), text.format(i=i), severity, "otlp") for i in range(n)]


def test_lines_templates_and_counts_are_stored(service: Watchkeeper, clock: Clock) -> None:
    logs = LogIngest(service, LogsConfig())
    logs.submit(records(clock, 10))
    logs.submit(records(clock, 5, "payment {i} failed", Severity.ERROR))
    templates = {t["template"]: t["count"] for t in logs.store.templates("cart")}
    assert templates == {"user <*> logged in": 10, "payment <*> failed": 5}
    counts = logs.store.counts("cart")
    assert sorted((c["count"], c["errors"]) for c in counts) == [(5, 5), (10, 0)]
    assert logs.store.size()[0] == 15


def test_miner_state_survives_a_restart(service: Watchkeeper, clock: Clock) -> None:
    logs = LogIngest(service, LogsConfig())
    logs.submit(records(clock, 3))
    logs.save(everything=True)
    [before] = logs.store.templates("cart")
    again = LogIngest(service, LogsConfig())
    assert again.pipeline.miner("cart").templates()[0][0] == before["template_id"]
    again.submit(records(clock, 2))
    assert [t["count"] for t in again.store.templates("cart")] == [5]


def test_a_followed_file_loses_and_doubles_nothing_across_rotation_and_restart(
        service: Watchkeeper, clock: Clock, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    config = LogsConfig(files=[FileInput(path=log, service="shop", from_start=True)])

    def write(*lines: str) -> None:
        with log.open("a") as f:
            f.write("".join(f"{line}\n" for line in lines))

    write("l1", "l2")
    first = LogIngest(service, config)
    first._open_files()
    assert first.poll_files() == 2
    write("l3")
    log.rename(tmp_path / "app.log.1")  # rotated while the first server still follows it
    write("l4")
    assert first.poll_files() == 2
    write("l5")
    for _spec, tailer, _ in first._tailers.values():  # the server stops (without a last read)
        tailer.close()
    log.rename(tmp_path / "app.log.2")  # rotated again while it is down
    write("l6")
    second = LogIngest(service, config)
    second._open_files()
    assert second.poll_files() == 2
    lines = sorted(r["line"] for r in second.store.lines("shop"))
    assert lines == ["l1", "l2", "l3", "l4", "l5", "l6"]
    [source] = [s for s in second.sources() if s.kind == "file"]
    assert source.lines == 6 and source.offset is not None and source.offset.inode == log.stat().st_ino
    for _spec, tailer, _ in second._tailers.values():
        tailer.close()


def test_anomalies_become_log_events_correlated_like_alerts(service: Watchkeeper, clock: Clock) -> None:
    logs = LogIngest(service, LogsConfig(anomalies=AnomalyConfig(learn_minutes=0)))
    logs.submit(records(clock, 3, "connection to {i} refused", Severity.ERROR))
    assert logs.tick() == 1  # the new error template
    [incident] = service.incidents()
    assert list(incident.services) == ["cart"]
    for _ in range(40):  # an error burst in the next minute
        logs.submit(records(clock, 1, "connection to {i} refused", Severity.ERROR))
    clock.advance(minutes=2)
    assert logs.tick() >= 1
    alerts = [a for i in service.incidents() for a in service.incident(i.id).as_dict()["alerts"]]
    assert {a["name"] for a in alerts} == {"LogNewTemplate", "LogErrorBurst"}  # how they group: correlation's call
    assert {a["service"] for a in alerts} == {"cart"}


def test_bad_frames_are_counted_and_dead_lettered_within_a_bound(service: Watchkeeper) -> None:
    logs = LogIngest(service, LogsConfig())
    handle = logs.syslog_handler("udp")
    handle([b"<13>1 2026-12-03T11:59:58Z h app - - - ok", b"<13>1 - h a - - - caf\xe9", b"<999>x"], "127.0.0.1")
    assert logs.counts["syslog-udp"] == [1, 2]
    letters = service.dead_letters()
    assert len(letters) == 2 and {d.source for d in letters} == {"syslog-udp"}
    for _ in range(200):
        handle([b"<999>x"], "127.0.0.1")
    assert logs.counts["syslog-udp"][1] == 202
    assert len(service.dead_letters(1000)) <= 60  # bounded per minute


def test_raw_lines_are_pruned_by_window_and_size(make_service: Callable[..., Watchkeeper], db_url: str,
                                                 clock: Clock) -> None:
    service = make_service(db_url)
    logs = LogIngest(service, LogsConfig(retention=LogRetention(raw_hours=1, max_mb=0.001)))
    logs.submit(records(clock, 10, "old line number {i} " + "x" * 50))
    clock.advance(hours=2)
    logs.submit(records(clock, 100, "new line number {i} " + "y" * 50))
    pruned = logs.prune()
    assert pruned.log_lines >= 10
    count, size = logs.store.size()
    assert size <= 1024 * 1.0 and count < 100
    assert all(r["line"].startswith("new") for r in logs.store.lines())
    assert logs.store.templates()  # the summary stays (retention_days)
    _ = timedelta


def test_the_ranker_reads_log_anomalies_as_root_cause_evidence(service: Watchkeeper, clock: Clock) -> None:
    """What serve's ranker gets from the stored counts (RankerLogs): per service, its strongest log
    anomaly with the templates behind it; the ranker puts that service first and says logs said so."""
    from watchkeeper import rca
    from watchkeeper.service.log_evidence import RankerLogs

    logs = LogIngest(service, LogsConfig(anomalies=AnomalyConfig(learn_minutes=0)))
    for _ in range(30):  # a quiet half hour on both services
        logs.submit(records(clock, 5) + records(clock, 5, service="web"))
        clock.advance(minutes=1)
    onset = clock().timestamp()
    for _ in range(3):  # then cart throws errors; web logs as before
        logs.submit(records(clock, 60, "payment {i} failed: timeout", Severity.ERROR) + records(clock, 5, service="web"))
        clock.advance(minutes=1)
    found = RankerLogs(logs).anomalies(["cart", "web"], onset - 60, clock().timestamp())
    assert set(found) == {"cart"} and found["cart"].score > 3
    said = {(t["reason"], t["template"]) for t in found["cart"].templates}
    assert said == {("error_burst", "(all error lines)"), ("new_template", "payment <*> failed: timeout")}
    causes = rca.rank(["web", "cart"], rca.Evidence(graph=nx.DiGraph([("web", "cart")]), metrics={}, onset=onset,
                                                    log_anomalies=found))
    assert causes[0].component == "cart"
    assert "logs" in causes[0].evidence["signals"]


@pytest.mark.parametrize(("fmt", "stored"), [
    pytest.param("auto", ["db timeout", "GET / 200", "{not json"], id="structured-lines-give-their-message"),
    pytest.param("plain", None, id="plain-keeps-every-line-as-text"),
])
def test_a_followed_file_of_structured_logs(service: Watchkeeper, tmp_path: Path, fmt: str,
                                           stored: list[str] | None) -> None:
    """JSON-lines logs (structlog, zap, pino...): the message is the line the miner sees, with its level
    and trace id; other lines of the same file stay plain text."""
    log = tmp_path / "app.log"
    lines = ['{"timestamp": "2026-12-03T12:00:01Z", "level": "ERROR", "message": "db timeout", "trace_id": "ab12"}',
             "GET / 200", "{not json"]
    log.write_text("".join(f"{line}\n" for line in lines))
    logs = LogIngest(service, LogsConfig(files=[FileInput(path=log, service="shop", from_start=True, format=fmt)]))
    logs._open_files()
    assert logs.poll_files() == 3
    rows = sorted(logs.store.lines("shop"), key=lambda r: r["id"])
    assert [r["line"] for r in rows] == (stored or lines)
    assert rows[0]["severity"] == "error"
    for _spec, tailer, _ in logs._tailers.values():
        tailer.close()


def test_log_lines_naming_a_failing_dependency_blame_it(service: Watchkeeper, clock: Clock) -> None:
    """web's logs say "call to cart failed" (cart crashed: it logs nothing): those errors, and web's
    error burst made of them, are cart's symptom, as a DependencyErrors{dependency="cart"} alert is."""
    from watchkeeper import rca
    from watchkeeper.service.log_evidence import RankerLogs

    logs = LogIngest(service, LogsConfig(anomalies=AnomalyConfig(learn_minutes=0)))
    for _ in range(30):
        logs.submit(records(clock, 5, service="web") + records(clock, 5))
        clock.advance(minutes=1)
    onset = clock().timestamp()
    for _ in range(3):  # cart is down: only web logs, and what it logs names cart
        logs.submit(records(clock, 50, "call to cart GET /item/{i} failed: connection refused", Severity.ERROR,
                            service="web") + records(clock, 5, service="web"))
        clock.advance(minutes=1)
    found = RankerLogs(logs).anomalies(["web", "cart"], onset - 60, clock().timestamp())
    assert "web" not in found or found["web"].score < found["cart"].score
    assert {t.get("named_by") for t in found["cart"].templates} == {"web"}
    causes = rca.rank(["web"], rca.Evidence(graph=nx.DiGraph([("web", "cart")]), metrics={}, onset=onset,
                                            log_anomalies=found))
    assert causes[0].component == "cart"
    # with the topology, a template can name only the writer's neighbours: had cart been no neighbour of
    # web ("cart" a mere word there), web's lines stay web's
    near = RankerLogs(logs).anomalies(["web", "cart"], onset - 60, clock().timestamp(), nx.DiGraph([("web", "cart")]))
    assert set(near) == set(found) and near["cart"].score == found["cart"].score
    apart = RankerLogs(logs).anomalies(["web", "cart"], onset - 60, clock().timestamp(),
                                       nx.DiGraph([("web", "db"), ("cart", "db")]))
    assert "cart" not in apart and apart["web"].score >= found["cart"].score


def test_a_line_naming_several_services_stays_with_its_writer(service: Watchkeeper, clock: Clock) -> None:
    """As in every evaluation (``log_evidence.evidence_of``): a template that names two other services
    names no one of them in particular; it stays the writer's evidence, its errors blame neither."""
    from watchkeeper.service.log_evidence import RankerLogs

    logs = LogIngest(service, LogsConfig(anomalies=AnomalyConfig(learn_minutes=0)))
    for _ in range(30):
        logs.submit(records(clock, 5, service="web"))
        clock.advance(minutes=1)
    onset = clock().timestamp()
    for _ in range(3):
        logs.submit(records(clock, 50, "cart and search timed out for request {i}", Severity.ERROR, service="web")
                    + records(clock, 5, service="web"))
        clock.advance(minutes=1)
    found = RankerLogs(logs).anomalies(["web", "cart", "search"], onset - 60, clock().timestamp())
    assert set(found) == {"web"}
    assert all("named_by" not in t for t in found["web"].templates)
