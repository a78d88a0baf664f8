"""PagerDuty Events API v2 alert events, as documented for ``POST /v2/enqueue``."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchkeeper.errors import InputError
from watchkeeper.model import Event, Severity, Status
from watchkeeper.sources.base import fingerprint_of
from watchkeeper.sources.pagerduty import PagerDutySource

RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
#: A 32-character integration key, as PagerDuty issues them. It must never reach an Event.
ROUTING_KEY = "R0b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4"

#: The documented trigger example (with a dedup_key).
TRIGGER: dict[str, Any] = {
    "payload": {
        "summary": "Example alert on host1.example.com",
        "timestamp": "2015-07-17T08:42:58.315+0000",
        "source": "monitoringtool:cloudvendor:central-region-dc-01:852559987:cluster/"
        "api-stats-prod-003",
        "severity": "info",
        "component": "postgres",
        "group": "prod-datapipe",
        "class": "deploy",
        "custom_details": {"ping time": "1500ms", "load avg": 0.75},
    },
    "routing_key": ROUTING_KEY,
    "dedup_key": "samplekeyhere",
    "images": [
        {
            "src": "https://www.pagerduty.com/wp-content/uploads/2016/05/pagerduty-logo-green.png",
            "href": "https://example.com/",
            "alt": "Example text",
        }
    ],
    "links": [{"href": "https://example.com/", "text": "Link text"}],
    "event_action": "trigger",
    "client": "Sample Monitoring Service",
    "client_url": "https://monitoring.example.com",
}
#: The documented acknowledge and resolve examples.
ACKNOWLEDGE: dict[str, Any] = {
    "routing_key": ROUTING_KEY, "dedup_key": "samplekeyhere", "event_action": "acknowledge",
}
RESOLVE: dict[str, Any] = {
    "routing_key": ROUTING_KEY, "dedup_key": "samplekeyhere", "event_action": "resolve",
}


def trigger(dedup_key: str | None = "samplekeyhere", **payload: Any) -> dict[str, Any]:
    """The documented trigger with ``payload`` fields replaced (``None`` removes one)."""
    body = copy.deepcopy(TRIGGER)
    body["payload"] = {k: v for k, v in {**body["payload"], **payload}.items() if v is not None}
    if dedup_key is None:
        del body["dedup_key"]
    else:
        body["dedup_key"] = dedup_key
    return body


def normalize(body: Any) -> list[Event]:
    return PagerDutySource().normalize(body, RECEIVED)


def test_documented_trigger() -> None:
    [event] = normalize(TRIGGER)

    assert event.source == "pagerduty"
    assert event.kind.value == "alert"
    assert event.status is Status.FIRING
    assert event.fingerprint == "samplekeyhere"
    assert event.name == "deploy"
    assert event.summary == "Example alert on host1.example.com"
    assert event.starts_at == datetime(2015, 7, 17, 8, 42, 58, 315000, tzinfo=UTC)
    assert event.ends_at is None
    assert event.received_at == RECEIVED
    assert event.labels == {
        "component": "postgres",
        "group": "prod-datapipe",
        "class": "deploy",
        "source": TRIGGER["payload"]["source"],
        "severity": "info",
        "ping time": "1500ms",
        "load avg": "0.75",
    }
    assert event.raw == {k: v for k, v in TRIGGER.items() if k != "routing_key"}


@pytest.mark.parametrize(
    ("body", "status", "action_label", "ends_at"),
    [
        pytest.param(TRIGGER, Status.FIRING, None, None, id="trigger"),
        pytest.param(ACKNOWLEDGE, Status.FIRING, "acknowledge", None, id="acknowledge"),
        pytest.param(RESOLVE, Status.RESOLVED, None, RECEIVED, id="resolve"),
        pytest.param(
            {**RESOLVE, "payload": TRIGGER["payload"]}, Status.RESOLVED, None,
            datetime(2015, 7, 17, 8, 42, 58, 315000, tzinfo=UTC), id="resolve-with-payload",
        ),
        pytest.param(
            {**ACKNOWLEDGE, "payload": TRIGGER["payload"]}, Status.FIRING, "acknowledge", None,
            id="acknowledge-with-payload",
        ),
    ],
)
def test_event_action_mapping(
    body: dict[str, Any], status: Status, action_label: str | None, ends_at: datetime | None
) -> None:
    [event] = normalize(body)

    assert event.status is status
    assert event.labels.get("pagerduty_action") == action_label
    assert event.ends_at == ends_at
    assert event.fingerprint == "samplekeyhere"


@pytest.mark.parametrize("body", [ACKNOWLEDGE, RESOLVE], ids=["acknowledge", "resolve"])
def test_follow_up_without_payload(body: dict[str, Any]) -> None:
    [event] = normalize(body)

    assert (event.service, event.resource, event.name) == ("unknown", "", "")
    assert event.severity is Severity.WARNING
    assert event.summary == f"PagerDuty {body['event_action']}: samplekeyhere"
    assert event.starts_at == RECEIVED


def test_trigger_acknowledge_resolve_share_the_fingerprint() -> None:
    events = normalize([TRIGGER, ACKNOWLEDGE, RESOLVE])

    assert [e.status for e in events] == [Status.FIRING, Status.FIRING, Status.RESOLVED]
    assert {e.fingerprint for e in events} == {"samplekeyhere"}


def derived(source: str, component: str, summary: str) -> str:
    return fingerprint_of(
        {"source": source, "component": component, "summary": summary}, namespace="pagerduty"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(trigger("disk-17"), "disk-17", id="dedup-key"),
        pytest.param(
            trigger(None, source="db-1", component="postgres", summary="Disk full"),
            derived("db-1", "postgres", "Disk full"), id="derived",
        ),
        pytest.param(
            trigger("", source="db-1", component="postgres", summary="Disk full"),
            derived("db-1", "postgres", "Disk full"), id="empty-dedup-key-derived",
        ),
        pytest.param(
            trigger(None, source="db-1", summary="Disk full", component=None),
            derived("db-1", "", "Disk full"), id="derived-without-component",
        ),
    ],
)
def test_fingerprint(body: dict[str, Any], expected: str) -> None:
    assert normalize(body)[0].fingerprint == expected


def test_derived_fingerprint_ignores_severity_timestamp_and_details() -> None:
    a = trigger(None, severity="warning", timestamp="2026-01-01T00:00:00Z")
    b = trigger(None, severity="critical", timestamp=None, custom_details={"x": 1})
    c = trigger(None, summary="Another alert on host1.example.com")

    [fa, fb, fc] = [normalize(body)[0].fingerprint for body in (a, b, c)]

    assert fa == fb
    assert fa != fc


@pytest.mark.parametrize(
    ("fields", "service", "resource"),
    [
        pytest.param(
            {"component": "postgres", "group": "prod-datapipe", "source": "db-1"},
            "postgres", "db-1", id="component",
        ),
        pytest.param(
            {"component": None, "group": "prod-datapipe", "source": "db-1"},
            "prod-datapipe", "db-1", id="group",
        ),
        pytest.param(
            {"component": None, "group": None, "source": "db-1"}, "db-1", "db-1", id="source",
        ),
        pytest.param(
            {"component": "", "group": "", "source": "db-1"}, "db-1", "db-1", id="empty-strings",
        ),
    ],
)
def test_service_and_resource(fields: dict[str, Any], service: str, resource: str) -> None:
    event = normalize(trigger(**fields))[0]

    assert (event.service, event.resource) == (service, resource)


@pytest.mark.parametrize(
    ("wire", "severity"),
    [
        ("critical", Severity.CRITICAL),
        ("error", Severity.ERROR),
        ("warning", Severity.WARNING),
        ("info", Severity.INFO),
    ],
)
def test_severity(wire: str, severity: Severity) -> None:
    event = normalize(trigger(severity=wire))[0]

    assert event.severity is severity
    assert event.labels["severity"] == wire


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        pytest.param(None, {}, id="none"),
        pytest.param(
            {"ping time": "1500ms", "load avg": 0.75},
            {"ping time": "1500ms", "load avg": "0.75"},
            id="doc",
        ),
        pytest.param(
            {"retries": 3, "canary": True, "paged": False},
            {"retries": "3", "canary": "true", "paged": "false"},
            id="scalars",
        ),
        pytest.param(
            {"nested": {"a": 1}, "list": [1, 2], "gone": None}, {}, id="non-scalars-dropped",
        ),
        pytest.param(
            {"severity": "low", "source": "spoofed", "region": "eu"}, {"region": "eu"},
            id="named-fields-win",
        ),
        pytest.param(
            {"routing_key": ROUTING_KEY, "copy": ROUTING_KEY, "pagerduty_action": "acknowledge"},
            {}, id="secret-and-action-dropped",
        ),
    ],
)
def test_custom_details_become_labels(
    details: dict[str, Any] | None, expected: dict[str, str]
) -> None:
    body = trigger(component=None, group=None, custom_details=details)
    body["payload"].pop("class")

    labels = normalize(body)[0].labels

    named = {"source": TRIGGER["payload"]["source"], "severity": "info"}
    assert labels == {**expected, **named}


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
        | st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=3), st.integers()),
        max_size=6,
    )
)
def test_any_custom_details_give_string_labels(details: dict[str, Any]) -> None:
    labels = normalize(trigger(custom_details=details))[0].labels

    assert all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
    assert labels["severity"] == "info"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(TRIGGER, id="trigger"),
        pytest.param(ACKNOWLEDGE, id="acknowledge"),
        pytest.param(RESOLVE, id="resolve"),
        pytest.param([TRIGGER, ACKNOWLEDGE, RESOLVE], id="list"),
        pytest.param(trigger(None), id="trigger-without-dedup-key"),
        pytest.param(
            trigger(custom_details={"routing_key": ROUTING_KEY, "env": [ROUTING_KEY]}),
            id="key-copied-into-details",
        ),
    ],
)
def test_routing_key_never_reaches_the_event(body: Any) -> None:
    original = copy.deepcopy(body)

    for event in normalize(body):
        assert "routing_key" not in event.raw
        text = json.dumps(event.raw) + repr(event) + json.dumps(dict(event.labels)) + event.summary
        assert ROUTING_KEY not in text
    assert body == original  # the caller's body is not modified


def test_copies_of_the_routing_key_are_redacted_in_raw() -> None:
    [event] = normalize(trigger(custom_details={"note": ROUTING_KEY, "ok": "fine"}))

    assert event.raw["payload"]["custom_details"] == {"note": "[redacted]", "ok": "fine"}
    assert "note" not in event.labels


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({**TRIGGER, "event_action": "escalate"}, id="bad-action"),
        pytest.param({**TRIGGER, "payload": {"summary": 5}}, id="bad-payload"),
        pytest.param({**ACKNOWLEDGE, "dedup_key": None}, id="missing-dedup-key"),
        pytest.param({**TRIGGER, "routing_key": 12345}, id="bad-routing-key"),
    ],
)
def test_routing_key_never_reaches_error_messages(body: dict[str, Any]) -> None:
    with pytest.raises(InputError) as caught:
        normalize(body)

    assert ROUTING_KEY not in str(caught.value)
    assert "12345" not in str(caught.value)


def test_timestamp_defaults_to_received_and_is_utc() -> None:
    no_ts = normalize(trigger(timestamp=None))[0]
    offset = normalize(trigger(timestamp="2026-02-01T10:00:00+01:00"))[0]

    assert no_ts.starts_at == RECEIVED
    assert offset.starts_at == datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
    assert offset.starts_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({k: v for k, v in TRIGGER.items() if k != "event_action"}, "event_action",
                     id="missing-event-action"),
        pytest.param(
            {**TRIGGER, "event_action": "escalate"}, "event_action", id="bad-event-action",
        ),
        pytest.param({k: v for k, v in TRIGGER.items() if k != "payload"}, "payload",
                     id="trigger-without-payload"),
        pytest.param({**TRIGGER, "payload": None}, "payload", id="trigger-null-payload"),
        pytest.param({k: v for k, v in ACKNOWLEDGE.items() if k != "dedup_key"}, "dedup_key",
                     id="acknowledge-without-dedup-key"),
        pytest.param({**RESOLVE, "dedup_key": ""}, "dedup_key", id="resolve-empty-dedup-key"),
        pytest.param({**TRIGGER, "dedup_key": "k" * 256}, "dedup_key", id="dedup-key-too-long"),
        pytest.param(trigger(summary=None), "payload.summary", id="missing-summary"),
        pytest.param(trigger(summary=""), "payload.summary", id="empty-summary"),
        pytest.param(trigger(summary="x" * 1025), "payload.summary", id="summary-too-long"),
        pytest.param(trigger(source=None), "payload.source", id="missing-source"),
        pytest.param(trigger(severity=None), "payload.severity", id="missing-severity"),
        pytest.param(trigger(severity="high"), "payload.severity", id="bad-severity"),
        pytest.param(trigger(severity="CRITICAL"), "payload.severity", id="uppercase-severity"),
        pytest.param(trigger(timestamp="last tuesday"), "payload.timestamp", id="bad-timestamp"),
        pytest.param(trigger(custom_details="text"), "payload.custom_details", id="details-text"),
        pytest.param({**RESOLVE, "payload": {"summary": "x"}}, "payload.source",
                     id="follow-up-payload-is-validated"),
        pytest.param({**TRIGGER, "links": "https://x"}, "links", id="bad-links"),
        pytest.param([TRIGGER, {**RESOLVE, "event_action": "close"}], "1.event_action",
                     id="list-item-action"),
        pytest.param([TRIGGER, {"routing_key": ROUTING_KEY, "event_action": "resolve"}],
                     "1.dedup_key", id="list-item-dedup-key"),
        pytest.param([{**TRIGGER, "payload": None}], "0.payload", id="list-item-payload"),
        pytest.param([], "empty", id="empty-list"),
        pytest.param("trigger", "body", id="string-body"),
    ],
)
def test_invalid_bodies_name_the_field(body: Any, field: str) -> None:
    with pytest.raises(InputError) as caught:
        normalize(body)

    assert caught.value.status == 422
    assert field in str(caught.value)


def test_list_body_gives_one_event_each_in_order() -> None:
    body = [trigger("a"), trigger("b", severity="critical"), {**RESOLVE, "dedup_key": "a"}]

    events = normalize(body)

    assert [(e.fingerprint, e.status, e.severity) for e in events] == [
        ("a", Status.FIRING, Severity.INFO),
        ("b", Status.FIRING, Severity.CRITICAL),
        ("a", Status.RESOLVED, Severity.WARNING),
    ]


@pytest.mark.parametrize(
    ("payload", "accepted"),
    [
        pytest.param(TRIGGER, True, id="trigger"),
        pytest.param(RESOLVE, True, id="resolve"),
        pytest.param([TRIGGER, ACKNOWLEDGE], True, id="list"),
        pytest.param([], False, id="empty-list"),
        pytest.param([TRIGGER, {"summary": "x", "service": "db"}], False, id="mixed-list"),
        pytest.param({"summary": "x", "service": "db"}, False, id="watchkeeper-event"),
        pytest.param({"version": "4", "receiver": "x", "alerts": []}, False, id="alertmanager"),
        pytest.param({"version": "1", "orgId": 1, "alerts": []}, False, id="grafana"),
        pytest.param("trigger", False, id="string"),
    ],
)
def test_accepts(payload: Any, accepted: bool) -> None:
    assert PagerDutySource().accepts(payload) is accepted


def test_schema_is_published_without_exposing_secrets() -> None:
    schema = json.dumps(PagerDutySource.schema.model_json_schema())

    assert "event_action" in schema
    assert "routing_key" in schema
    assert ROUTING_KEY not in schema
