"""The explicit registry of built-in integrations: config type -> notifier factory.

No discovery by file name: an integration is available when it is listed here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from watchkeeper.errors import ConfigError
from watchkeeper.integrations.base import Notifier, Redactor, TargetConfig
from watchkeeper.integrations.config import IntegrationsConfig


def _factories() -> dict[str, Callable[..., Notifier]]:
    from watchkeeper.integrations.email.notifier import EmailNotifier
    from watchkeeper.integrations.jira.notifier import JiraNotifier
    from watchkeeper.integrations.pagerduty.notifier import PagerDutyNotifier
    from watchkeeper.integrations.servicenow.notifier import ServiceNowNotifier
    from watchkeeper.integrations.slack.notifier import SlackNotifier
    from watchkeeper.integrations.teams.notifier import TeamsNotifier
    from watchkeeper.integrations.webhook.notifier import WebhookNotifier

    return {"slack": SlackNotifier, "pagerduty": PagerDutyNotifier, "webhook": WebhookNotifier,
            "email": EmailNotifier, "servicenow": ServiceNowNotifier, "jira": JiraNotifier, "teams": TeamsNotifier}


def build(name: str, config: TargetConfig, **options: Any) -> Notifier:
    """The notifier of one configured target. ``options`` (e.g. ``sleep`` for tests) go to its
    constructor: ``Factory(name, config, **options)``."""
    factory = _factories().get(config.type)
    if factory is None:
        raise ConfigError(f"integration target {name!r}: no built-in integration of type {config.type!r}")
    return factory(name, config, **options)


def build_all(config: IntegrationsConfig, **options: Any) -> dict[str, Notifier]:
    return {name: build(name, target, **options) for name, target in config.targets.items()}


def redactor(config: IntegrationsConfig) -> Redactor:
    """One redactor knowing every configured secret (the outbox's errors pass through it too)."""
    return Redactor(tuple(s for target in config.targets.values() for s in target.secrets()))


def secrets_of(targets: Mapping[str, TargetConfig]) -> list[str]:
    return [s for t in targets.values() for s in t.secrets()]
