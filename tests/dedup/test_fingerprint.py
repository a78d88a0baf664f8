"""Deduplication reasons, table-driven."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from watchkeeper.dedup import Deduplicator, DedupReason
from watchkeeper.model import Alert, Event, EventKind, Severity, Status

T0 = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


def ev(status: str, at: float, *, starts: float = 0, severity: str = "critical", reference: bool = False) -> Event:
    return Event(
        "test", EventKind.ALERT, "fp", Status(status), Severity(severity), "Down", "db", "db-1",
        {"alertname": "Down", "v": str(at)}, f"down at {at}", T0 + timedelta(seconds=starts), None,
        T0 + timedelta(seconds=at), reference=reference,
    )


@pytest.mark.parametrize(
    ("sequence", "reasons"),
    [
        ([ev("firing", 0)], ["new"]),
        ([ev("firing", 0), ev("firing", 30)], ["new", "repeat"]),
        ([ev("firing", 0), ev("resolved", 30)], ["new", "resolved"]),
        ([ev("firing", 0), ev("resolved", 30), ev("resolved", 60)], ["new", "resolved", "already_resolved"]),
        ([ev("resolved", 0)], ["resolved_unseen"]),
        ([ev("firing", 0), ev("resolved", 30), ev("firing", 90, starts=90)], ["new", "resolved", "refired"]),
        ([ev("firing", 0), ev("resolved", 30), ev("firing", 90, starts=0)], ["new", "resolved", "stale"]),
    ],
)
def test_reasons(sequence: list[Event], reasons: list[str]) -> None:
    alerts: dict[str, Alert] = {}
    dedup = Deduplicator()
    assert [dedup.observe(e, alerts).reason.value for e in sequence] == reasons
    assert alerts["fp"].count == len(sequence)


def test_every_reason_reads_as_a_sentence() -> None:
    assert all(len(reason.text.split()) >= 3 for reason in DedupReason)


def test_repeat_refreshes_description_but_a_reference_does_not() -> None:
    alerts: dict[str, Alert] = {}
    dedup = Deduplicator()
    dedup.observe(ev("firing", 0), alerts)
    dedup.observe(ev("firing", 10, severity="warning"), alerts)
    assert alerts["fp"].severity is Severity.WARNING and alerts["fp"].summary == "down at 10"
    bare = replace(ev("firing", 20, severity="info"), labels={"pagerduty_action": "acknowledge"}, reference=True)
    dedup.observe(bare, alerts)
    assert alerts["fp"].severity is Severity.WARNING and "pagerduty_action" not in alerts["fp"].labels
    assert alerts["fp"].last_seen == T0 + timedelta(seconds=20)
