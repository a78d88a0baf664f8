"""Generic webhooks: the outbox message as JSON, signed with HMAC-SHA256 over timestamp and body."""
