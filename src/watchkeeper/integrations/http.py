"""The one HTTP delivery helper every HTTP integration uses.

- timeouts on connect, read, write and pool (``timeout_seconds``);
- a retry on 429, on 5xx, on a timeout and on a connection failure (refused, reset), with
  exponential backoff and full jitter, waiting at least what ``Retry-After`` asks;
- no retry on any other 4xx (the request itself is wrong: sending it again cannot help);
- every error message redacted: no secret (token, routing key, signing secret, a URL holding a
  key) reaches a log, an exception, the audit log or a metric.

When the receiver asks for a longer wait than ``max_wait`` seconds, the helper does not sleep on
the delivery thread: it raises a retryable :class:`DeliveryError` carrying ``retry_after``, and
the outbox schedules the next attempt that much later.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from watchkeeper.integrations.base import DeliveryError, Redactor, short

#: Statuses worth another try: rate limited, or the receiver's own trouble.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter: attempt ``n`` (0-based) waits a random time in
    ``[0, min(cap, base * 2**n)]``, but never less than the receiver's ``Retry-After``.

    >>> b = Backoff(base=1.0, cap=8.0)
    >>> b.delay(0, rand=lambda: 1.0), b.delay(3, rand=lambda: 1.0), b.delay(10, rand=lambda: 1.0)
    (1.0, 8.0, 8.0)
    >>> b.delay(0, retry_after=5.0, rand=lambda: 0.0)
    5.0
    """

    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None,
              rand: Callable[[], float] = random.random) -> float:
        jittered = rand() * min(self.cap, self.base * 2.0 ** min(attempt, 32))
        return float(max(jittered, retry_after or 0.0))


def retry_after(response: httpx.Response, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """Seconds the receiver asks us to wait (``Retry-After``: delta-seconds or an HTTP date).

    >>> retry_after(httpx.Response(429, headers={"Retry-After": "7"}))
    7.0
    >>> retry_after(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    True
    """
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


def where(url: str) -> str:
    """The part of a URL an error may show: scheme, host and port — never the path or query,
    which often hold a key (Slack and Teams webhook URLs are secrets).

    >>> where("https://hooks.slack.com/services/T000/B000/XXXX?x=1")
    'https://hooks.slack.com'
    """
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


@dataclass
class HttpSender:
    """Sends one request with the retry rules above. ``sleep`` and ``rand`` are injected so
    tests run in no time and are repeatable."""

    name: str
    redactor: Redactor = field(default_factory=Redactor)
    timeout_seconds: float = 10.0
    retries: int = 2
    backoff: Backoff = field(default_factory=Backoff)
    max_wait: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = random.random
    client: httpx.Client | None = None
    #: every wait taken (seconds), for tests and ``/metrics``
    waits: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.client is None:
            self.client = httpx.Client(timeout=httpx.Timeout(self.timeout_seconds), follow_redirects=False)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def request(self, method: str, url: str, *, json: Any = None, content: bytes | None = None,
                headers: Mapping[str, str] | None = None, ok: Callable[[httpx.Response], None] | None = None,
                ) -> httpx.Response:
        """The response to a request the receiver accepted (2xx), or a :class:`DeliveryError`.
        ``ok`` may inspect a 2xx body and raise a DeliveryError of its own (Slack answers 200
        with ``"ok": false``)."""
        assert self.client is not None
        attempt = 0
        while True:
            try:
                response = self.client.request(method, url, json=json, content=content, headers=dict(headers or {}))
            except httpx.TimeoutException as exc:
                error = DeliveryError(self._text(f"{self.name}: no answer from {where(url)} within "
                                                 f"{self.timeout_seconds:g} s ({type(exc).__name__})"), retryable=True)
            except httpx.TransportError as exc:  # refused, reset, DNS: the request may not have arrived
                error = DeliveryError(self._text(f"{self.name}: cannot reach {where(url)}: "
                                                 f"{type(exc).__name__}: {exc}"), retryable=True)
            else:
                if 200 <= response.status_code < 300:
                    if ok is not None:
                        ok(response)
                    return response
                error = self.refused(url, response)
            if not error.retryable or attempt >= self.retries:
                raise error
            wait = self.backoff.delay(attempt, error.retry_after, self.rand)
            if wait > self.max_wait:
                raise error  # the outbox waits instead of this thread
            self.waits.append(wait)
            self.sleep(wait)
            attempt += 1

    def refused(self, url: str, response: httpx.Response) -> DeliveryError:
        """The error for a non-2xx answer: retryable on 429 and 5xx only."""
        status = response.status_code
        body = short(response.text.strip().replace("\n", " "), 200)
        return DeliveryError(
            self._text(f"{self.name}: {where(url)} answered HTTP {status}" + (f": {body}" if body else "")),
            retryable=status in RETRY_STATUSES or status >= 500, status=status, retry_after=retry_after(response))

    def _text(self, text: str) -> str:
        return self.redactor.redact(text)


class HttpNotifier:
    """Base of the HTTP integrations: a name, a typed config and an :class:`HttpSender` whose
    redactor knows the config's secrets. ``sleep``, ``rand`` and ``client`` are for tests."""

    def __init__(self, name: str, config: Any, *, sleep: Callable[[float], None] = time.sleep,
                 rand: Callable[[], float] = random.random, client: httpx.Client | None = None,
                 max_wait: float = 30.0) -> None:
        self.name = name
        self.config = config
        self.redactor = Redactor(tuple(config.secrets()))
        self.http = HttpSender(name, self.redactor, config.timeout_seconds, config.retries, sleep=sleep, rand=rand,
                               client=client, max_wait=max_wait)

    def close(self) -> None:
        self.http.close()
