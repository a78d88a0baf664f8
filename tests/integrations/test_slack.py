"""Slack end to end: an incident with a pending approval is posted to the Slack stand-in; a correctly
signed click approves it through the same service call as the API (four-eyes holds), the runbook
runs, the message is updated and the thread told; stale, badly signed, replayed and unmapped
clicks do nothing (refusals audited)."""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
import yaml

from conftest import Api
from integrations.conftest import SLACK_SIGNING
from integrations.standins import StandIn
from watchkeeper.integrations.runtime import Integrations
from watchkeeper.integrations.slack.interactivity import signature, verify
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.storage import audit

SAMPLES = Path(__file__).parent / "samples"
CLICK = orjson.loads((SAMPLES / "slack_block_actions.json").read_bytes())
PATH = "/api/v1/integrations/slack/interactivity"


def runbook(marker: Path, risk: str = "low") -> dict[str, Any]:
    return {"id": "restart", "title": "Restart", "risk": risk, "autonomy": "approve",
            "selector": {"alertnames": ["Down"]},
            "steps": [{"name": "go", "command": {"argv": [
                sys.executable, "-c", f"open({str(marker)!r}, 'a').write('ran\\n')"]}}]}


@pytest.fixture
def hooks() -> Iterator[StandIn]:
    """Slack's response_url endpoint (ephemeral replies land here)."""
    stand = StandIn(lambda _seen: None, lambda _seen: (200, {"Content-Type": "text/plain"}, b"ok"))
    yield stand
    stand.close()


@pytest.fixture
def slack_app(routed: Callable[..., Watchkeeper], tmp_path: Path, hooks: StandIn, request: pytest.FixtureRequest
              ) -> Callable[..., tuple[Api, Integrations, Path]]:
    def make(risk: str = "low") -> tuple[Api, Integrations, Path]:
        directory = tmp_path / "runbooks"
        directory.mkdir(exist_ok=True)
        marker = tmp_path / "ran.txt"
        (directory / "restart.yaml").write_text(yaml.safe_dump(runbook(marker, risk)))
        wk = routed(to=["chat"], runbooks_dir=directory)
        api = Api(wk)
        integrations: Integrations = api.client.app.state.integrations  # type: ignore[attr-defined]
        integrations.response_hooks = (hooks.url,)
        request.addfinalizer(integrations.stop)
        return api, integrations, marker

    return make


def fire(api: Api) -> int:
    r = api.client.post("/api/v1/ingest/events", headers={**api.headers(Role.INGEST), "Content-Type": "application/json"},
                        content=orjson.dumps({"service": "web", "name": "Down", "summary": "web down"}))
    assert r.status_code == 202, r.text
    return int(r.json()["incidents"][0])


def click_body(action: str, value: str, user: str = "U0ALICE", action_ts: str | None = None,
               response_url: str = "") -> bytes:
    doc = copy.deepcopy(CLICK)
    doc["user"]["id"] = user
    doc["actions"][0].update(action_id=action, value=value, action_ts=action_ts or f"{time.time():.6f}")
    doc["response_url"] = response_url
    return urlencode({"payload": orjson.dumps(doc).decode()}).encode()


def signed(raw: bytes, *, age: float = 0.0, secret: str = SLACK_SIGNING) -> dict[str, str]:
    stamp = str(int(time.time() - age))
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature(secret, stamp, raw)}


def slack_calls(stand: StandIn) -> list[tuple[str, dict[str, Any]]]:
    return [(s.path.rsplit("/", 1)[1], s.json()) for s in stand.accepted]


def buttons(doc: dict[str, Any]) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in doc.get("blocks", []) if b["type"] == "actions" for e in b["elements"]}


def kinds(wk: Watchkeeper) -> list[tuple[str, str]]:
    with wk.db.read() as conn:
        return [(r.kind, r.actor) for r in audit.records(conn)]


def test_slacks_documented_signature_example() -> None:
    lines = [line for line in (SAMPLES / "slack_signature.txt").read_text().splitlines() if not line.startswith("#")]
    secret, stamp, body, expected = lines
    assert signature(secret, stamp, body.encode()) == expected
    headers = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": expected}
    assert verify(["other", secret], headers, body.encode(), now=int(stamp) + 299) == 1


