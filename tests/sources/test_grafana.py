"""Grafana unified-alerting webhook bodies, as documented for the webhook contact point."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from watchkeeper.errors import InputError
from watchkeeper.model import Event, Severity, Status
from watchkeeper.sources.base import fingerprint_of
from watchkeeper.sources.grafana import GrafanaSource

RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

#: The example body from Grafana's "Configure the webhook notifier for Alerting" page.
FIRING: dict[str, Any] = {
    "receiver": "My Super Webhook",
    "status": "firing",
    "orgId": 1,
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
            "annotations": {
                "description": "The system has high memory usage",
                "runbook_url": "https://myrunbook.com/runbook/1234",
                "summary": "This alert was triggered for zone us-1",
            },
            "startsAt": "2021-10-12T09:51:03.157076+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit",
            "fingerprint": "c6eadffa33fcdf37",
            "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana"
            "&matchers=alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"B": 44.23943737541908, "C": 1},
        },
        {
            "status": "firing",
            "labels": {"alertname": "High CPU usage", "team": "blue", "zone": "eu-1"},
            "annotations": {
                "description": "The system has high CPU usage",
                "runbook_url": "https://myrunbook.com/runbook/1234",
                "summary": "This alert was triggered for zone eu-1",
            },
            "startsAt": "2021-10-12T09:56:03.157076+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://play.grafana.org/alerting/d1rdpdv7k/edit",
            "fingerprint": "bc97ff14869b13e3",
            "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana"
            "&matchers=alertname%3DT1%2Cteam%3Dblue%2Czone%3Deu-1",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"B": 44.23943737541908, "C": 1},
        },
    ],
    "groupLabels": {},
    "commonLabels": {"team": "blue"},
    "commonAnnotations": {},
    "externalURL": "https://play.grafana.org/",
    "version": "1",
    "groupKey": "{}:{}",
    "truncatedAlerts": 0,
    "title": "[FIRING:2]  (blue)",
    "state": "alerting",
    "message": "**Firing**\n\nLabels:\n - alertname = T2\n - team = blue\n - zone = us-1\n",
}

#: The same group once the first alert resolved (Grafana 9.x still sent ``valueString``).
RESOLVED: dict[str, Any] = {
    "receiver": "ops-webhook",
    "status": "resolved",
    "orgId": 1,
    "alerts": [
        {
            "status": "resolved",
            "labels": {
                "alertname": "High memory usage",
                "grafana_folder": "Infra",
                "team": "blue",
                "zone": "us-1",
            },
            "annotations": {"summary": "This alert was triggered for zone us-1"},
            "startsAt": "2021-10-12T09:51:03.157076+02:00",
            "endsAt": "2021-10-12T10:01:03.157076+02:00",
            "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit",
            "fingerprint": "c6eadffa33fcdf37",
            "silenceURL": "https://play.grafana.org/alerting/silence/new",
            "dashboardURL": "",
            "panelURL": "",
            "valueString": "[ var='B' labels={} value=12.5 ]",
        }
    ],
    "groupLabels": {"alertname": "High memory usage"},
    "commonLabels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
    "commonAnnotations": {"summary": "This alert was triggered for zone us-1"},
    "externalURL": "https://play.grafana.org/",
    "version": "1",
    "groupKey": '{}/{alertname="High memory usage"}:{alertname="High memory usage"}',
    "truncatedAlerts": 0,
    "title": "[RESOLVED] High memory usage (blue us-1)",
    "state": "ok",
    "message": "**Resolved**\n\nLabels:\n - alertname = High memory usage\n",
}


def one_alert(**changes: Any) -> dict[str, Any]:
    """The documented firing body reduced to its first alert, with ``changes`` applied to it."""
    body = copy.deepcopy(FIRING)
    body["alerts"] = [{**body["alerts"][0], **changes}]
    return body


def without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


def normalize(body: Any) -> list[Event]:
    return GrafanaSource().normalize(body, RECEIVED)


def test_documented_firing_body_gives_one_event_per_alert() -> None:
    events = normalize(FIRING)

    assert [e.name for e in events] == ["High memory usage", "High CPU usage"]
    assert all(e.source == "grafana" and e.kind.value == "alert" for e in events)
    assert events[0].summary == "This alert was triggered for zone us-1"
    assert events[0].labels == {"alertname": "High memory usage", "team": "blue", "zone": "us-1"}
    assert events[0].starts_at == datetime(2021, 10, 12, 7, 51, 3, 157076, tzinfo=UTC)
    assert events[0].received_at == RECEIVED
    assert events[0].raw == FIRING["alerts"][0]


@pytest.mark.parametrize(
    ("body", "status", "ends_at"),
    [
        pytest.param(FIRING, Status.FIRING, None, id="firing-zero-endsAt-is-unset"),
        pytest.param(
            RESOLVED, Status.RESOLVED, datetime(2021, 10, 12, 8, 1, 3, 157076, tzinfo=UTC),
            id="resolved-endsAt-in-utc",
        ),
        pytest.param(one_alert(endsAt=None), Status.FIRING, None, id="null-endsAt"),
        pytest.param(
            {**FIRING, "alerts": [without(FIRING["alerts"][0], "endsAt")]},
            Status.FIRING, None, id="missing-endsAt",
        ),
    ],
)
def test_status_and_end_time(
    body: dict[str, Any], status: Status, ends_at: datetime | None
) -> None:
    event = normalize(body)[0]

    assert event.status is status
    assert event.ends_at == ends_at


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({}, "c6eadffa33fcdf37", id="grafana-fingerprint"),
        pytest.param(
            {"fingerprint": None},
            fingerprint_of(
                {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
                namespace="grafana",
            ),
            id="null-fingerprint-derived-from-labels",
        ),
        pytest.param(
            {"fingerprint": ""},
            fingerprint_of(
                {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
                namespace="grafana",
            ),
            id="empty-fingerprint-derived-from-labels",
        ),
    ],
)
def test_fingerprint(changes: dict[str, Any], expected: str) -> None:
    assert normalize(one_alert(**changes))[0].fingerprint == expected


def test_derived_fingerprint_is_namespaced_and_ignores_label_order() -> None:
    labels = {"alertname": "Down", "instance": "db-1:9100"}
    a = normalize(one_alert(fingerprint=None, labels=labels))[0]
    b = normalize(one_alert(fingerprint=None, labels=dict(reversed(labels.items()))))[0]

    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != fingerprint_of(labels)  # not Alertmanager's un-namespaced identity


def test_firing_and_resolved_of_one_alert_share_the_fingerprint() -> None:
    assert normalize(FIRING)[0].fingerprint == normalize(RESOLVED)[0].fingerprint


@pytest.mark.parametrize(
    ("labels", "service", "resource", "severity"),
    [
        pytest.param({"alertname": "X"}, "unknown", "", Severity.WARNING, id="no-hints"),
        pytest.param(
            {"alertname": "X", "service": "checkout", "instance": "10.0.0.7:9100",
             "severity": "critical"},
            "checkout", "10.0.0.7:9100", Severity.CRITICAL, id="service-instance-critical",
        ),
        pytest.param(
            {"alertname": "X", "job": "node", "app": "web", "pod": "web-5f7c9", "severity": "P2"},
            "web", "web-5f7c9", Severity.ERROR, id="app-beats-job-pod-p2",
        ),
        pytest.param(
            {"alertname": "X", "component": "kafka", "host": "k1", "severity": "info"},
            "kafka", "k1", Severity.INFO, id="component-host-info",
        ),
        pytest.param(
            {"alertname": "X", "service": "", "job": "api", "severity": "whatever"},
            "api", "", Severity.WARNING, id="empty-label-skipped-unknown-severity",
        ),
    ],
)
def test_service_resource_severity(
    labels: dict[str, str], service: str, resource: str, severity: Severity
) -> None:
    event = normalize(one_alert(labels=labels))[0]

    assert (event.service, event.resource, event.severity) == (service, resource, severity)


@pytest.mark.parametrize(
    ("annotations", "summary"),
    [
        pytest.param({"summary": "S", "description": "D"}, "S", id="summary"),
        pytest.param({"description": "D"}, "D", id="description"),
        pytest.param({}, "High memory usage", id="alertname"),
    ],
)
def test_summary(annotations: dict[str, str], summary: str) -> None:
    assert normalize(one_alert(annotations=annotations))[0].summary == summary


def test_no_alerts_gives_no_events() -> None:
    assert normalize({**FIRING, "alerts": []}) == []


def test_minimal_body_uses_defaults() -> None:
    body = {"status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": "A"},
                                            "startsAt": "2026-01-01T00:00:00Z"}]}

    [event] = normalize(body)

    assert (event.name, event.summary, event.service) == ("A", "A", "unknown")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(without(FIRING, "alerts"), "alerts", id="no-alerts"),
        pytest.param({**FIRING, "status": "pending"}, "status", id="bad-group-status"),
        pytest.param({**FIRING, "orgId": "main"}, "orgId", id="bad-orgId"),
        pytest.param({**FIRING, "version": "4"}, "version", id="alertmanager-version"),
        pytest.param({**FIRING, "alerts": {"a": 1}}, "alerts", id="alerts-not-a-list"),
        pytest.param(one_alert(status="alerting"), "alerts.0.status", id="bad-alert-status"),
        pytest.param(one_alert(labels={"team": 7}), "alerts.0.labels.team", id="non-string-label"),
        pytest.param(one_alert(labels=None), "alerts.0.labels", id="null-labels"),
        pytest.param(one_alert(startsAt="yesterday"), "alerts.0.startsAt", id="bad-startsAt"),
        pytest.param(one_alert(endsAt="soon"), "alerts.0.endsAt", id="bad-endsAt"),
        pytest.param(
            {**FIRING, "alerts": [{"status": "firing", "labels": {}}]},
            "alerts.0.startsAt", id="missing-startsAt",
        ),
        pytest.param([FIRING], "body", id="list-body"),
        pytest.param("firing", "body", id="string-body"),
    ],
)
def test_invalid_bodies_name_the_field(body: Any, field: str) -> None:
    with pytest.raises(InputError) as caught:
        normalize(body)

    assert caught.value.status == 422
    assert field in str(caught.value)


@pytest.mark.parametrize(
    ("payload", "accepted"),
    [
        pytest.param(FIRING, True, id="grafana-firing"),
        pytest.param(RESOLVED, True, id="grafana-resolved"),
        pytest.param({"version": "1", "alerts": []}, True, id="version-1-without-orgId"),
        pytest.param(
            {"version": "4", "status": "firing", "receiver": "web", "groupKey": "{}:{}",
             "truncatedAlerts": 0, "alerts": []},
            False, id="alertmanager",
        ),
        pytest.param({"orgId": 1, "title": "legacy", "state": "alerting"}, False, id="no-alerts"),
        pytest.param({"routing_key": "x", "event_action": "trigger"}, False, id="pagerduty"),
        pytest.param([FIRING], False, id="list"),
        pytest.param("x", False, id="string"),
    ],
)
def test_accepts(payload: Any, accepted: bool) -> None:
    assert GrafanaSource().accepts(payload) is accepted


def test_schema_is_published() -> None:
    schema = GrafanaSource.schema.model_json_schema()

    assert {"alerts", "status"} <= set(schema["required"])
    assert "orgId" in schema["properties"]
