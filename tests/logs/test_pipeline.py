"""The pipeline's batched path (``TemplateMiner.identify``, ``LogAnomalies.observe_batch``) gives what
one line at a time gives (``TemplateMiner.add``, ``LogAnomalies.observe``): the same templates, counts,
events and saved state."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from watchkeeper.logs.anomaly import LogAnomalies, minute_of
from watchkeeper.logs.config import AnomalyConfig, LogsConfig
from watchkeeper.logs.miner import MinerConfig, TemplateMiner
from watchkeeper.logs.pipeline import LogPipeline
from watchkeeper.logs.record import LogRecord
from watchkeeper.model import Event, Severity
from watchkeeper.storage.types import SecondStamps, sqlite_stamp

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SSH = Path(__file__).parent / "data" / "loghub" / "OpenSSH" / "OpenSSH_2k.log"
SHAPES = [
    "user {n} logged in from 10.0.{n}.1",
    "WARN slow query took {n} ms",
    "ERROR payment {n} failed",
    "cache hit ratio {n}%",
    "session {n} expired",
    "ERROR disk {n} full",
]


def test_identify_and_add_interleaved_learn_what_add_alone_learns() -> None:
    messages = [line.split(": ", 1)[-1] for line in SSH.read_text().splitlines()]
    mixed, by_add = TemplateMiner(), TemplateMiner()
    for i, message in enumerate(messages * 2):  # the second pass: every shape is cached
        parsed = by_add.add(message)
        if i % 3:
            assert mixed.add(message) == parsed
        else:
            assert mixed.identify(message) == (parsed.template_id, parsed.template)
    assert mixed.state() == by_add.state()


@pytest.mark.parametrize("config", [MinerConfig(), MinerConfig(max_templates=8, max_shapes=16, max_line_chars=40)])
def test_identify_and_add_learn_the_same(config: MinerConfig) -> None:
    """Also under tight bounds: evicted templates, dropped shapes, clipped lines."""
    messages = [line.split(": ", 1)[-1] for line in SSH.read_text().splitlines()]
    by_add, by_identify = TemplateMiner(config), TemplateMiner(config)
    for message in messages * 2:
        parsed = by_add.add(message)
        assert by_identify.identify(message) == (parsed.template_id, parsed.template)
    assert by_identify.state() == by_add.state()


def stream(seed: int = 3) -> list[tuple[datetime, list[LogRecord]]]:
    """Batches over 40 minutes: (receipt, records), lines of several services and levels, some templates
    appearing only after the learning minutes, a burst of errors."""
    rng = random.Random(seed)
    out = []
    for m in range(40):
        for part in range(3):
            received = T0 + timedelta(minutes=m, seconds=5 + 20 * part)
            shapes = SHAPES if m >= 12 else SHAPES[:4]
            n = rng.randrange(5, 60) + (120 if m == 30 else 0)
            records = []
            for _ in range(n):
                text = rng.choice(shapes).format(n=rng.randrange(1000))
                severity = (
                    Severity.ERROR
                    if text.startswith("ERROR")
                    else Severity.WARNING
                    if text.startswith("WARN")
                    else Severity.INFO
                )
                at = received - timedelta(seconds=rng.randrange(0, 90))
                records.append(LogRecord(rng.choice(["cart", "auth"]), at, text, severity, "otlp"))
            out.append((received, records))
    return out


def described(events: list[Event]) -> list[tuple[object, ...]]:
    return [
        (e.fingerprint, e.name, e.status, e.starts_at, e.raw["evidence"].get("count"), e.raw["evidence"].get("samples"))
        for e in events
    ]


def test_a_batched_pipeline_equals_one_line_at_a_time() -> None:
    config = LogsConfig(anomalies=AnomalyConfig(learn_minutes=5, warmup_minutes=5, burst_errors=30))
    pipeline = LogPipeline(config, stamp=SecondStamps())  # the rows in SQLite's form, as the server makes them
    miners: dict[str, TemplateMiner] = {}
    reference = LogAnomalies(config.anomalies)
    known: set[tuple[str, str]] = set()
    templates: dict[tuple[str, str], list[object]] = {}
    counts: dict[tuple[str, str, int], list[int]] = {}
    batched_templates: dict[tuple[str, str], list[object]] = {}
    batched_counts: dict[tuple[str, str, int], list[int]] = {}
    got: list[Event] = []
    want: list[Event] = []
    for received, records in stream():
        batch, events = pipeline.process(records, received)
        got += events
        for key, (template, first, last, n) in batch.templates.items():
            have = batched_templates.setdefault(key, [template, first, last, 0])
            have[0], have[1], have[2] = template, min(have[1], first), max(have[2], last)  # type: ignore[type-var]
            have[3] += n  # type: ignore[operator]
        for (service, tid, minute), (n, errors) in batch.counts.items():
            per = batched_counts.setdefault((service, tid, minute_of(minute)), [0, 0])
            per[0] += n
            per[1] += errors
        assert [row[6] for row in batch.lines] == [r.body for r in records]
        assert [row[:2] for row in batch.lines] == [(sqlite_stamp(received), sqlite_stamp(r.at)) for r in records]
        for rec in records:
            parsed = miners.setdefault(rec.service, TemplateMiner()).add(rec.body)
            key = (rec.service, parsed.template_id)
            new = key not in known
            known.add(key)
            have = templates.setdefault(key, [parsed.template, rec.at, rec.at, 0])
            have[0], have[1], have[2] = parsed.template, min(have[1], rec.at), max(have[2], rec.at)  # type: ignore[type-var]
            have[3] += 1  # type: ignore[operator]
            per = counts.setdefault((rec.service, parsed.template_id, minute_of(rec.at)), [0, 0])
            per[0] += 1
            per[1] += rec.severity in (Severity.ERROR, Severity.CRITICAL)
            want += reference.observe(
                rec.service, parsed.template_id, parsed.template, rec.severity, rec.body, received, new=new
            )
        tick = received + timedelta(seconds=1)
        got += pipeline.tick(tick)
        want += reference.tick(tick)
    assert batched_templates == templates
    assert batched_counts == counts
    assert {e.name for e in want} >= {"LogNewTemplate", "LogErrorBurst"}  # the stream exercises them
    assert described(got) == described(want)
    assert pipeline.anomalies.state() == reference.state()
    assert pipeline.anomalies._error_samples == reference._error_samples
    assert {k: list(s.samples) for k, s in pipeline.anomalies._series.items()} == {
        k: list(s.samples) for k, s in reference._series.items()
    }
