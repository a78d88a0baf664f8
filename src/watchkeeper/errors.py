"""One exception hierarchy. Every error says whether retrying can help."""

from __future__ import annotations


class WatchkeeperError(Exception):
    """Base of every error Watchkeeper raises on purpose."""

    retryable: bool = False


class ConfigError(WatchkeeperError):
    """The configuration is invalid; fix it and start again."""


class InputError(WatchkeeperError):
    """Input was rejected. ``status`` is the HTTP status that describes why."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class NotFound(InputError):
    """The named object does not exist."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=404)


class Conflict(InputError):
    """The request is valid but conflicts with the object's current state."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=409)


class AuthError(WatchkeeperError):
    """Missing, unknown or insufficient credentials. ``code`` is the RFC 6750 error code the
    ``WWW-Authenticate`` challenge carries (``invalid_token``, ``invalid_request``,
    ``insufficient_scope``; None when no credentials were given)."""

    def __init__(self, message: str, *, status: int = 401, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class IntegrationError(WatchkeeperError):
    """An external system failed; ``retryable`` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class PolicyDenied(WatchkeeperError):
    """The policy refused an action."""
