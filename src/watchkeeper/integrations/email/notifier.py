"""Email over SMTP: one plain-text mail per incident change.

Every mail about one incident names ``<wk-incident-{id}@watchkeeper>`` in ``References`` (the mail
of the opening carries it as its ``Message-ID``), so mail clients thread them; each mail's own
``Message-ID`` derives from the outbox message, so a redelivery carries the same id.

Retries: a connection failure, a timeout and SMTP's transient replies (4xx) are retried, with
the same backoff as HTTP; permanent replies (5xx: a refused recipient, a failed login) are not.
The password never appears in an error: errors are redacted like every integration's.
"""

from __future__ import annotations

import random
import smtplib
import ssl
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from watchkeeper.integrations.base import Delivered, DeliveryError, EventKind, Message, Redactor
from watchkeeper.integrations.email.config import EmailConfig
from watchkeeper.integrations.http import Backoff

DOMAIN = "watchkeeper"
#: SMTP line endings; headers folded only past RFC 5322's hard limit (the default folds a long
#: subject right after "Subject:", which some clients show with a leading space)
MAIL_POLICY = policy.SMTP.clone(max_line_length=998)


def compose(message: Message, config: EmailConfig) -> EmailMessage:
    incident, cause, change = message.incident, message.payload.get("cause"), message.change
    mail = EmailMessage(policy=MAIL_POLICY)
    verb = message.event.value.replace("_", " ")
    mail["Subject"] = (f"[Watchkeeper] [{str(incident.get('severity', '')).upper()}] Incident #{message.incident_id} "
                       f"{verb}: {incident.get('title', '')}")[:250].replace("\n", " ").replace("\r", " ")
    mail["From"] = config.sender
    mail["To"] = ", ".join(config.to)
    mail["Date"] = formatdate(usegmt=True)
    thread = f"<wk-incident-{message.incident_id}@{DOMAIN}>"
    if message.event is EventKind.OPENED:
        mail["Message-ID"] = thread
    else:
        mail["Message-ID"] = f"<{message.idempotency_key}@{DOMAIN}>"
        mail["In-Reply-To"] = thread
        mail["References"] = thread
    mail["X-Watchkeeper-Delivery"] = message.idempotency_key
    lines = [f"Incident #{message.incident_id}: {incident.get('title', '')}",
             f"Status:   {incident.get('status')}",
             f"Severity: {incident.get('severity')}",
             f"Services: {', '.join(incident.get('services') or [])}",
             f"Change:   {change.get('kind')} by {change.get('actor')} at {change.get('at')}"]
    if cause:
        lines.append(f"Probable cause: {cause.get('component')} ({float(cause.get('confidence') or 0):.0%} confidence)")
    approval = message.payload.get("approval")
    if approval:
        lines.append(f"Runbook: {approval.get('runbook_id')} (risk {approval.get('risk')}, {approval.get('status')})")
    mail.set_content("\n".join(lines) + "\n")
    return mail


class EmailNotifier:
    def __init__(self, name: str, config: EmailConfig, *, sleep: Callable[[float], None] = time.sleep,
                 rand: Callable[[], float] = random.random, max_wait: float = 30.0, **_options: Any) -> None:
        self.name = name
        self.config = config
        self.redactor = Redactor(tuple(config.secrets()))
        self.sleep, self.rand, self.max_wait = sleep, rand, max_wait
        self.backoff = Backoff()
        self.waits: list[float] = []

    def close(self) -> None:
        pass

    def deliver(self, message: Message) -> Delivered:
        mail = compose(message, self.config)
        attempt = 0
        while True:
            try:
                self._send(mail)
                return Delivered(detail=f"sent to {len(self.config.to)} recipient(s)")
            except DeliveryError as error:
                if not error.retryable or attempt >= self.config.retries:
                    raise
                wait = self.backoff.delay(attempt, None, self.rand)
                if wait > self.max_wait:
                    raise
                self.waits.append(wait)
                self.sleep(wait)
                attempt += 1

    def _send(self, mail: EmailMessage) -> None:
        c = self.config
        where = f"{c.host}:{c.port}"
        try:
            smtp: smtplib.SMTP
            if c.tls:
                smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_seconds, context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_seconds)
            with smtp:
                if c.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if c.username is not None and c.password is not None:
                    smtp.login(c.username, c.password.get_secret_value())
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise self._error(f"{where} refused every recipient ({', '.join(map(str, codes))})",
                              retryable=all(400 <= code < 500 for code in codes)) from None
        except smtplib.SMTPResponseException as exc:
            error = exc.smtp_error
            text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
            raise self._error(f"{where} answered {exc.smtp_code} {text}", retryable=400 <= exc.smtp_code < 500,
                              status=exc.smtp_code) from None
        except TimeoutError as exc:
            raise self._error(f"no answer from {where} within {c.timeout_seconds:g} s ({type(exc).__name__})",
                              retryable=True) from None
        except (OSError, smtplib.SMTPException) as exc:  # refused, reset, disconnected, TLS
            raise self._error(f"cannot deliver through {where}: {type(exc).__name__}: {exc}", retryable=True) from None

    def _error(self, text: str, *, retryable: bool, status: int | None = None) -> DeliveryError:
        return DeliveryError(self.redactor.redact(f"{self.name}: {text}"), retryable=retryable, status=status)
