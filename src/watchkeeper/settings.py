"""One Settings object: ``WATCHKEEPER_*`` environment variables plus an optional YAML file.

Read once at start-up by the CLI and handed to whatever needs it; no other module reads the
environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from watchkeeper.errors import ConfigError
from watchkeeper.integrations.config import IntegrationsConfig
from watchkeeper.integrations.routing import Route
from watchkeeper.logs.config import LogsConfig
from watchkeeper.traces.config import TracesConfig
from watchkeeper.value.priority import Weights
from watchkeeper.watch.config import RcaConfig, TopologyConfig, WatchConfig
from watchkeeper.yamlfile import YamlPositions
from watchkeeper.yamlfile import load as load_yaml

#: Settings holding a path: a relative one in a YAML file is relative to that file.
PATH_KEYS = ("correlation_config", "runbooks_dir")


class ConsoleConfig(BaseModel):
    """The web console's ``console:`` section (docs/console.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: SecretStr | None = Field(
        None, min_length=16, description="signs approval links and CSRF tokens; unset: one is generated once and "
        "kept in the database (set it when several servers share one database behind no sticky sessions)")
    secure_cookies: bool = Field(
        True, description="cookies only over HTTPS; false for a console on plain http://127.0.0.1 (a laptop, the lab)")
    session_hours: float = Field(12.0, gt=0, le=24 * 30, description="a session ends this long after sign-in")
    idle_minutes: float = Field(60.0, gt=0, le=24 * 60 * 30, description="... or after this long without a request")
    sso_header: str | None = Field(
        None, pattern=r"^[A-Za-z0-9-]{1,64}$", description="trusted header naming the signed-in user, set by a "
        "reverse proxy that authenticated them (e.g. X-Forwarded-User); off when unset")
    sso_proxies: list[str] = Field(
        default_factory=list, description="addresses or networks (CIDR) of the proxies whose sso_header is "
        "believed; a request from anywhere else is never signed in by the header")
    link_hours: float = Field(24.0, gt=0, le=24 * 14, description="how long a signed approval link stays valid")
    sign_in_failures: int = Field(5, ge=1, le=1000, description="failed sign-ins per user name within "
                                  "sign_in_window_minutes before that name is locked out (429)")
    sign_in_address_failures: int = Field(20, ge=1, le=10000, description="failed sign-ins per client address "
                                          "(IPv6: per /64) within the window before that address is locked out")
    sign_in_window_minutes: float = Field(15.0, gt=0, le=24 * 60, description="the window failures are counted "
                                          "in; a lock-out ends when its oldest counted failure leaves it")

    @field_validator("sso_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (e.g. 127.0.0.1 or 10.0.0.0/24)") from None
        return value


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
    max_body_bytes: int = Field(1_048_576, gt=0, description="Largest accepted request body, on every route")
    intake_max_backlog: int = Field(
        500_000, gt=0, description="Alerts accepted on POST /api/v2/alerts (SQLite) and not yet processed, at "
        "most: a storm's burst waits on disk (~0.3-1 KB an alert), beyond it the route answers 503 + Retry-After",
    )
    intake_drainer: Literal["process", "thread"] = Field(
        "process", description="Who turns POST /api/v2/alerts' journal (SQLite) into incidents in serve: a child "
        "process (the other core: faster intake, a second Python process's memory) or a thread of the API's "
        "(one process: less memory, slower intake; docs/scaling.md)",
    )
    intake_journal_dir: Path | None = Field(
        None, description="Directory of POST /api/v2/alerts' journal (SQLite; default: next to the database "
        "file): a device of its own keeps its fsyncs from queueing behind the database's writes. Drain before "
        "moving it: a journal left behind is not read (docs/scaling.md)",
    )
    retention_days: float = Field(
        90, ge=0, description="Delete events and dead letters received longer ago than this (0: keep them "
        "forever); serve prunes hourly, 'watchkeeper db prune' on demand",
    )
    runbooks_dir: Path | None = Field(
        None, description="Directory of runbook YAML files (and policy.yaml); none: no automation"
    )
    responder_interval_seconds: float = Field(0.5, gt=0, description="How often the responder looks for work")
    value_weights: Weights = Field(
        default_factory=Weights, description="Weights of the prioritization matrix's dimensions (docs/value.md)")
    gate_guard_seconds: float = Field(
        5.0, gt=0, description="How often serve checks the use cases in production (a failed criterion demotes)")
    drift_check_seconds: float = Field(
        3600.0, ge=0, description="How often serve checks every registered model with a training window for "
        "drift (anomaly or alert rate; a drift is a drift event the gates count); 0: never")
    drift_check_days: float = Field(
        2.0, gt=0, le=366, description="The recent window a scheduled drift check compares with the training window "
        "(at least 30 hours: a check needs 30 hourly counts)")
    action_lease_seconds: float = Field(
        60.0, ge=1, description="How long a claimed action stays its server's without a heartbeat; after that "
        "another server marks it interrupted and escalates the incident")
    action_workers: int = Field(2, ge=1, le=64, description="Runbooks one server runs at once (each on its own "
                                "thread; max_concurrent_per_service still holds across servers)")
    watch: WatchConfig = Field(default_factory=WatchConfig,
                               description="Prometheus endpoints, anomaly and forecast watches (YAML only)")
    topology: TopologyConfig = Field(default_factory=TopologyConfig, description="the service graph (YAML only)")
    rca: RcaConfig = Field(default_factory=RcaConfig, description="root-cause ranking in serve (YAML only)")
    integrations: IntegrationsConfig = Field(default_factory=IntegrationsConfig, description="notification and "
                                             "ITSM targets and the outbox (YAML only; docs/integrations.md)")
    routes: list[Route] = Field(default_factory=list, description="which incidents go to which integration "
                                "targets (YAML only; 'watchkeeper routes test')")
    token_default_days: int = Field(
        90, gt=0, le=3650, description="Lifetime of a new API token when 'token create' gives no --expires")
    token: SecretStr | None = Field(
        None, description="API token the CLI acts with where a person must be known (approvals); "
        "WATCHKEEPER_TOKEN")
    cli_users: dict[str, str] = Field(
        default_factory=dict, description="unix user -> approver name the CLI may vote as without a token "
        "(YAML only; the audit log says 'cli-user:NAME via unix user UNIX')")
    console: ConsoleConfig = Field(default_factory=ConsoleConfig, description="the web console (YAML only)")
    traces: TracesConfig = Field(default_factory=TracesConfig, description="OTLP traces in: RED steps, retention, "
                                 "trace anomalies (YAML only; docs/traces.md)")
    logs: LogsConfig = Field(default_factory=LogsConfig, description="log inputs (files, syslog, OTLP), log "
                             "anomalies and raw-line retention (YAML only; docs/logs.md)")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    log_level: str = "info"
    bus_url: str | None = Field(
        None, pattern=r"^nats://", description="NATS JetStream for several API nodes and workers (e.g. "
        "nats://127.0.0.1:4222; docs/scaling.md); unset: the in-process path, ingest commits in the request")
    bus_partitions: int = Field(8, ge=1, le=1024, description="Partitions of the event stream (subjects "
                                "watchkeeper.events.<p>); fixed by 'watchkeeper bus init'")
    bus_stream: str = Field("WATCHKEEPER", pattern=r"^[A-Za-z0-9_-]{1,64}$",
                            description="JetStream stream name ('watchkeeper bus init' creates it)")
    bus_max_messages: int = Field(1_000_000, ge=1, description="Messages the stream holds before it refuses "
                                  "new ones (the API then answers 503 + Retry-After: the bound on buffering)")
    bus_publish_timeout_seconds: float = Field(2.0, gt=0, le=60, description="How long the API waits for "
                                               "JetStream's acknowledgement before answering 503")
    bus_lease_seconds: float = Field(5.0, gt=0, le=300, description="How often a worker rebalances partition "
                                     "ownership (PostgreSQL advisory locks; docs/scaling.md)")

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

    def ranks(self) -> bool:
        """Whether ``serve`` runs the ranker: ranking enabled and evidence to rank on — at least one
        watch with ``rca: true``, or traces taken in (``watchkeeper.ranking.make_ranker``)."""
        return self.rca.enabled and (any(w.rca for w in self.watch.watches) or self.traces.enabled)


