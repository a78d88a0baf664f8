"""PagerDuty's typed config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from watchkeeper.integrations.base import EventKind, TargetConfig


class PagerDutyConfig(TargetConfig):
    """```yaml
    pagerduty:
      type: pagerduty
      routing_key: R0123456789abcdef0123456789abcde   # the service's Events API v2 integration key
    ```"""

    type: Literal["pagerduty"] = "pagerduty"
    routing_key: SecretStr
    url: str = Field("https://events.pagerduty.com/v2/enqueue", description="Events API v2 endpoint")
    source: str = Field("watchkeeper", max_length=255, description="payload.source when the incident names none")
    events: list[EventKind] = Field(default_factory=lambda: [
        EventKind.OPENED, EventKind.ACKNOWLEDGED, EventKind.RESOLVED, EventKind.REOPENED])