def test_approve_from_slack_runs_the_runbook(slack_app: Callable[..., tuple[Api, Integrations, Path]],
                                             standins: dict[str, StandIn], hooks: StandIn) -> None:
    api, integrations, marker = slack_app()
    wk, slack = api.service, standins["slack"]
    incident = fire(api)
    wk.governance.respond()  # the policy asks for an approval
    integrations.delivery.drain()
    calls = slack_calls(slack)
    assert [m for m, _ in calls] == ["chat.postMessage", "chat.update", "chat.postMessage"]
    root_ts = slack.accepted[0]  # the incident's message; its ts is kept for the updates
    posted = calls[0][1]
    assert posted["channel"] == "C0WATCHKEEP" and f"Incident #{incident}" in posted["text"]
    [approval] = wk.governance.approvals()
    update = calls[1][1]
    assert buttons(update) == {"wk_approve": str(approval["id"]), "wk_reject": str(approval["id"]),
                               "wk_acknowledge": str(incident)}
    assert "Proposed runbook:* `restart`" in orjson.dumps(update).decode()
    assert calls[2][1]["thread_ts"] == update["ts"]  # the update is told in the message's thread
    assert root_ts.path.endswith("chat.postMessage")

    raw = click_body("wk_approve", str(approval["id"]), response_url=hooks.url + "/actions/1")
    started = time.monotonic()
    answer = api.client.post(PATH, content=raw, headers=signed(raw))
    assert answer.status_code == 200, answer.text
    assert time.monotonic() - started < 3.0  # Slack's limit (the work runs after the answer)
    assert [s.json()["text"] for s in hooks.accepted] == [f"alice approved approval #{approval['id']}: now approved."]
    assert hooks.accepted[0].json()["response_type"] == "ephemeral"
    assert ("approval.approved", "slack:alice") in kinds(wk) and ("slack.click", "system:slack") in kinds(wk)

    wk.governance.work()  # the worker runs the approved runbook
    assert marker.read_text() == "ran\n"
    integrations.delivery.drain()
    later = slack_calls(slack)[3:]
    updates = [doc for method, doc in later if method == "chat.update"]
    assert updates and "wk_approve" not in buttons(updates[0])  # no more buttons once decided
    assert "approved (last vote by slack:alice)" in orjson.dumps(updates[0]).decode()
    thread = [doc["text"] for method, doc in later if method == "chat.postMessage"]
    assert any("finished: succeeded" in t for t in thread), thread
    assert all(doc.get("thread_ts") == update["ts"] for method, doc in later if method == "chat.postMessage")


def test_the_answer_comes_before_the_work(slack_app: Callable[..., tuple[Api, Integrations, Path]]) -> None:
    api, integrations, _ = slack_app()
    fire(api)
    api.service.governance.respond()
    [approval] = api.service.governance.approvals()
    raw = click_body("wk_approve", str(approval["id"]))
    answer = integrations.slack_click(signed(raw), raw)
    assert answer.later is not None
    assert ("approval.voted", "slack:alice") not in kinds(api.service)  # answered, nothing done yet
    answer.later()
    assert ("approval.voted", "slack:alice") in kinds(api.service)


@pytest.mark.parametrize(("age", "secret", "reason"), [
    (301, SLACK_SIGNING, "stale_timestamp"),
    (-301, SLACK_SIGNING, "stale_timestamp"),
    (0, "not-the-signing-secret", "bad_signature"),
])
def test_stale_or_badly_signed_clicks_are_refused_and_audited(
        slack_app: Callable[..., tuple[Api, Integrations, Path]], age: float, secret: str, reason: str) -> None:
    api, _, marker = slack_app()
    fire(api)
    api.service.governance.respond()
    [approval] = api.service.governance.approvals()
    raw = click_body("wk_approve", str(approval["id"]))
    refused = api.client.post(PATH, content=raw, headers=signed(raw, age=age, secret=secret))
    assert refused.status_code == 401 and refused.json()["status"] == 401
    assert "replay" in refused.json()["error"] or "does not match" in refused.json()["error"]
    with api.service.db.read() as conn:
        audited = [r.payload for r in audit.records(conn) if r.kind == "slack.refused"]
    assert [a["reason"] for a in audited] == [reason]
    assert api.service.governance.approvals()[0]["status"] == "pending" and not marker.exists()
    for secret_ in (SLACK_SIGNING,):
        assert secret_ not in orjson.dumps(audited).decode()


