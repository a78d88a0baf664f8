"""Slack's typed config."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from watchkeeper.integrations.base import EventKind, TargetConfig


class SlackUser(BaseModel):
    """The Watchkeeper user a Slack user acts as, and the role that user has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128)
    role: Literal["viewer", "operator", "approver", "admin"] = "operator"


class SlackConfig(TargetConfig):
    """```yaml
    oncall-slack:
      type: slack
      bot_token: xoxb-…            # chat:write
      signing_secret: 8f7…         # Basic Information → App Credentials
      channel: C0123456789
      users: {U012ABCDEF: {name: alice, role: approver}}
    ```"""

    type: Literal["slack"] = "slack"
    bot_token: SecretStr
    signing_secret: SecretStr
    channel: str = Field(min_length=1, max_length=128)
    api_url: str = Field("https://slack.com/api", description="Slack's Web API base (a stand-in in tests)")
    users: dict[str, SlackUser] = Field(default_factory=dict, description="Slack user id -> Watchkeeper user")
    max_age_seconds: float = Field(300.0, gt=0, le=300.0,
                                   description="clicks signed longer ago are refused (replay); Slack's own limit")
    events: list[EventKind] = Field(default_factory=lambda: list(EventKind))
