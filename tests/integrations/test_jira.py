"""Jira end to end against a local stand-in of its REST v3 API: issue, transitions, priority and
ADF comments on the wire; basic auth with email + API token; injected failures; the webhook
back (signed with the webhook secret, or an operator token), once per change, never our echo."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from conftest import Clock
from integrations.itsm_standins import Jira
from watchkeeper.integrations.config import IntegrationsConfig
from watchkeeper.integrations.jira.mapping import text_of
from watchkeeper.integrations.routing import Route
from watchkeeper.integrations.runtime import Integrations
from watchkeeper.lifecycle import Action
from watchkeeper.server import create_app
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.storage import audit
from watchkeeper.storage import itsm as itsm_store
from watchkeeper.storage import outbox as outbox_store

SECRET = "jira-webhook-s3cret-0123456789"
ACCOUNT = "5b10ac8d82e05b22cc7d4ef5"  # our integration account's id there


@pytest.fixture
def jira() -> Iterator[Jira]:
    stand = Jira().start()
    yield stand
    stand.stop()


@pytest.fixture
def app(make_service: Callable[..., Watchkeeper], sqlite_url: str, jira: Jira
        ) -> Iterator[tuple[TestClient, Watchkeeper, Integrations]]:
    target = {"type": "jira", "base_url": jira.url, "email": jira.email, "api_token": jira.api_token,
              "project": "OPS", "webhook_secret": SECRET, "account_id": ACCOUNT, "timeout_seconds": 2}
    config = IntegrationsConfig.model_validate({"targets": {"ops-jira": target}})
    wk = make_service(sqlite_url, integrations=config, routes=[Route.model_validate({"to": ["ops-jira"]})])
    application = create_app(wk, upgrade=False, responder=False, watch=False, rank=False)
    with TestClient(application) as client:
        yield client, wk, application.state.integrations


def ingest(wk: Watchkeeper, severity: str = "error") -> int:
    body = orjson.dumps({"service": "billing", "name": "QueueBacklog", "summary": "backlog above 10k",
                         "severity": severity})
    return wk.ingest("events", body, "application/json", "token:test").opened[0]


def ref(wk: Watchkeeper, incident_id: int) -> dict[str, Any]:
    with wk.db.read() as conn:
        found = outbox_store.get_ref(conn, "ops-jira", incident_id)
    assert found is not None
    return found


def signed(body: bytes) -> dict[str, str]:
    return {"X-Hub-Signature": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
            "Content-Type": "application/json", "X-Atlassian-Webhook-Identifier": "1ab2c3"}


def issue_updated(jira: Jira, key: str, items: list[dict[str, Any]], *, changelog: str = "10100",
                  account: str = "712020:beth", name: str = "Beth Anglin") -> bytes:
    issue = jira.issues[key]
    return orjson.dumps({"timestamp": 1764745800000, "webhookEvent": "jira:issue_updated",
                         "issue_event_type_name": "issue_generic",
                         "user": {"accountId": account, "displayName": name},
                         "issue": {"id": issue["id"], "key": key, "fields": issue["fields"]},
                         "changelog": {"id": changelog, "items": items}})


def test_issue_transitions_priority_and_comments_on_the_wire(app: tuple[TestClient, Watchkeeper, Integrations],
                                                             jira: Jira) -> None:
    _, wk, integrations = app
    incident = ingest(wk)
    assert integrations.delivery.drain() == 1
    [search, create] = jira.requests
    assert (search.method, search.path) == ("GET", "/rest/api/3/search/jql")
    assert create.headers["authorization"].startswith("Basic ") and create.headers["accept"] == "application/json"
    fields = create.json()["fields"]
    assert fields["project"] == {"key": "OPS"} and fields["issuetype"] == {"name": "Incident"}
    assert fields["priority"] == {"name": "High"} and fields["labels"] == ["watchkeeper", f"watchkeeper-{incident}"]
    assert "backlog above 10k" in text_of(fields["description"])
    key = ref(wk, incident)["key"]
    assert jira.issues[key]["fields"]["status"]["name"] == "To Do"

    wk.act(incident, Action.ACKNOWLEDGE, "token:alice", "looking")
    wk.act(incident, Action.RESOLVE, "token:alice", "drained the queue")
    assert integrations.delivery.drain() == 2
    assert jira.issues[key]["fields"]["status"]["name"] == "Done"
    transitions = [s.json()["transition"]["id"] for s in jira.calls("POST", "/transitions$")]
    assert transitions == ["11", "31"]
    comments = [text_of(c["body"]) for c in jira.comments[key]]
    assert comments[0].startswith("[Watchkeeper]") and "looking" in comments[0] and "drained the queue" in comments[1]
    assert ref(wk, incident)["sent"] == {"category": "done", "priority": "High"}


def test_bad_api_token_is_dead_and_never_shown(app: tuple[TestClient, Watchkeeper, Integrations],
                                               jira: Jira) -> None:
    _, wk, integrations = app
    jira.api_token = "rotated"
    ingest(wk)
    integrations.delivery.drain()
    with wk.db.read() as conn:
        [message] = outbox_store.messages(conn)
    assert message["status"] == "dead" and "HTTP 401" in message["last_error"]
    assert "ATATT-token-abc123" not in message["last_error"] and len(jira.requests) == 1


@pytest.mark.parametrize("fault", [503, (429, 2), "reset", ("slow", 3)])
def test_injected_failures_are_retried(app: tuple[TestClient, Watchkeeper, Integrations], jira: Jira,
                                       fault: Any) -> None:
    _, wk, integrations = app
    ingest(wk)
    jira.faults.append(fault)
    assert integrations.delivery.drain() == 1
    assert len(jira.issues) == 1
    waits = integrations.notifiers["ops-jira"].http.waits  # type: ignore[attr-defined]
    assert waits and (fault != (429, 2) or waits[0] >= 2.0)


def test_webhook_changes_come_back_once(app: tuple[TestClient, Watchkeeper, Integrations], jira: Jira) -> None:
    client, wk, integrations = app
    incident = ingest(wk)
    integrations.delivery.drain()
    key = ref(wk, incident)["key"]
    jira.set_status(jira.issues[key], "3")
    body = issue_updated(jira, key, [
        {"field": "status", "fieldtype": "jira", "from": "10000", "fromString": "To Do", "to": "3",
         "toString": "In Progress"},
        {"field": "assignee", "fieldtype": "jira", "from": None, "fromString": None, "to": "712020:beth",
         "toString": "Beth Anglin"}])
    url = "/api/v1/integrations/jira/webhook"
    got = client.post(url, content=body, headers=signed(body))
    assert got.status_code == 200, got.text
    assert got.json()["applied"] == 2
    assert client.post(url, content=body, headers=signed(body)).json()["applied"] == 0  # Jira's retry
    view = wk.incident(incident)
    assert (view["status"], view["assignee"]) == ("acknowledged", "Beth Anglin")
    assert next(e for e in view["timeline"] if e["kind"] == "incident.acknowledged")["actor"] == "jira:Beth Anglin"
    comment = orjson.dumps({"timestamp": 1764745900000, "webhookEvent": "comment_created",
                            "comment": {"id": "10200", "author": {"accountId": "712020:beth",
                                                                  "displayName": "Beth Anglin"},
                                        "body": {"type": "doc", "version": 1, "content": [
                                            {"type": "paragraph", "content": [
                                                {"type": "text", "text": "consumer scaled to 8"}]}]}},
                            "issue": {"id": jira.issues[key]["id"], "key": key,
                                      "fields": jira.issues[key]["fields"]}})
    assert client.post(url, content=comment, headers=signed(comment)).json()["applied"] == 1
    comments = [e["text"] for e in wk.incident(incident)["timeline"] if e["kind"] == "incident.commented"]
    assert comments == ["consumer scaled to 8"]
    calls = len(jira.requests)
    integrations.delivery.drain()  # the messages of those changes: nothing goes back to Jira
    assert len(jira.requests) == calls


def test_our_own_changes_in_the_webhook_are_not_changes(app: tuple[TestClient, Watchkeeper, Integrations],
                                                        jira: Jira) -> None:
    client, wk, integrations = app
    incident = ingest(wk)
    wk.act(incident, Action.RESOLVE, "token:alice", "done")
    integrations.delivery.drain()
    key = ref(wk, incident)["key"]
    with wk.db.read() as conn:
        before = [r.seq for r in audit.records(conn)]
    ours = issue_updated(jira, key, [{"field": "status", "toString": "Done"}], account=ACCOUNT, name="Watchkeeper")
    our_comment = orjson.dumps({"webhookEvent": "comment_created", "issue": {"id": jira.issues[key]["id"], "key": key,
                                                                             "fields": jira.issues[key]["fields"]},
                                "comment": {"id": "1", "author": {"accountId": ACCOUNT},
                                            "body": jira.comments[key][0]["body"]}})
    for body in (ours, our_comment):
        got = client.post("/api/v1/integrations/jira/webhook", content=body, headers=signed(body))
        assert got.status_code == 200 and got.json() == {"applied": 0, "results": []}
    with wk.db.read() as conn:
        assert [r.seq for r in audit.records(conn)] == before


def test_webhook_auth(app: tuple[TestClient, Watchkeeper, Integrations], jira: Jira) -> None:
    client, wk, integrations = app
    incident = ingest(wk)
    integrations.delivery.drain()
    key = ref(wk, incident)["key"]
    body = issue_updated(jira, key, [{"field": "assignee", "toString": "Beth Anglin"}])
    url = "/api/v1/integrations/jira/webhook"
    forged = {**signed(body), "X-Hub-Signature": "sha256=" + "0" * 64}
    assert client.post(url, content=body, headers=forged).status_code == 401
    tampered = body.replace(b"Beth Anglin", b"Mallory")
    assert client.post(url, content=tampered, headers=signed(body)).status_code == 401
    assert client.post(url, content=body, headers={"Content-Type": "application/json"}).status_code == 401
    viewer = {"Authorization": f"Bearer {wk.create_token(Role.VIEWER, 'v', 'test')}"}
    assert client.post(url, content=body, headers=viewer).status_code == 403
    operator = {"Authorization": f"Bearer {wk.create_token(Role.OPERATOR, 'automation', 'test')}"}
    got = client.post(url, content=body, headers=operator)  # Jira Automation's "Send web request"
    assert got.status_code == 200 and got.json()["applied"] == 1


def test_an_issue_we_did_not_make_changes_nothing(app: tuple[TestClient, Watchkeeper, Integrations],
                                                  jira: Jira) -> None:
    client, wk, _ = app
    incident = ingest(wk)
    forged = orjson.dumps({"webhookEvent": "jira:issue_updated", "user": {"accountId": "x"},
                           "issue": {"id": "99999", "key": "OPS-99", "fields": {
                               "labels": [f"watchkeeper-{incident}"],
                               "status": {"statusCategory": {"key": "done"}}}},
                           "changelog": {"id": "5", "items": [{"field": "status", "toString": "Done"}]}})
    got = client.post("/api/v1/integrations/jira/webhook", content=forged, headers=signed(forged))
    assert got.json()["results"][0]["outcome"] == "unlinked"
    assert wk.incident(incident)["status"] == "open"


@pytest.mark.parametrize(("body", "status"), [
    (b"{oops", 400), (b"[1]", 422), (b'{"webhookEvent": "jira:issue_updated", "issue": "OPS-1"}', 200),
    (b'{"webhookEvent": "jira:issue_updated", "issue": {"id": 1, "fields": {"labels": "x"}}, '
     b'"changelog": {"items": [{"field": "status"}]}}', 200),
    (b'{"webhookEvent": "comment_created", "issue": {"id": "1"}, "comment": {"id": "2", "body": [1, {"a": 1}]}}',
     200),
])
def test_hostile_webhook_bodies(app: tuple[TestClient, Watchkeeper, Integrations], body: bytes,
                                status: int) -> None:
    client, _, _ = app
    got = client.post("/api/v1/integrations/jira/webhook", content=body, headers=signed(body))
    assert got.status_code == status, got.text
    if status == 200:
        assert got.json()["applied"] == 0
    else:
        assert set(got.json()) == {"error", "status"}


def test_polling_brings_back_what_no_webhook_told_once_and_never_our_own(
        app: tuple[TestClient, Watchkeeper, Integrations], jira: Jira, clock: Clock) -> None:
    """The fallback: JQL ``updated >=`` a stored cursor; changelog entries and comments since then
    are applied once (a second poll reads them again and changes nothing); our account's
    transitions and our [Watchkeeper] comments never come back."""
    client, wk, integrations = app
    jira.now = wk.clock
    incident = ingest(wk)
    integrations.delivery.drain()
    key = ref(wk, incident)["key"]
    sync = client.app.state.itsm.jira["ops-jira"]  # type: ignore[attr-defined]
    assert sync.poll() == 0  # the issue we made is no change of theirs
    clock.advance(minutes=5)
    jira.human(key, status="3", assignee="Beth Anglin", comment="consumer scaled to 8")
    assert sync.poll() == 3
    view = wk.incident(incident)
    assert (view["status"], view["assignee"]) == ("acknowledged", "Beth Anglin")
    assert next(e for e in view["timeline"] if e["kind"] == "incident.acknowledged")["actor"] == "jira:Beth Anglin"
    assert [e["text"] for e in view["timeline"] if e["kind"] == "incident.commented"] == ["consumer scaled to 8"]
    assert sync.poll() == 0  # read again (the overlap): applied once
    jql = jira.searches[-1]["jql"][0]
    assert jql.startswith('labels = "watchkeeper" AND updated >= "') and jql.endswith("ORDER BY updated ASC")
    assert jira.searches[-1]["expand"] == ["changelog"]

    wk.act(incident, Action.RESOLVE, "token:alice", "fixed")
    integrations.delivery.drain()  # our account moves the issue to Done and comments [Watchkeeper] …
    assert jira.histories[key][-1]["author"]["accountId"] == ACCOUNT
    clock.advance(minutes=5)
    with wk.db.read() as conn:
        before = [r.seq for r in audit.records(conn)]
    assert sync.poll() == 0  # … which never comes back as a change
    with wk.db.read() as conn:
        assert [r.seq for r in audit.records(conn)] == before

    clock.advance(minutes=1)
    jira.human(key, status="10000", name="Carl Ops", account="712020:carl")  # back to To Do: reopened
    assert sync.poll() == 1
    assert wk.incident(incident)["status"] == "open"


def test_polling_an_unreachable_jira_logs_and_keeps_the_cursor(
        app: tuple[TestClient, Watchkeeper, Integrations], jira: Jira) -> None:
    client, wk, _integrations = app
    sync = client.app.state.itsm.jira["ops-jira"]  # type: ignore[attr-defined]
    jira.api_token = "rotated"  # our token no longer works: 401, not retried
    assert sync.poll() == 0
    assert sync.last_error is not None and "401" in sync.last_error
    assert "ATATT" not in sync.last_error
    with wk.db.read() as conn:
        assert itsm_store.cursor(conn, sync.cursor_name) is None
