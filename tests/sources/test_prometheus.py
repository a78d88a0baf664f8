"""Alertmanager API v2 ``postableAlerts`` (what Prometheus sends): mapping, status, refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchkeeper.errors import InputError
from watchkeeper.model import Severity, Status
from watchkeeper.sources import detect, registry
from watchkeeper.sources.base import fingerprint_of
from watchkeeper.sources.limits import size_problem
from watchkeeper.sources.prometheus import PrometheusSource, fast_normalize, plain_body, validated_normalize

NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)

#: What Prometheus 2.x POSTs to Alertmanager's /api/v2/alerts (one firing, one resolved).
REAL: list[dict[str, Any]] = [
    {
        "labels": {"alertname": "InstanceDown", "instance": "db-1:5432", "job": "postgres", "severity": "critical"},
        "annotations": {"summary": "db-1 is down"},
        "startsAt": "2026-11-22T06:52:06.123456789Z",
        "endsAt": "2026-11-22T07:04:06.123Z",
        "generatorURL": "http://prom:9090/graph?g0.expr=up",
    },
    {
        "labels": {"alertname": "HighLatency", "service": "api"},
        "annotations": {},
        "startsAt": "2026-11-22T06:00:00Z",
        "endsAt": "2026-11-22T06:58:00Z",
        "generatorURL": "",
    },
]


def test_real_body_maps_and_the_fast_path_agrees_with_the_reference() -> None:
    fast = fast_normalize(REAL, NOW)
    assert fast is not None
    assert fast == validated_normalize(REAL, NOW)
    down, slow = fast
    assert (down.name, down.service, down.resource, down.severity, down.status) == (
        "InstanceDown",
        "postgres",
        "db-1:5432",
        Severity.CRITICAL,
        Status.FIRING,
    )  # endsAt in the future
    assert down.summary == "db-1 is down"
    assert down.fingerprint == fingerprint_of(REAL[0]["labels"])
    assert (slow.service, slow.status, slow.ends_at) == (
        "api",
        Status.RESOLVED,
        datetime(2026, 11, 22, 6, 58, tzinfo=UTC),
    )


def test_an_end_before_the_start_is_the_start() -> None:
    body = [{"labels": {"a": "b"}, "startsAt": "2026-11-22T06:00:00Z", "endsAt": "2026-11-22T05:00:00Z"}]
    (event,) = PrometheusSource().normalize(body, NOW)
    assert (event.ends_at, event.status) == (datetime(2026, 11, 22, 6, tzinfo=UTC), Status.RESOLVED)


def test_a_missing_start_is_the_time_of_receipt() -> None:
    (event,) = PrometheusSource().normalize([{"labels": {"alertname": "X"}}], NOW)
    assert (event.starts_at, event.ends_at, event.status) == (NOW, None, Status.FIRING)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"labels": {"a": "b"}}, "Input should be a valid list"),
        ([{"annotations": {}}], "labels"),
        ([{"labels": {}}], "labels"),
        ([{"labels": {"a": 1}}], "labels.a"),
        ([{"labels": {"a": "b"}, "startsAt": "yesterday"}], "startsAt"),
        (["text"], "0"),
    ],
)
def test_refusals_say_why(body: Any, says: str) -> None:
    with pytest.raises(InputError) as caught:
        PrometheusSource().normalize(body, NOW)
    assert says in str(caught.value)


def test_detected_in_a_mixed_replay() -> None:
    assert detect(REAL, registry(plugins=False)).name == "prometheus"
    assert detect([{"service": "db", "summary": "x", "labels": {}}], registry(plugins=False)).name == "events"


# -- plain_body: the journalled intake's one-pass count accepts only what normalize accepts ------
_TEXT = st.one_of(st.text(max_size=6), st.sampled_from(["db", "x" * 300, "2026-11-22T06:00:00Z", "\x00"]))
_VALUE = st.one_of(_TEXT, st.integers(), st.none(), st.lists(st.text(max_size=2), max_size=1))
_KEYS = st.sampled_from(["alertname", "service", "instance", "job", "pod", "severity", "a"])
_TIME = st.sampled_from(["2026-11-22T06:00:00Z", "0001-01-01T00:00:00Z", "2026-11-22T08:00:00.5+02:00", "later", ""])


def _alert(value: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Alerts whose fields are mostly of the right type (``value``: what a field may be instead)."""
    return st.fixed_dictionaries(
        {"labels": st.one_of(st.dictionaries(_KEYS, _TEXT, min_size=1, max_size=4),
                             st.dictionaries(_KEYS, value, max_size=3))},
        optional={
            "annotations": st.one_of(st.dictionaries(st.sampled_from(["summary", "b"]), _TEXT, max_size=2), value),
            "startsAt": st.one_of(_TIME, value),
            "endsAt": st.one_of(_TIME, value),
            "generatorURL": st.one_of(_TEXT, value),
        },
    )


_ALERT = st.one_of(_alert(st.nothing()), _alert(_VALUE))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(_ALERT, max_size=4), st.lists(st.one_of(_ALERT, _VALUE), max_size=3), _VALUE))
def test_plain_body_counts_only_what_normalize_accepts(body: Any) -> None:
    counted = plain_body(body)
    try:
        events = PrometheusSource().normalize(body, NOW)
        refused = size_problem(events)
    except InputError as exc:
        events, refused = [], str(exc)
    if counted is not None:
        assert (refused, len(events)) == (None, counted)


@pytest.mark.parametrize(
    "body",
    [
        REAL,
        [{"labels": {"alertname": "Down", "note": "n" * 400}}],  # long, but in no stored field
        [{"labels": {"alertname": "Down"}, "startsAt": "0001-01-01T00:00:00Z"}],
        [],
    ],
)
def test_plain_body_counts_plain_bodies(body: Any) -> None:
    assert plain_body(body) == len(body) == len(PrometheusSource().normalize(body, NOW))


@pytest.mark.parametrize(
    "body",
    [
        [{"labels": {"alertname": "Down", "instance": "h" * 300}}],  # over the resource column
        [{"labels": {"a": "b"}, "annotations": None}],
        [{"labels": {"a": "b"}, "generatorURL": 1}],
        [{"labels": {"a": "b"}, "endsAt": "later"}],
        {"labels": {"a": "b"}},
    ],
)
def test_plain_body_leaves_the_unusual_to_normalize(body: Any) -> None:
    assert plain_body(body) is None
