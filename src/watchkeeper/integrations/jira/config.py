"""Jira settings: the ``jira:`` entry of the ``integrations:`` section.

```yaml
integrations:
  targets:
    jira:
      type: jira
      base_url: https://acme.atlassian.net
      email: watchkeeper@acme.example        # basic auth: email + API token
      api_token: ATATT3xFfGF0…
      project: OPS
      webhook_secret: 6f1c…                  # the secret of the Jira webhook (X-Hub-Signature)
      poll_interval: 60s                     # fallback polling on JQL updated >= (poll: false: off)
```
"""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from watchkeeper.integrations.base import TargetConfig
from watchkeeper.model import IncidentStatus, Severity
from watchkeeper.yamlfile import Duration

#: Severity → Jira priority name (Jira's default priority scheme).
PRIORITIES: dict[Severity, str] = {
    Severity.CRITICAL: "Highest", Severity.ERROR: "High", Severity.WARNING: "Medium", Severity.INFO: "Low",
}


class JiraConfig(TargetConfig):
    """How to reach one Jira Cloud site and what to put on its issues."""

    type: Literal["jira"] = "jira"
    base_url: str = Field(description="https://SITE.atlassian.net (http only for a local test server)")
    email: str = Field(min_length=3, max_length=256, description="the account the API token belongs to")
    api_token: SecretStr
    project: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,19}$", description="project key, e.g. OPS")
    issue_type: str = Field("Incident", min_length=1, max_length=64)
    priorities: dict[Severity, str] = Field(default_factory=lambda: dict(PRIORITIES))
    #: Our state → the name of the transition to take there; otherwise the first transition to a
    #: status of the matching category (new, indeterminate, done) is taken.
    transitions: dict[IncidentStatus, str] = Field(default_factory=dict)
    labels: list[str] = Field(default_factory=lambda: ["watchkeeper"], max_length=10)
    webhook_secret: SecretStr | None = Field(
        None, description="the secret of the Jira webhook: its calls carry X-Hub-Signature: sha256=HMAC(body)")
    account_id: str | None = Field(
        None, max_length=128, description="our account's id there: changes it made are never taken back")
    poll: bool = Field(True, description="poll issues updated since the last poll (JQL updated >=) as the "
                       "fallback for the webhook")
    poll_interval: Duration = Field(60.0, description="time between polls")

    def secrets(self) -> list[str]:
        """The API token and the basic-auth header made of it (a receiver may echo headers)."""
        return [*super().secrets(), self.basic()]

    def basic(self) -> str:
        """The credentials of the ``Authorization: Basic`` header: email and API token."""
        return base64.b64encode(f"{self.email}:{self.api_token.get_secret_value()}".encode()).decode()

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")) or "@" in value or " " in value:
            raise ValueError("must be https://SITE.atlassian.net (no credentials in the URL)")
        return value

    @field_validator("priorities")
    @classmethod
    def _all_severities(cls, value: dict[Severity, str]) -> dict[Severity, str]:
        return {**PRIORITIES, **value}

    @field_validator("labels")
    @classmethod
    def _no_spaces(cls, value: list[str]) -> list[str]:
        if any(not label or " " in label or len(label) > 255 for label in value):
            raise ValueError("Jira labels are 1 to 255 characters without spaces")
        return value
