"""What ``serve`` watches, the service graph it ranks causes on, and how it ranks them — the
``watch:``, ``topology:`` and ``rca:`` sections of the settings YAML.

```yaml
watch:
  prometheus:
    - name: main                      # watches name their endpoint (default: the first one)
      url: http://127.0.0.1:9090
      bearer_token: s3cret            # or basic_auth: {username: u, password: p}
      tls_verify: true
      timeout: 10s
  watches:
    - name: latency
      query: histogram_quantile(0.9, sum by (service, le) (rate(http_duration_seconds_bucket[1m])))
      service_label: service          # the label that names the service
      resource_label: instance        # optional
      direction: up                   # up | down | both: which side is harmful
      detector: default               # default | likelihood | robust | cusum
      options: {}                     # the detector's constructor arguments
      floor: 0.1                      # deviations smaller than this are never anomalies
      severity: warning
      interval: 15s
  forecasts:
    - name: disk-full
      query: node_filesystem_avail_bytes / node_filesystem_size_bytes
      service_label: instance
      threshold: 0.05
      direction: down                 # the crossing that matters: falling below the threshold
      horizon: 6h
      lookback: 24h
      interval: 5m
topology:
  services:
    checkout: {depends_on: [payment, catalog]}
rca:
  window: 5m                          # evidence after the onset
  reference: 1h                       # "normal" before it
```

Pure configuration: pydantic models only (validated once, errors as ``file:line``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from watchkeeper.model import Severity
from watchkeeper.yamlfile import Duration

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
Direction = Literal["up", "down", "both"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BasicAuth(_Strict):
    username: str = Field(min_length=1)
    password: SecretStr


class PrometheusEndpoint(_Strict):
    """One Prometheus (or anything speaking its HTTP API: Thanos, Mimir, VictoriaMetrics)."""

    name: str = "default"
    url: str = Field(description="base URL, e.g. http://127.0.0.1:9090")
    bearer_token: SecretStr | None = None
    basic_auth: BasicAuth | None = None
    tls_verify: bool = True
    timeout: Duration = 10.0

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_auth(self) -> PrometheusEndpoint:
        if self.bearer_token is not None and self.basic_auth is not None:
            raise ValueError("give bearer_token or basic_auth, not both")
        return self


class Watch(_Strict):
    """A PromQL query whose every returned series is scored by its own streaming detector."""

    name: str
    prometheus: str | None = Field(None, description="endpoint name (default: the first endpoint)")
    query: str = Field(min_length=1)
    service_label: str = "service"
    resource_label: str | None = None
    direction: Direction = "both"
    detector: str = "default"
    options: dict[str, Any] = Field(default_factory=dict)
    threshold: float | None = Field(None, gt=0, le=1, description="default: the detector's shipped threshold")
    floor: float = Field(0.0, ge=0, description="smallest deviation from the expected value worth an anomaly")
    severity: Severity = Severity.WARNING
    interval: Duration = 30.0
    rca: bool = Field(True, description="use this watch's series as evidence when ranking causes")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value)


def _check_name(value: str) -> str:
    if not NAME.match(value):
        raise ValueError("must be 1-63 letters, digits, '_', '.' or '-'")
    return value


class ForecastWatch(_Strict):
    """A PromQL query whose series are forecast; a predicted crossing of ``threshold`` within
    ``horizon`` raises ``Event(kind=forecast)``."""

    name: str
    prometheus: str | None = None
    query: str = Field(min_length=1)
    service_label: str = "service"
    resource_label: str | None = None
    threshold: float
    direction: Literal["up", "down"] = "up"
    horizon: Duration = 21_600.0
    lookback: Duration = 86_400.0
    step: Duration | None = Field(None, description="query_range resolution (default: lookback / 500)")
    severity: Severity = Severity.WARNING
    interval: Duration = 300.0

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value)


class WatchConfig(_Strict):
    prometheus: list[PrometheusEndpoint] = Field(default_factory=list)
    watches: list[Watch] = Field(default_factory=list)
    forecasts: list[ForecastWatch] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> WatchConfig:
        endpoints = [p.name for p in self.prometheus]
        if len(set(endpoints)) != len(endpoints):
            raise ValueError(f"prometheus endpoint names must be unique: {endpoints}")
        every: list[Watch | ForecastWatch] = [*self.watches, *self.forecasts]
        names = [w.name for w in every]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"watch names must be unique; repeated: {', '.join(duplicated)}")
        if (self.watches or self.forecasts) and not self.prometheus:
            raise ValueError("watches need at least one prometheus endpoint")
        for w in every:
            if w.prometheus is not None and w.prometheus not in endpoints:
                raise ValueError(f"watch {w.name!r} names prometheus {w.prometheus!r}; known: {', '.join(endpoints)}")
        return self

    def endpoint(self, name: str | None) -> PrometheusEndpoint:
        """The endpoint a watch names (the first one when it names none)."""
        if name is None:
            return self.prometheus[0]
        return next(p for p in self.prometheus if p.name == name)


class ServiceSpec(_Strict):
    depends_on: list[str] = Field(default_factory=list)


class TopologyConfig(_Strict):
    """The service graph: ``services: {checkout: {depends_on: [payment]}}`` (caller → callee)."""

    services: dict[str, ServiceSpec] = Field(default_factory=dict)
    file: Path | None = Field(None, description="a YAML or JSON file holding the same mapping (merged)")

    def edges(self) -> list[tuple[str, str]]:
        return [(caller, callee) for caller, spec in self.services.items() for callee in spec.depends_on]


class RcaConfig(_Strict):
    """How ``serve`` ranks causes when an incident opens or gains a service."""

    enabled: bool = True
    window: Duration = Field(300.0, description="evidence after the onset")
    reference: Duration = Field(3600.0, description="history before the onset that describes normal")
    step: Duration | None = Field(None, description="query_range resolution (default: the watch's interval)")
    delay: Duration = Field(5.0, description="wait this long after an incident opens before the first ranking")
    rerank: Duration = Field(30.0, description="rank an open incident again this often while evidence grows")
    calibration: Path | None = Field(None, description="confidence model JSON (default: the shipped one)")
    change_window: Duration = Field(1800.0, description="a change this long before the onset is a suspect")
