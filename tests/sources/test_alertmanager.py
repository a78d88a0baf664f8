"""Alertmanager webhook v4: mapping, and the fast path agreeing with the pydantic reference."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.alertmanager import am_alert, am_webhook
from fixtures.paths import paths
from watchkeeper.errors import InputError
from watchkeeper.model import Severity, Status
from watchkeeper.sources.alertmanager import AlertmanagerSource, fast_normalize, validated_normalize

NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)

#: Exactly what Alertmanager 0.27 POSTs (Go's RFC3339Nano times, empty generatorURL allowed).
REAL = {
    "receiver": "wk", "status": "resolved",
    "alerts": [{
        "status": "resolved",
        "labels": {"alertname": "InstanceDown", "instance": "db-1:5432", "job": "postgres",
                   "service": "payments-db", "severity": "critical"},
        "annotations": {"summary": "db-1 is down"},
        "startsAt": "2026-11-22T06:52:06.123456789Z", "endsAt": "2026-11-22T06:58:36.5Z",
        "generatorURL": "", "fingerprint": "e63f6ea56086c8af",
    }],
    "groupLabels": {"alertname": "InstanceDown"}, "commonLabels": {"alertname": "InstanceDown"},
    "commonAnnotations": {}, "externalURL": "http://vm:19093", "version": "4",
    "groupKey": '{}:{alertname="InstanceDown"}', "truncatedAlerts": 0,
}


def test_real_body_takes_the_fast_path_and_maps() -> None:
    fast = fast_normalize(REAL, NOW)
    assert fast is not None
    [e] = fast
    assert (e.fingerprint, e.service, e.resource, e.name, e.severity, e.status) == (
        "e63f6ea56086c8af", "payments-db", "db-1:5432", "InstanceDown", Severity.CRITICAL, Status.RESOLVED)
    assert e.starts_at == datetime(2026, 11, 22, 6, 52, 6, 123456, tzinfo=UTC)
    assert e.ends_at == datetime(2026, 11, 22, 6, 58, 36, 500000, tzinfo=UTC)
    assert e.summary == "db-1 is down" and e.received_at == NOW
    assert fast == validated_normalize(REAL, NOW)


@pytest.mark.parametrize(
    ("labels", "service", "resource"),
    [({"alertname": "X"}, "unknown", ""), ({"alertname": "X", "job": "node", "app": "web", "pod": "web-1"}, "web", "web-1")],
)
def test_service_and_resource_fallbacks(labels: dict[str, str], service: str, resource: str) -> None:
    body = copy.deepcopy(REAL)
    body["alerts"][0]["labels"] = labels
    [e] = AlertmanagerSource().normalize(body, NOW)
    assert (e.service, e.resource) == (service, resource)


def test_unset_end_and_missing_fingerprint() -> None:
    body = am_webhook(am_alert("A", "db"))
    del body["alerts"][0]["fingerprint"]
    [e] = AlertmanagerSource().normalize(body, NOW)
    assert e.ends_at is None and len(e.fingerprint) == 16


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.update(version="3"), "version '3'"),
        (lambda b: b["alerts"][0].update(status="pending"), "alerts.0.status"),
        (lambda b: b["alerts"][0].update(startsAt="yesterday"), "alerts.0.startsAt"),
        (lambda b: b["alerts"][0]["labels"].update(severity=3), "alerts.0.labels.severity"),
        (lambda b: b.pop("alerts"), "alerts: Field required"),
    ],
)
def test_errors_name_the_field(mutate: Any, message: str) -> None:
    body = copy.deepcopy(REAL)
    mutate(body)
    with pytest.raises(InputError, match=message):
        AlertmanagerSource().normalize(body, NOW)


times = st.from_regex(
    r"\A\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,12})?)?(Z|z|[+-]\d{2}(:?\d{2})?)?\Z", fullmatch=True
) | st.text(max_size=30)
json_scalar = st.none() | st.booleans() | st.integers(-10, 10) | st.text(max_size=8) | times
json_value = st.recursive(json_scalar, lambda i: st.lists(i, max_size=3) | st.dictionaries(st.text(max_size=6), i, max_size=3), max_leaves=8)




@settings(max_examples=1500, deadline=None)
@given(data=st.data())
def test_fast_path_agrees_with_pydantic(data: st.DataObject) -> None:
    """Whatever the fast path accepts, pydantic accepts too, with identical events."""
    body = copy.deepcopy(REAL)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths(body)))
        if not path:
            continue
        *parent_path, key = path
        parent: Any = body
        for step in parent_path:
            parent = parent[step]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(key)
        else:
            parent[key] = data.draw(json_value)
    fast = fast_normalize(body, NOW)
    if fast is None:
        return
    assert fast == validated_normalize(body, NOW), body


@settings(max_examples=3000, deadline=None)
@given(value=times)
def test_fast_time_parsing_agrees_with_pydantic(value: str) -> None:
    body = copy.deepcopy(REAL)
    body["alerts"][0]["startsAt"] = value
    fast = fast_normalize(body, NOW)
    if fast is None:
        return
    assert fast == validated_normalize(body, NOW), value
