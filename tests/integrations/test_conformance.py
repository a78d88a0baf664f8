"""The conformance suite every HTTP integration passes, against stand-ins that check its vendor's
wire format and authentication: retry on 429 (honouring ``Retry-After``) and 5xx with backoff, no
retry on other 4xx, timeouts, connection resets, and no secret in errors, logs, the audit log or
``/metrics``. Email's SMTP version of the same is in ``test_email.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import orjson
import pytest

from conftest import Api, Clock
from integrations.conftest import SECRETS, targets
from integrations.standins import Fault, StandIn
from watchkeeper.integrations import registry
from watchkeeper.integrations.base import DeliveryError, EventKind, Message, Notifier
from watchkeeper.integrations.config import IntegrationsConfig
from watchkeeper.integrations.runtime import Integrations
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.storage import audit
from watchkeeper.storage import outbox as store

#: target name in ``targets()`` -> the stand-in serving it
KINDS = {"pd": "pagerduty", "chat": "slack", "hook": "webhook", "snow": "servicenow", "jira": "jira",
         "teams": "teams"}


def sample_message(target: str, event: EventKind = EventKind.OPENED, ident: int = 7) -> Message:
    payload = {"incident": {"id": ident, "title": "checkout p90 latency above 2 s", "status": "open",
                            "severity": "critical", "services": ["checkout"], "labels": {"team": "shop"},
                            "assignee": None, "opened_at": "2026-11-22T06:00:00+00:00", "alert_count": 3},
               "change": {"kind": "incident.opened", "seq": 12, "actor": "token:alertmanager",
                          "at": "2026-11-22T06:00:00+00:00", "payload": {"id": ident}},
               "cause": {"component": "payments", "kind": "service", "confidence": 0.91, "model": "baro"},
               "approval": None}
    return Message(41, ident, target, event, payload, 0, datetime(2026, 11, 22, 6, 0, tzinfo=UTC))


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(params=sorted(KINDS))
def case(request: pytest.FixtureRequest, standins: dict[str, StandIn]) -> Iterator[tuple[Notifier, StandIn, Sleeps]]:
    """(notifier, its stand-in, the sleeps it took) for one integration; short timeout, 2 retries,
    jitter fixed at its maximum so waits are predictable."""
    name = request.param
    config = IntegrationsConfig.model_validate({"targets": targets(standins)})
    target = config.targets[name].model_copy(update={"timeout_seconds": 0.5, "retries": 2})
    sleeps = Sleeps()
    notifier = registry.build(name, target, sleep=sleeps, rand=lambda: 1.0)
    yield notifier, standins[KINDS[name]], sleeps
    notifier.close()


def test_delivers_in_the_vendors_format(case: tuple[Notifier, StandIn, Sleeps]) -> None:
    notifier, stand, sleeps = case
    notifier.deliver(sample_message(notifier.name))
    assert len(stand.accepted) >= 1 and len(stand.requests) == len(stand.accepted)  # the stand-in's checks held
    assert sleeps == []


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retries_429_and_5xx_with_backoff(case: tuple[Notifier, StandIn, Sleeps], status: int) -> None:
    notifier, stand, sleeps = case
    stand.fail(Fault(status), Fault(status))
    notifier.deliver(sample_message(notifier.name))
    assert len(stand.requests) == 2 + len(stand.accepted)
    assert sleeps == [0.5, 1.0]  # base 0.5 s doubling (jitter at its maximum)


def test_honours_retry_after(case: tuple[Notifier, StandIn, Sleeps]) -> None:
    notifier, stand, sleeps = case
    stand.fail(Fault(429, {"Retry-After": "3"}))
    notifier.deliver(sample_message(notifier.name))
    assert sleeps == [3.0]
    assert stand.accepted


def test_a_long_retry_after_goes_back_to_the_outbox(case: tuple[Notifier, StandIn, Sleeps]) -> None:
    notifier, stand, sleeps = case
    stand.fail(Fault(429, {"Retry-After": "120"}))
    with pytest.raises(DeliveryError) as caught:
        notifier.deliver(sample_message(notifier.name))
    assert caught.value.retryable and caught.value.retry_after == 120.0 and caught.value.status == 429
    assert sleeps == [] and len(stand.requests) == 1  # no thread blocked for two minutes


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_never_retries_other_4xx(case: tuple[Notifier, StandIn, Sleeps], status: int) -> None:
    notifier, stand, sleeps = case
    stand.fail(Fault(status, body=b'{"error": "no"}'))
    with pytest.raises(DeliveryError) as caught:
        notifier.deliver(sample_message(notifier.name))
    assert not caught.value.retryable and caught.value.status == status
    assert len(stand.requests) == 1 and sleeps == []
    assert f"HTTP {status}" in str(caught.value)


def test_gives_up_after_its_retries_and_says_retrying_may_help(case: tuple[Notifier, StandIn, Sleeps]) -> None:
    notifier, stand, _sleeps = case
    stand.fail(Fault(503), Fault(503), Fault(503))
    with pytest.raises(DeliveryError) as caught:
        notifier.deliver(sample_message(notifier.name))
    assert caught.value.retryable and len(stand.requests) == 3


def test_a_slow_receiver_times_out_and_is_retried(case: tuple[Notifier, StandIn, Sleeps]) -> None:
    notifier, stand, sleeps = case
    stand.fail(Fault(200, delay=1.5))  # longer than the 0.5 s timeout
    notifier.deliver(sample_message(notifier.name))
    assert len(stand.requests) == 2 + len(stand.accepted) - 1 and sleeps == [0.5]


def test_a_reset_connection_is_retried(case: tuple[Notifier, StandIn, Sleeps]) -> None:
    notifier, stand, sleeps = case
    stand.fail(Fault(reset=True))
    notifier.deliver(sample_message(notifier.name))
    assert stand.accepted and sleeps == [0.5]


def test_an_unreachable_receiver_is_retryable(case: tuple[Notifier, StandIn, Sleeps]) -> None:
    notifier, stand, _sleeps = case
    stand.close()  # nothing listens on the port any more
    with pytest.raises(DeliveryError) as caught:
        notifier.deliver(sample_message(notifier.name))
    assert caught.value.retryable and caught.value.status is None
    assert "cannot reach" in str(caught.value) or "no answer" in str(caught.value)


def test_no_secret_in_errors(case: tuple[Notifier, StandIn, Sleeps]) -> None:
    notifier, stand, _sleeps = case
    stand.fail(Fault(400, echo=True))  # the receiver echoes our request, secrets included
    with pytest.raises(DeliveryError) as caught:
        notifier.deliver(sample_message(notifier.name))
    text = f"{caught.value} {caught.value!r} {caught.value.args}"
    assert "you_sent" in text  # the echo is there, redacted
    for secret in SECRETS:
        assert secret not in text
    assert secret not in repr(notifier.config)  # type: ignore[attr-defined]


@pytest.mark.parametrize("target", sorted(KINDS))
def test_no_secret_reaches_logs_audit_or_metrics(
        routed: Callable[..., Watchkeeper], standins: dict[str, StandIn], clock: Clock, target: str,
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest) -> None:
    """Through the whole path: a receiver that echoes our request in a 400 (dead at once) and a
    500 (retried): the outbox's error, the audit log, the log lines and /metrics hold no secret."""
    wk = routed(to=[target])
    api = Api(wk)
    integrations: Integrations = api.client.app.state.integrations  # type: ignore[attr-defined]
    request.addfinalizer(integrations.stop)
    stand = standins[KINDS[target]]
    stand.fail(Fault(500, echo=True), Fault(500, echo=True), Fault(500, echo=True), Fault(400, echo=True))
    wk.ingest("events", orjson.dumps({"service": "checkout", "name": "Down", "summary": "checkout down", "severity": "critical"}),
              "application/json", "test")
    integrations.delivery.drain()  # 3 x 500: retry later
    clock.advance(hours=2)
    integrations.delivery.drain()  # 400: dead
    with wk.db.read() as conn:
        rows = store.messages(conn)
        records = list(audit.records(conn))
    assert [r["status"] for r in rows] == ["dead"] and "you_sent" in rows[0]["last_error"]
    metrics = api.client.get("/metrics").text
    assert f'watchkeeper_outbox_deliveries_total{{outcome="dead",target="{target}"}} 1.0' in metrics
    assert f'watchkeeper_outbox_messages{{status="dead",target="{target}"}} 1.0' in metrics
    out = capsys.readouterr()
    everything = " ".join([orjson.dumps(rows, default=str).decode(), metrics, out.out, out.err, caplog.text,
                           *(orjson.dumps(r.payload).decode() for r in records)])
    assert "outbox delivery failed" in everything  # the failure was logged ...
    for secret in SECRETS:
        assert secret not in everything  # ... without a secret
    viewer = {"Authorization": f"Bearer {api.tokens[Role.VIEWER]}"}
    listed = api.client.get("/api/v1/outbox", headers=viewer).text
    for secret in SECRETS:
        assert secret not in listed


def test_every_builtin_is_in_the_suite() -> None:
    assert set(registry._factories()) - {"email"} == set(KINDS.values())


