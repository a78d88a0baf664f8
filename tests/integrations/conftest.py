"""Fixtures: stand-in vendor servers and a service whose settings route incidents to them."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from integrations import vendors
from integrations.itsm_standins import Jira, ServiceNow, Teams
from integrations.standins import StandIn
from watchkeeper.integrations.config import IntegrationsConfig
from watchkeeper.integrations.routing import Route
from watchkeeper.integrations.runtime import Integrations
from watchkeeper.service import Watchkeeper

PD_KEY = "R0ut1ngKeyS3cr3t0123456789abcdef"
SLACK_TOKEN = "xoxb-t0ken-S3cr3t-0123456789"
SLACK_SIGNING = "s1gning-S3cr3t-abcdef0123456789"
SLACK_CHANNEL = "C0WATCHKEEP"
HOOK_SECRET = "h00k-S3cr3t-0123456789abcdef"
SN_USER, SN_PASSWORD = "wk.integration", "Sn0w-S3cr3t-pass-0123456789"
JIRA_EMAIL, JIRA_TOKEN = "wk@acme.example", "ATATT-J1ra-S3cr3t-0123456789"
TEAMS_SIG = "T3ams-S1g-S3cr3t-0123456789"
#: the plain secrets, and the basic-auth headers made of them (a receiver may echo our headers)
SECRETS = (PD_KEY, SLACK_TOKEN, SLACK_SIGNING, HOOK_SECRET, SN_PASSWORD, JIRA_TOKEN, TEAMS_SIG,
           base64.b64encode(f"{SN_USER}:{SN_PASSWORD}".encode()).decode(),
           base64.b64encode(f"{JIRA_EMAIL}:{JIRA_TOKEN}".encode()).decode())


@pytest.fixture
def standins() -> Iterator[dict[str, Any]]:
    made = {"pagerduty": StandIn(*vendors.pagerduty(PD_KEY)),
            "slack": StandIn(*vendors.slack(SLACK_TOKEN, SLACK_CHANNEL)),
            "webhook": StandIn(*vendors.webhook(HOOK_SECRET)),
            "servicenow": ServiceNow(users={SN_USER: SN_PASSWORD}).start(),
            "jira": Jira(email=JIRA_EMAIL, api_token=JIRA_TOKEN).start(),
            "teams": Teams(sig=TEAMS_SIG).start()}
    yield made
    for stand in made.values():
        stand.close()


def targets(standins: dict[str, Any], **extra: dict[str, Any]) -> dict[str, Any]:
    """Targets of every kind pointing at the stand-ins (retries fast: tests never sleep long)."""
    return {
        "pd": {"type": "pagerduty", "routing_key": PD_KEY, "url": standins["pagerduty"].url + "/v2/enqueue",
               "timeout_seconds": 2},
        "chat": {"type": "slack", "bot_token": SLACK_TOKEN, "signing_secret": SLACK_SIGNING,
                 "channel": SLACK_CHANNEL, "api_url": standins["slack"].url + "/api", "timeout_seconds": 2,
                 "users": {"U0ALICE": {"name": "alice", "role": "approver"},
                           "U0BOB": {"name": "bob", "role": "approver"},
                           "U0VIEW": {"name": "victor", "role": "viewer"}}},
        "hook": {"type": "webhook", "url": standins["webhook"].url + "/hook", "secret": HOOK_SECRET,
                 "timeout_seconds": 2},
        "snow": {"type": "servicenow", "instance_url": standins["servicenow"].url, "username": SN_USER,
                 "password": SN_PASSWORD, "timeout_seconds": 2, "poll": False},
        "jira": {"type": "jira", "base_url": standins["jira"].url, "email": JIRA_EMAIL, "api_token": JIRA_TOKEN,
                 "project": "OPS", "timeout_seconds": 2},
        "teams": {"type": "teams", "webhook_url": f"{standins['teams'].url}/workflows/4f1e/triggers/manual/paths/"
                  f"invoke?api-version=2016-06-01&sig={TEAMS_SIG}", "timeout_seconds": 2},
        **extra,
    }


@pytest.fixture
def routed(make_service: Callable[..., Watchkeeper], sqlite_url: str, standins: dict[str, StandIn]
           ) -> Callable[..., Watchkeeper]:
    """A service (SQLite) routing every incident to the given targets (default: all three)."""

    def make(to: list[str] | None = None, url: str | None = None, outbox: dict[str, Any] | None = None,
             **overrides: Any) -> Watchkeeper:
        config = IntegrationsConfig.model_validate({"targets": targets(standins), "outbox": outbox or {}})
        routes = [Route.model_validate({"to": to or ["pd", "chat", "hook"]})]
        return make_service(url or sqlite_url, integrations=config, routes=routes, **overrides)

    return make


@pytest.fixture
def routed_any(routed: Callable[..., Watchkeeper], db_url: str) -> Callable[..., Watchkeeper]:
    """``routed`` on SQLite and on the real PostgreSQL."""

    def make(**kw: Any) -> Watchkeeper:
        return routed(url=db_url, **kw)

    return make


@pytest.fixture
def runtime() -> Iterator[Callable[[Watchkeeper], Integrations]]:
    """The service's integrations (notifiers that never really sleep), stopped after the test."""
    made: list[Integrations] = []

    def make(wk: Watchkeeper) -> Integrations:
        made.append(Integrations(wk, sleep=lambda _s: None))
        return made[-1]

    yield make
    for integrations in made:
        integrations.stop()
