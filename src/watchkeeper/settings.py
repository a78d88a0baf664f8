"""One Settings object: ``WATCHKEEPER_*`` environment variables plus an optional YAML file.

Read once at start-up by the CLI and handed to whatever needs it; no other module reads the
environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from watchkeeper.errors import ConfigError


class Settings(BaseSettings):
    """Watchkeeper's configuration. Every field can be set as ``WATCHKEEPER_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="WATCHKEEPER_", extra="forbid", frozen=True)

    database_url: str = Field(
        "sqlite:///./watchkeeper.db",
        description="SQLAlchemy URL: sqlite:///path.db or postgresql+psycopg://user@host/db",
    )
    correlation_window_seconds: float = Field(
        300.0, gt=0, description="Alerts of one service this close together join one incident"
    )
    correlation_config: Path | None = Field(
        None, description="YAML with the correlation window and strategies (reloaded when it changes)"
    )
    auto_resolve: bool = Field(
        True, description="Resolve an incident by itself when all its alerts have resolved"
    )
    max_body_bytes: int = Field(1_048_576, gt=0, description="Largest accepted ingest body")
    runbooks_dir: Path | None = Field(
        None, description="Directory of runbook YAML files (and policy.yaml); none: no automation"
    )
    responder_interval_seconds: float = Field(0.5, gt=0, description="How often the responder looks for work")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    log_level: str = "info"

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        *_sources: PydanticBaseSettingsSource, **_named: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings() gathers the environment and the file; nothing is read behind its back.
        return (init_settings,)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql")):
            raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
        return value


def load_settings(env: Mapping[str, str], config_file: Path | None = None) -> Settings:
    """Build Settings from ``env`` (e.g. ``os.environ``) and an optional YAML file.

    Environment variables win over the file. Errors name the offending key.

    >>> load_settings({"WATCHKEEPER_CORRELATION_WINDOW_SECONDS": "60"}).correlation_window_seconds
    60.0
    """
    values: dict[str, Any] = {}
    path = config_file or (Path(env["WATCHKEEPER_CONFIG"]) if env.get("WATCHKEEPER_CONFIG") else None)
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of settings")
        values.update(loaded)
    for key, value in env.items():
        if key.startswith("WATCHKEEPER_") and key != "WATCHKEEPER_CONFIG":
            values[key.removeprefix("WATCHKEEPER_").lower()] = value
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
