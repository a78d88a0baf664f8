"""The generic webhook's typed config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from watchkeeper.integrations.base import EventKind, TargetConfig


class WebhookConfig(TargetConfig):
    """```yaml
    audit-hook:
      type: webhook
      url: https://hooks.example.com/watchkeeper
      secret: a-long-random-string      # the receiver checks X-Watchkeeper-Signature with it
    ```"""

    type: Literal["webhook"] = "webhook"
    url: str = Field(min_length=8, pattern=r"^https?://")
    secret: SecretStr = Field(description="HMAC-SHA256 key; the receiver verifies the signature header")
    headers: dict[str, str] = Field(default_factory=dict, description="extra headers (not secret)")
    events: list[EventKind] = Field(default_factory=lambda: list(EventKind))