def test_a_signature_over_another_body_is_refused(slack_app: Callable[..., tuple[Api, Integrations, Path]]) -> None:
    api, _, _ = slack_app()
    raw = click_body("wk_approve", "1")
    headers = signed(raw)
    tampered = raw.replace(b"U0ALICE", b"U0BOB")
    assert api.client.post(PATH, content=tampered, headers=headers).status_code == 401
    no_headers = api.client.post(PATH, content=raw, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert no_headers.status_code == 401


def test_slacks_retries_are_taken_once(slack_app: Callable[..., tuple[Api, Integrations, Path]],
                                       hooks: StandIn) -> None:
    api, _, _ = slack_app()
    fire(api)
    api.service.governance.respond()
    [approval] = api.service.governance.approvals()
    raw = click_body("wk_approve", str(approval["id"]), response_url=hooks.url + "/a")
    for retry in range(3):
        headers = {**signed(raw), **({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
                                     if retry else {})}
        assert api.client.post(PATH, content=raw, headers=headers).status_code == 200
    votes = [k for k in kinds(api.service) if k[0] == "approval.voted"]
    assert votes == [("approval.voted", "slack:alice")] and len(hooks.accepted) == 1


def test_unmapped_users_get_a_clear_message_and_nothing_happens(
        slack_app: Callable[..., tuple[Api, Integrations, Path]], hooks: StandIn) -> None:
    api, _, _ = slack_app()
    fire(api)
    api.service.governance.respond()
    [approval] = api.service.governance.approvals()
    raw = click_body("wk_approve", str(approval["id"]), user="U0STRANGER", response_url=hooks.url + "/a")
    assert api.client.post(PATH, content=raw, headers=signed(raw)).status_code == 200
    [reply] = [s.json() for s in hooks.accepted]
    assert reply["response_type"] == "ephemeral" and "U0STRANGER" in reply["text"]
    assert "not mapped to a Watchkeeper user, so nothing was done" in reply["text"]
    assert api.service.governance.approvals()[0]["status"] == "pending"
    assert ("slack.unmapped", "system:slack") in kinds(api.service)


def test_roles_hold_in_slack(slack_app: Callable[..., tuple[Api, Integrations, Path]], hooks: StandIn) -> None:
    api, _, _ = slack_app()
    incident = fire(api)
    api.service.governance.respond()
    [approval] = api.service.governance.approvals()
    raw = click_body("wk_approve", str(approval["id"]), user="U0VIEW", response_url=hooks.url + "/a")
    assert api.client.post(PATH, content=raw, headers=signed(raw)).status_code == 200
    assert "victor has role viewer, which may not approve" in hooks.accepted[-1].json()["text"]
    assert api.service.governance.approvals()[0]["status"] == "pending"
    ack = click_body("wk_acknowledge", str(incident), user="U0BOB", response_url=hooks.url + "/a")
    assert api.client.post(PATH, content=ack, headers=signed(ack)).status_code == 200
    assert api.service.incident(incident)["status"] == "acknowledged"
    assert ("incident.acknowledged", "slack:bob") in kinds(api.service)


def test_four_eyes_holds_from_slack(slack_app: Callable[..., tuple[Api, Integrations, Path]], hooks: StandIn) -> None:
    api, _, marker = slack_app(risk="high")
    incident = fire(api)
    alice = api.service.create_token(Role.APPROVER, "alice", "test")
    requested = api.client.post("/api/v1/runbooks/restart/run", headers={"Authorization": f"Bearer {alice}"},
                                json={"incident": incident})
    approval_id = requested.json()["approval_id"]
    raw = click_body("wk_approve", str(approval_id), response_url=hooks.url + "/a")  # alice again, from Slack
    assert api.client.post(PATH, content=raw, headers=signed(raw)).status_code == 200
    assert "Nothing was done" in hooks.accepted[-1].json()["text"]
    assert "cannot approve" in hooks.accepted[-1].json()["text"]
    bob = click_body("wk_approve", str(approval_id), user="U0BOB", response_url=hooks.url + "/a")
    assert api.client.post(PATH, content=bob, headers=signed(bob)).status_code == 200
    assert "bob approved" in hooks.accepted[-1].json()["text"]
    api.service.governance.work()
    assert marker.exists()


@pytest.mark.parametrize("raw", [b"payload=not-json", b"nothing=here", b"\xff\xfe", b"payload=%5B%5D",
                                 b'payload={"type":"block_actions","actions":[]}'])
def test_hostile_but_signed_bodies_are_400(slack_app: Callable[..., tuple[Api, Integrations, Path]],
                                           raw: bytes) -> None:
    api, _, _ = slack_app()
    answer = api.client.post(PATH, content=raw, headers=signed(raw))
    assert answer.status_code == 400 and answer.json()["status"] == 400


def test_response_url_elsewhere_than_slack_is_never_called(
        slack_app: Callable[..., tuple[Api, Integrations, Path]], standins: dict[str, StandIn]) -> None:
    api, _, _ = slack_app()
    target = standins["webhook"]
    raw = click_body("wk_approve", "1", user="U0STRANGER", response_url=target.url + "/steal")
    assert api.client.post(PATH, content=raw, headers=signed(raw)).status_code == 200
    assert target.requests == []


def test_an_oversized_body_is_413(slack_app: Callable[..., tuple[Api, Integrations, Path]]) -> None:
    api, _, _ = slack_app()
    raw = b"payload=" + b"x" * 70_000
    assert api.client.post(PATH, content=raw, headers=signed(raw)).status_code == 413




def test_alert_text_cannot_ping_the_channel(standins: dict[str, StandIn]) -> None:
    from integrations.conftest import targets
    from integrations.test_conformance import sample_message
    from watchkeeper.integrations import registry
    from watchkeeper.integrations.config import IntegrationsConfig

    config = IntegrationsConfig.model_validate({"targets": targets(standins)})
    notifier = registry.build("chat", config.targets["chat"])
    message = sample_message("chat")
    hostile = type(message)(message.id, message.incident_id, "chat", message.event,
                            {**message.payload, "incident": {**message.incident, "title": "<!channel> <https://x|y>"},
                             "cause": {"component": "<!here>", "kind": "service", "confidence": 0.5}})
    try:
        notifier.deliver(hostile)
    finally:
        notifier.close()
    sent = standins["slack"].accepted[0].json()
    mrkdwn = [sent["text"]] + [f["text"] for b in sent["blocks"] if b["type"] == "section"
                               for f in ([b["text"]] if "text" in b else b["fields"])]
    assert all("<!" not in text for text in mrkdwn) and "&lt;!channel&gt;" in sent["text"]