def load_settings(env: Mapping[str, str], config_file: Path | None = None) -> Settings:
    """Build Settings from ``env`` (e.g. ``os.environ``) and an optional YAML file.

    Environment variables win over the file. Errors name the offending key, and for the file its
    line (``watchkeeper.yaml:12: watch.watches.0.direction: …``). Relative paths in the file are
    relative to the file.

    >>> load_settings({"WATCHKEEPER_CORRELATION_WINDOW_SECONDS": "60"}).correlation_window_seconds
    60.0
    """
    values: dict[str, Any] = {}
    path = config_file or (Path(env["WATCHKEEPER_CONFIG"]) if env.get("WATCHKEEPER_CONFIG") else None)
    doc: YamlPositions | None = None
    if path is not None:
        try:
            doc = load_yaml(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        loaded = doc.data if doc.data is not None else {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}:1: the config file must hold a mapping of settings")
        values.update(_relative_to(loaded, path.parent))
    from_env = set()
    for key, value in env.items():
        if key.startswith("WATCHKEEPER_") and key != "WATCHKEEPER_CONFIG":
            name = key.removeprefix("WATCHKEEPER_").lower()
            values[name] = value
            from_env.add(name)
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            if doc is not None and path is not None and loc and loc[0] not in from_env:
                line, name = doc.where(loc)
                problems.append(f"{path}:{line}: {name}: {err['msg']}")
            else:
                where = f"WATCHKEEPER_{str(loc[0]).upper()}" if loc and loc[0] in from_env else "settings"
                problems.append(f"{where}: {'.'.join(str(p) for p in loc) or 'settings'}: {err['msg']}")
        raise ConfigError("invalid settings:\n" + "\n".join(problems)) from exc


def _relative_to(values: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """The file's settings with relative paths made relative to ``base`` (the file's folder)."""
    out = dict(values)
    for key in PATH_KEYS:
        if isinstance(out.get(key), str) and not Path(out[key]).is_absolute():
            out[key] = str(base / out[key])
    for section, key in (("topology", "file"), ("rca", "calibration")):
        inner = out.get(section)
        if isinstance(inner, dict) and isinstance(inner.get(key), str) and not Path(inner[key]).is_absolute():
            out[section] = {**inner, key: str(base / inner[key])}
    logs = out.get("logs")
    if isinstance(logs, dict) and isinstance(logs.get("files"), list):  # files: relative to the config file
        files = [{**f, "path": str(base / f["path"])} if isinstance(f, dict) and isinstance(f.get("path"), str)
                 and not Path(f["path"]).is_absolute() else f for f in logs["files"]]
        out["logs"] = {**logs, "files": files}
    return out
