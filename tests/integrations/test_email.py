"""Email against a real local SMTP server (aiosmtpd): the mail, threading headers, login, and the
conformance rules in SMTP's terms — transient replies (4xx) and dropped connections retried,
permanent ones (5xx) not, a slow server timed out, no password in any error."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import Message as Mail
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from integrations.test_conformance import Sleeps, sample_message
from watchkeeper.integrations.base import DeliveryError, EventKind
from watchkeeper.integrations.email.config import EmailConfig
from watchkeeper.integrations.email.notifier import EmailNotifier

PASSWORD = "m4il-S3cr3t-password-0123"


class Recorder:
    """The SMTP server's handler: records mails; plays scripted replies to DATA first."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.script: list[str | float] = []  # a reply ("451 …") or a delay in seconds

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, float):
                import asyncio

                await asyncio.sleep(step)
            else:
                return step
        self.mails.append(message_from_bytes(envelope.content, policy=policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


def _auth(_server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == b"watchkeeper" and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, Recorder]]:
    handler = Recorder()
    with socket.socket() as probe:  # aiosmtpd checks its own port at start: give it a free one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port, authenticator=_auth, auth_require_tls=False,
                            auth_required=False)
    controller.start()
    yield controller, handler
    controller.stop()


def notifier(controller: Controller, **overrides: Any) -> tuple[EmailNotifier, Sleeps]:
    config = EmailConfig.model_validate({
        "type": "email", "host": "127.0.0.1", "port": controller.port,
        "sender": "watchkeeper@example.com", "to": ["ops@example.com", "oncall@example.com"],
        "username": "watchkeeper", "password": PASSWORD, "timeout_seconds": 1.0, "retries": 2, **overrides})
    sleeps = Sleeps()
    return EmailNotifier("mail", config, sleep=sleeps, rand=lambda: 1.0), sleeps


def test_sends_a_threaded_mail_after_logging_in(smtp: tuple[Controller, Recorder]) -> None:
    controller, recorder = smtp
    mail, _ = notifier(controller)
    mail.deliver(sample_message("mail"))
    mail.deliver(sample_message("mail", EventKind.RESOLVED))
    opened, resolved = recorder.mails
    assert recorder.envelopes[0] == ("watchkeeper@example.com", ["ops@example.com", "oncall@example.com"])
    assert opened["Subject"] == "[Watchkeeper] [CRITICAL] Incident #7 opened: checkout p90 latency above 2 s"
    assert opened["Message-ID"] == "<wk-incident-7@watchkeeper>"
    assert resolved["In-Reply-To"] == "<wk-incident-7@watchkeeper>" and resolved["References"] == opened["Message-ID"]
    assert resolved["X-Watchkeeper-Delivery"] == "wk-outbox-41"
    body = opened.get_content()  # type: ignore[attr-defined]
    assert "Probable cause: payments (91% confidence)" in body and "Services: checkout" in body


@pytest.mark.parametrize("reply", ["421 service not available", "451 try again later", "452 out of space"])
def test_transient_replies_are_retried(smtp: tuple[Controller, Recorder], reply: str) -> None:
    controller, recorder = smtp
    recorder.script = [reply, reply]
    mail, sleeps = notifier(controller)
    mail.deliver(sample_message("mail"))
    assert len(recorder.mails) == 1 and sleeps == [0.5, 1.0]


@pytest.mark.parametrize("reply", ["550 mailbox unavailable", "554 transaction failed", "552 too big"])
def test_permanent_replies_are_not(smtp: tuple[Controller, Recorder], reply: str) -> None:
    controller, recorder = smtp
    recorder.script = [reply]
    mail, sleeps = notifier(controller)
    with pytest.raises(DeliveryError) as caught:
        mail.deliver(sample_message("mail"))
    assert not caught.value.retryable and caught.value.status == int(reply[:3]) and sleeps == []


def test_a_wrong_password_is_permanent_and_never_shown(smtp: tuple[Controller, Recorder]) -> None:
    controller, _ = smtp
    mail, _ = notifier(controller, password="wr0ng-" + PASSWORD)
    with pytest.raises(DeliveryError) as caught:
        mail.deliver(sample_message("mail"))
    assert not caught.value.retryable and caught.value.status == 535
    assert PASSWORD not in f"{caught.value!r} {caught.value.args}" and PASSWORD not in repr(mail.config)


def test_a_slow_server_times_out_and_is_retried(smtp: tuple[Controller, Recorder]) -> None:
    controller, recorder = smtp
    recorder.script = [2.5]  # DATA answered after the 1 s timeout
    mail, sleeps = notifier(controller)
    mail.deliver(sample_message("mail"))
    assert sleeps == [0.5] and len(recorder.mails) >= 1


def test_nothing_listening_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    config = EmailConfig(type="email", host="127.0.0.1", port=port, sender="w@example.com", to=["o@example.com"],
                         retries=0, timeout_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        EmailNotifier("mail", config).deliver(sample_message("mail"))
    assert caught.value.retryable and "cannot deliver" in str(caught.value)
    assert time.monotonic() - started < 5


def test_config_says_what_is_wrong() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="give both username and password"):
        EmailConfig(type="email", host="h", sender="a@b.c", to=["x@y.z"], username="u")
    with pytest.raises(ValidationError, match="exclude each other"):
        EmailConfig(type="email", host="h", sender="a@b.c", to=["x@y.z"], tls=True, starttls=True)
