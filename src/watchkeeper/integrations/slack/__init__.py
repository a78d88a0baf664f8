"""Slack: Block Kit incident messages with Approve / Reject / Acknowledge buttons, and the signed
interactivity endpoint that takes the clicks (``docs/integrations.md``)."""
