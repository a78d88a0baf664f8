"""Generic webhook: POST the message as JSON, signed.

Headers (the receiver checks the signature with the shared secret, and drops a timestamp older
than five minutes to refuse replays):

- ``X-Watchkeeper-Timestamp``: Unix seconds when this attempt was signed;
- ``X-Watchkeeper-Signature``: ``v1=`` + hex HMAC-SHA256(secret, ``{timestamp}.{raw body}``);
- ``X-Watchkeeper-Delivery``: the message's idempotency key (the same on every redelivery);
- ``X-Watchkeeper-Event``: the event (``opened``, ``resolved``, …).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from watchkeeper.integrations.base import Delivered, Message
from watchkeeper.integrations.http import HttpNotifier
from watchkeeper.integrations.webhook.config import WebhookConfig

SIGNATURE_VERSION = "v1"
#: Receivers should refuse signatures older than this (seconds).
TOLERANCE = 300


def body(message: Message) -> bytes:
    """The JSON body: the outbox snapshot plus the message's id, event and idempotency key."""
    doc: dict[str, Any] = {"id": message.id, "idempotency_key": message.idempotency_key,
                           "event": message.event.value, **dict(message.payload)}
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def sign(secret: str, timestamp: int, raw: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256 over ``{timestamp}.{raw body}``.

    >>> sign("k", 1700000000, b"{}")
    'v1=c6ef4734033cee2367414a0939385eca0397754aa7a59716da7463a9298b5146'
    """
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def verify(secret: str, headers: Mapping[str, str], raw: bytes, now: float | None = None,
           tolerance: float = TOLERANCE) -> str | None:
    """What a receiver runs: None when the signature holds and is fresh, else why not."""
    lower = {k.lower(): v for k, v in headers.items()}
    stamp, signature = lower.get("x-watchkeeper-timestamp", ""), lower.get("x-watchkeeper-signature", "")
    if not stamp.isdigit():
        return "missing or malformed X-Watchkeeper-Timestamp"
    if abs((time.time() if now is None else now) - int(stamp)) > tolerance:
        return "timestamp outside the tolerance (replay?)"
    if not hmac.compare_digest(sign(secret, int(stamp), raw), signature):
        return "signature does not match"
    return None


class WebhookNotifier(HttpNotifier):
    config: WebhookConfig

    def __init__(self, name: str, config: WebhookConfig, *, now: Callable[[], float] = time.time,
                 **options: Any) -> None:
        super().__init__(name, config, **options)
        self.now = now

    def deliver(self, message: Message) -> Delivered:
        raw = body(message)
        stamp = int(self.now())
        headers = {**self.config.headers, "Content-Type": "application/json", "User-Agent": "Watchkeeper",
                   "X-Watchkeeper-Timestamp": str(stamp),
                   "X-Watchkeeper-Signature": sign(self.config.secret.get_secret_value(), stamp, raw),
                   "X-Watchkeeper-Delivery": message.idempotency_key,
                   "X-Watchkeeper-Event": message.event.value}
        response = self.http.request("POST", self.config.url, content=raw, headers=headers)
        return Delivered(detail=f"HTTP {response.status_code}")
