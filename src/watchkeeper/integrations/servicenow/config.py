"""ServiceNow settings: the ``servicenow:`` entry of the ``integrations:`` section.

```yaml
integrations:
  targets:
    servicenow:
      type: servicenow
      instance_url: https://acme.service-now.com
      username: watchkeeper.integration      # basic auth (or client_id/client_secret: OAuth)
      password: s3cret
      assignment_group: 8a5055c9c61122780043563ef53438e3   # the group's sys_id
      poll_interval: 60s                     # fallback polling on sys_updated_on (poll: false: off)
```
"""

from __future__ import annotations

import base64
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from watchkeeper.integrations.base import TargetConfig
from watchkeeper.model import Severity
from watchkeeper.yamlfile import Duration

#: Severity → (impact, urgency); ServiceNow's default priority matrix then gives P1, P2, P3, P5.
#: Impact and urgency are 1 (high), 2 (medium), 3 (low).
IMPACT_URGENCY: dict[Severity, tuple[int, int]] = {
    Severity.CRITICAL: (1, 1),  # priority 1 - Critical
    Severity.ERROR: (2, 1),  # priority 2 - High
    Severity.WARNING: (2, 2),  # priority 3 - Moderate
    Severity.INFO: (3, 3),  # priority 5 - Planning
}


def basic(user: str, password: str) -> str:
    """The credentials of an ``Authorization: Basic`` header."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()


class ServiceNowConfig(TargetConfig):
    """How to reach one ServiceNow instance and what to put on its incidents."""

    type: Literal["servicenow"] = "servicenow"
    instance_url: str = Field(description="https://INSTANCE.service-now.com (http only for a local test instance)")
    username: str | None = Field(None, description="integration user (basic auth)")
    password: SecretStr | None = None
    client_id: str | None = Field(None, description="OAuth application registry client id (with client_secret)")
    client_secret: SecretStr | None = None
    integration_user: str | None = Field(
        None, description="the user name ServiceNow records as sys_updated_by for our calls (default: username); "
        "changes it made are never taken back as changes")
    assignment_group: str | None = Field(None, max_length=64, description="sys_id of the assignment group")
    caller_id: str | None = Field(None, max_length=64, description="sys_id of the caller, if your instance needs one")
    category: str | None = Field(None, max_length=40)
    close_code: str = Field("Solution provided", max_length=40, description="close_code on resolution")
    impact_urgency: dict[Severity, tuple[int, int]] = Field(default_factory=lambda: dict(IMPACT_URGENCY))
    poll: bool = Field(True, description="poll sys_updated_on as the fallback for the business rule's calls")
    poll_interval: Duration = Field(60.0, description="time between polls")

    @field_validator("instance_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")) or "@" in value or " " in value:
            raise ValueError("must be https://INSTANCE.service-now.com (no credentials in the URL)")
        return value

    @field_validator("impact_urgency")
    @classmethod
    def _levels(cls, value: dict[Severity, tuple[int, int]]) -> dict[Severity, tuple[int, int]]:
        for severity, pair in value.items():
            if not all(1 <= v <= 3 for v in pair):
                raise ValueError(f"{severity.value}: impact and urgency are 1, 2 or 3")
        return {**IMPACT_URGENCY, **value}

    @model_validator(mode="after")
    def _auth(self) -> Self:
        basic = self.username is not None and self.password is not None
        oauth = self.client_id is not None and self.client_secret is not None
        if not (basic or oauth):
            raise ValueError("give username and password (basic auth) or client_id and client_secret (OAuth)")
        if (self.username is None) != (self.password is None) and not oauth:
            raise ValueError("username and password go together")
        return self

    def secrets(self) -> list[str]:
        """The secrets and the basic-auth header made of them (a receiver may echo headers)."""
        found = super().secrets()
        if self.username is not None and self.password is not None:
            found.append(basic(self.username, self.password.get_secret_value()))
        return found

    @property
    def our_user(self) -> str | None:
        """Who ServiceNow says made our own changes."""
        return self.integration_user or self.username
