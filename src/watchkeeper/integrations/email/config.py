"""The email integration's typed config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from watchkeeper.integrations.base import EventKind, TargetConfig


class EmailConfig(TargetConfig):
    """```yaml
    ops-mail:
      type: email
      host: smtp.example.com
      port: 587
      starttls: true
      username: watchkeeper
      password: …
      sender: watchkeeper@example.com
      to: [ops@example.com]
    ```"""

    type: Literal["email"] = "email"
    host: str = Field(min_length=1)
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    tls: bool = Field(False, description="implicit TLS (port 465)")
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")
    to: list[str] = Field(min_length=1)
    events: list[EventKind] = Field(default_factory=lambda: [
        EventKind.OPENED, EventKind.RESOLVED, EventKind.REOPENED, EventKind.APPROVAL_REQUESTED,
        EventKind.ESCALATED])

    @model_validator(mode="after")
    def _login(self) -> EmailConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        if self.starttls and self.tls:
            raise ValueError("starttls and tls exclude each other (tls: port 465, starttls: 587)")
        return self
