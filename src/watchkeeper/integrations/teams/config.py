"""Teams settings: a ``type: teams`` entry of ``integrations.targets``.

```yaml
integrations:
  targets:
    teams-oncall:
      type: teams
      webhook_url: https://prod-12.westeurope.logic.azure.com/workflows/…/triggers/manual/paths/invoke?…&sig=…
      public_url: https://watchkeeper.acme.example   # where the console's approval links point
```
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, SecretStr, field_validator

from watchkeeper.integrations.base import EventKind, TargetConfig


class TeamsConfig(TargetConfig):
    """A Teams Workflows webhook ("Post to a channel when a webhook request is received")."""

    type: Literal["teams"] = "teams"
    webhook_url: SecretStr = Field(description="the workflow's URL; its sig parameter is a secret")
    public_url: str | None = Field(
        None, description="the console's address as people open it; Approve / Reject links point there "
        "(unset: cards carry no buttons)")
    events: list[EventKind] = Field(default_factory=lambda: [
        EventKind.OPENED, EventKind.APPROVAL_REQUESTED, EventKind.ESCALATED, EventKind.RESOLVED,
        EventKind.REOPENED])

    def secrets(self) -> list[str]:
        """The URL and its ``sig`` parameter (the part that grants the right to post)."""
        query = parse_qs(urlsplit(self.webhook_url.get_secret_value()).query)
        return [*super().secrets(), *(v for v in query.get("sig", []) if v)]

    @field_validator("webhook_url")
    @classmethod
    def _https(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("must be the https:// URL Teams gave the workflow")
        return value

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")) or "@" in value or " " in value:
            raise ValueError("must be an http(s) address without credentials")
        return value
