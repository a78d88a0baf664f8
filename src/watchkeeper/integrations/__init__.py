"""Integrations: notify and sync the tools a team already uses (Slack, PagerDuty, email, webhooks, ITSM).

One shape for all (see ``docs/integrations.md``):

- ``base.py``      the message a notifier receives, the :class:`~watchkeeper.integrations.base.Notifier`
                   protocol, delivery errors that say whether a retry helps, secret redaction;
- ``http.py``      the one HTTP delivery helper (timeouts, retry with backoff + jitter honouring
                   ``Retry-After``, never on other 4xx);
- ``config.py``    the ``integrations:`` settings section (one typed config per target, secrets as
                   ``SecretStr``) and the explicit registry of built-in integrations;
- ``routing.py``   the ``routes:`` settings section: which incidents go to which targets;
- ``delivery.py``  the outbox delivery thread ``serve`` starts;
- ``<name>/``      one sub-package per system: its config, its notifier, a captured sample payload.

Messages reach a target only through the outbox (``storage/outbox.py``): they are written in the
same transaction as the incident change that causes them, so nothing acknowledged is lost.
"""
