"""Microsoft Teams (Workflows webhooks): Adaptive Card messages, approvals through signed console links."""
