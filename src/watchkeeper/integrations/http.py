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
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass_environment  # type: ignore[attr-defined]

import httpx
import orjson
import urllib3
from urllib3 import HTTPHeaderDict

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

    def delay(self, attempt: int, retry_after: float | None = None, rand: Callable[[], float] = random.random) -> float:
        jittered = rand() * min(self.cap, self.base * 2.0 ** min(attempt, 32))
        return float(max(jittered, retry_after or 0.0))


def retry_after(response: Response, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """Seconds the receiver asks us to wait (``Retry-After``: delta-seconds or an HTTP date).

    >>> retry_after(Response(429, {"Retry-After": "7"}, b""))
    7.0
    >>> retry_after(Response(429, {"Retry-After": "soon"}, b"")) is None
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


class Response:
    """What a receiver answered (the body read whole; the connection is back in its pool):
    ``status_code``, case-insensitive ``headers``, ``content``, ``text`` and ``json()``.

    >>> r = Response(200, {"Content-Type": "application/json"}, b'{"ok": true}')
    >>> r.status_code, r.headers["content-type"], r.json(), r.text
    (200, 'application/json', {'ok': True}, '{"ok": true}')
    """

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers if isinstance(headers, HTTPHeaderDict) else HTTPHeaderDict(headers)
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON (a ValueError when it is not)."""
        return orjson.loads(self.content)

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"


#: Kept-alive connections per destination (host, port): more requests at once still go out, on
#: connections closed after use.
CONNECTIONS_PER_HOST = 16


def ssl_context() -> ssl.SSLContext:
    """The TLS context of every delivery: certificates verified against the same trust store as
    the project's other HTTP clients (certifi, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), host names
    checked, TLS 1.2 at least."""
    return httpx.create_ssl_context()


class Pools:
    """urllib3 connection pools, one per destination (scheme, host, port), kept alive between
    deliveries and shared by the outbox's worker threads: a TCP (and TLS) handshake per message
    would cost more than the message. Timeouts bound the connect and every read (a 3xx is
    answered, never followed; urllib3 retries nothing: :class:`HttpSender` does).

    Like ``httpx`` before it, a destination that the standard proxy settings (``https_proxy``,
    ``http_proxy``, ``no_proxy``, read once here through ``urllib.request.getproxies``) send
    through a proxy goes through that proxy; ``proxies`` overrides them, and ``tls`` the TLS
    context (tests)."""

    def __init__(
        self,
        timeout_seconds: float,
        *,
        connections: int = CONNECTIONS_PER_HOST,
        proxies: Mapping[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._options: dict[str, Any] = {
            "num_pools": 32,
            "maxsize": connections,
            "block": False,
            "retries": False,
            "timeout": urllib3.Timeout(connect=timeout_seconds, read=timeout_seconds),
            "ssl_context": tls or ssl_context(),
        }
        self.direct = urllib3.PoolManager(**self._options)
        self.proxies = dict(getproxies() if proxies is None else proxies)
        self._managers: dict[str, urllib3.PoolManager] = {}  # proxy URL -> its manager
        self._via: dict[tuple[str, str], urllib3.PoolManager] = {}  # (scheme, host) -> the manager to use
        self._lock = threading.Lock()

    def for_url(self, url: str) -> urllib3.PoolManager:
        if not self.proxies:
            return self.direct
        parts = urlsplit(url)
        host = parts.hostname or ""
        found = self._via.get((parts.scheme, host))
        if found is None:
            proxy = self.proxies.get(parts.scheme)
            with self._lock:
                if proxy is None or proxy_bypass_environment(host, self.proxies):
                    found = self.direct
                else:
                    found = self._managers.get(proxy)
                    if found is None:
                        found = self._managers[proxy] = urllib3.ProxyManager(proxy, **self._options)
                self._via[(parts.scheme, host)] = found
        return found

    def clear(self) -> None:
        self.direct.clear()
        for manager in self._managers.values():
            manager.clear()


#: Connection failures worth another try: the request may not have arrived, or its answer was lost.
_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError)


@dataclass
class HttpSender:
    """Sends one request with the retry rules above, over kept-alive urllib3 connection pools
    (one per destination, shared by the outbox's worker threads). ``sleep`` and ``rand`` are
    injected so tests run in no time and are repeatable."""

    name: str
    redactor: Redactor = field(default_factory=Redactor)
    timeout_seconds: float = 10.0
    retries: int = 2
    backoff: Backoff = field(default_factory=Backoff)
    max_wait: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = random.random
    pools: Pools | None = None
    #: every wait taken (seconds), for tests and ``/metrics``
    waits: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.pools is None:
            self.pools = Pools(self.timeout_seconds)

    def close(self) -> None:
        if self.pools is not None:
            self.pools.clear()

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        ok: Callable[[Response], None] | None = None,
    ) -> Response:
        """The response to a request the receiver accepted (2xx), or a :class:`DeliveryError`.
        ``ok`` may inspect a 2xx body and raise a DeliveryError of its own (Slack answers 200
        with ``"ok": false``). Redirects are not followed (a 3xx is refused, not retried)."""
        assert self.pools is not None
        sent = HTTPHeaderDict({"User-Agent": "Watchkeeper", "Accept": "*/*"})
        if headers:
            sent.update(headers)
        if json is not None:
            content = orjson.dumps(json)
            if "content-type" not in sent:
                sent["Content-Type"] = "application/json"
        pool = self.pools.for_url(url)
        attempt = 0
        while True:
            try:
                raw = pool.urlopen(method, url, body=content, headers=sent, redirect=False)
            except urllib3.exceptions.NewConnectionError as exc:  # refused, unreachable, DNS
                error = DeliveryError(
                    self._text(f"{self.name}: cannot reach {where(url)}: {type(exc).__name__}: {_reason(exc)}"),
                    retryable=True,
                )
            except urllib3.exceptions.TimeoutError as exc:
                error = DeliveryError(
                    self._text(
                        f"{self.name}: no answer from {where(url)} within "
                        f"{self.timeout_seconds:g} s ({type(exc).__name__})"
                    ),
                    retryable=True,
                )
            except _TRANSPORT_ERRORS as exc:  # reset, TLS refused, a broken answer: it may not have arrived
                error = DeliveryError(
                    self._text(f"{self.name}: cannot reach {where(url)}: {type(exc).__name__}: {_reason(exc)}"),
                    retryable=True,
                )
            else:
                response = Response(raw.status, raw.headers, raw.data)
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

    def refused(self, url: str, response: Response) -> DeliveryError:
        """The error for a non-2xx answer: retryable on 429 and 5xx only."""
        status = response.status_code
        body = short(response.text.strip().replace("\n", " "), 200)
        return DeliveryError(
            self._text(f"{self.name}: {where(url)} answered HTTP {status}" + (f": {body}" if body else "")),
            retryable=status in RETRY_STATUSES or status >= 500,
            status=status,
            retry_after=retry_after(response),
        )

    def _text(self, text: str) -> str:
        return self.redactor.redact(text)


def _reason(exc: BaseException) -> str:
    """An exception's own words without the URL urllib3 puts in some (a path may hold a key)."""
    reason = getattr(exc, "reason", None)
    return short(str(reason if reason is not None else exc), 200)


class HttpNotifier:
    """Base of the HTTP integrations: a name, a typed config and an :class:`HttpSender` whose
    redactor knows the config's secrets. ``sleep``, ``rand`` and ``pools`` are for tests."""

    def __init__(
        self,
        name: str,
        config: Any,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        pools: Pools | None = None,
        max_wait: float = 30.0,
    ) -> None:
        self.name = name
        self.config = config
        self.redactor = Redactor(tuple(config.secrets()))
        self.http = HttpSender(
            name,
            self.redactor,
            config.timeout_seconds,
            config.retries,
            sleep=sleep,
            rand=rand,
            pools=pools,
            max_wait=max_wait,
        )

    def close(self) -> None:
        self.http.close()
