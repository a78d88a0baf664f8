"""The ``logs:`` section of the server YAML (docs/logs.md): inputs, anomaly thresholds, retention.

>>> LogsConfig.model_validate({"files": [{"path": "/var/log/app.log", "service": "app"}],
...                            "syslog": {"udp": "127.0.0.1:5514"}}).syslog.udp_address()
('127.0.0.1', 5514)
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: The longest line (or syslog frame, or OTLP log body) kept; longer ones are dead-lettered.
MAX_LINE_BYTES = 65_536


def _address(value: str | None) -> str | None:
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:5514)")
    return value


def split_address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


class FileInput(BaseModel):
    """One file to follow: its lines belong to ``service``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Field(description="the file; followed across rename-rotation and truncation")
    service: str = Field(min_length=1, max_length=256, description="the service its lines belong to")
    from_start: bool = Field(False, description="read a file seen for the first time from its start "
                             "(default: from its end, as tail -F)")


class SyslogInput(BaseModel):
    """Syslog listeners (RFC 5424 and RFC 3164; TCP with octet counting or newline framing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    udp: str | None = Field(None, description="HOST:PORT of the UDP listener (none: off)")
    tcp: str | None = Field(None, description="HOST:PORT of the TCP listener (none: off)")
    service: str | None = Field(None, min_length=1, max_length=256, description="the service of every message; "
                                "none: the message's APP-NAME (RFC 5424) or TAG (RFC 3164), mapped by 'services'")
    services: dict[str, str] = Field(default_factory=dict, description="APP-NAME/TAG -> service")
    max_connections: int = Field(256, ge=1, le=10_000, description="TCP connections served at once")

    @field_validator("udp", "tcp")
    @classmethod
    def _check(cls, value: str | None) -> str | None:
        return _address(value)

    def udp_address(self) -> tuple[str, int] | None:
        return split_address(self.udp) if self.udp else None

    def tcp_address(self) -> tuple[str, int] | None:
        return split_address(self.tcp) if self.tcp else None

    def service_of(self, app: str | None) -> str:
        if self.service is not None:
            return self.services.get(app or "", self.service)
        return self.services.get(app or "", app or "syslog")


class AnomalyConfig(BaseModel):
    """When log lines become events (one configuration for every service; docs/logs.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    learn_minutes: float = Field(10.0, ge=0, description="after a service's first line, new templates are learned "
                                 "silently this long (everything is new at first)")
    span_minutes: float = Field(30.0, ge=2, description="memory of a template's rate baseline (EWMA span)")
    warmup_minutes: int = Field(10, ge=2, description="minutes of history before a rate may leave its baseline")
    spike_z: float = Field(5.0, gt=0, description="robust z-score of a spike (scale: max(1.4826·MAD, √rate))")
    drop_z: float = Field(4.0, gt=0, description="robust z-score of a drop")
    min_spike: float = Field(10.0, ge=0, description="lines/min above the baseline, at least, for a spike")
    min_drop_rate: float = Field(20.0, ge=0, description="a drop needs a baseline of at least this many lines/min")
    burst_errors: int = Field(20, ge=1, description="error-or-worse lines/min of a service, at least, for a burst")
    quiet_minutes: int = Field(5, ge=1, description="normal minutes after which a log anomaly resolves")
    max_series: int = Field(50_000, ge=10, description="(service, template) rates followed at most")


class LogRetention(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    raw_hours: float = Field(24.0, gt=0, description="raw lines are kept this long")
    max_mb: float = Field(512.0, gt=0, description="... and at most this many MB of them (oldest go first)")
    interval_seconds: float = Field(60.0, gt=0, description="how often serve prunes raw lines")


class LogsConfig(BaseModel):
    """Log inputs (files, syslog, OTLP/HTTP at /v1/logs), log anomalies and raw-line retention."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: list[FileInput] = Field(default_factory=list)
    syslog: SyslogInput = Field(default_factory=SyslogInput)
    anomalies: AnomalyConfig = Field(default_factory=AnomalyConfig)
    retention: LogRetention = Field(default_factory=LogRetention)
    max_line_bytes: int = Field(MAX_LINE_BYTES, ge=256, le=16 * 1024 * 1024,
                                description="longer lines and frames are dead-lettered")
    poll_seconds: float = Field(0.2, gt=0, le=60, description="how often files are checked for new lines")
    otlp_service: str = Field("unknown_service", min_length=1, description="service of OTLP logs whose resource "
                              "has no service.name")
