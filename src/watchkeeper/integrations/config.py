"""The ``integrations:`` settings section and the explicit registry of built-in integrations.

```yaml
integrations:
  targets:                       # name -> one integration's typed config (``type`` picks which)
    oncall-slack: {type: slack, bot_token: xoxb-…, signing_secret: …, channel: C0123456789}
    pagerduty: {type: pagerduty, routing_key: …}
  outbox: {max_attempts: 8}
```

Adding an integration: a sub-package with its config (a :class:`TargetConfig` whose ``type`` is a
``Literal``) and a notifier; add the config to :data:`AnyTarget` and its factory to
``registry.FACTORIES``. Nothing is discovered by file name.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from watchkeeper.integrations.base import EventKind
from watchkeeper.integrations.email.config import EmailConfig
from watchkeeper.integrations.jira.config import JiraConfig
from watchkeeper.integrations.pagerduty.config import PagerDutyConfig
from watchkeeper.integrations.servicenow.config import ServiceNowConfig
from watchkeeper.integrations.slack.config import SlackConfig
from watchkeeper.integrations.teams.config import TeamsConfig
from watchkeeper.integrations.webhook.config import WebhookConfig

AnyTarget = Annotated[SlackConfig | PagerDutyConfig | WebhookConfig | EmailConfig
                      | ServiceNowConfig | JiraConfig | TeamsConfig, Field(discriminator="type")]

#: A target's name: it appears in routes, the outbox, logs and metric labels.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class OutboxConfig(BaseModel):
    """How the outbox delivers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(8, ge=1, le=100, description="failed deliveries before a message is dead-lettered")
    backoff_seconds: float = Field(5.0, gt=0, description="first wait between attempts (doubles, with jitter)")
    max_backoff_seconds: float = Field(3600.0, gt=0, description="longest wait between attempts")
    lease_seconds: float = Field(60.0, ge=1, description="a claimed message is another server's to retry after this")
    workers: int = Field(4, ge=1, le=64, description="incidents delivered at once (each incident in order)")
    batch: int = Field(100, ge=1, le=10_000, description="messages claimed per round (after a crash, at most "
                       "twice this many may be delivered twice: the batch delivered last and the one in flight)")
    poll_seconds: float = Field(0.5, gt=0, description="how often the delivery thread looks for work when idle")


class IntegrationsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    targets: dict[str, AnyTarget] = Field(default_factory=dict)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)

    @field_validator("targets")
    @classmethod
    def _names(cls, value: dict[str, AnyTarget]) -> dict[str, AnyTarget]:
        import re

        bad = [name for name in value if not re.fullmatch(NAME_PATTERN, name)]
        if bad:
            raise ValueError(f"target names are lower-case letters, digits, '.', '_', '-' (1-64): {', '.join(bad)}")
        return value

    def accepts(self) -> dict[str, set[EventKind]]:
        """Each target's name and the events it takes."""
        return {name: set(target.events) for name, target in self.targets.items()}
