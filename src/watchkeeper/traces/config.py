"""The ``traces:`` section of the server YAML (docs/traces.md).

```yaml
traces:
  enabled: true            # POST /v1/traces takes OTLP/HTTP exports
  step_s: 60               # RED rows per step (seconds)
  lateness_s: 30           # how long a span may arrive after its step before the step is written
  topology_hours: 24       # edges seen in RED rows this recent join the service graph
  retention: {raw_hours: 24, max_mb: 512, red_days: 14}
  anomalies:
    enabled: true
    detector: default      # the watches' detectors (detect/): default | likelihood | robust | cusum
    min_calls: 5           # a step with fewer calls is not scored
    latency_floor_s: 0.005 # a p95 change smaller than this is never an anomaly
    error_floor: 0.05      # an error-ratio change smaller than this is never an anomaly
```

>>> TracesConfig().retention.raw_hours, TracesConfig.model_validate({"step_s": 10}).step_s
(24.0, 10.0)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from watchkeeper.model import Severity


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TraceRetention(_Strict):
    raw_hours: float = Field(24.0, ge=0, le=24 * 365, description="raw spans are kept this long (0: not pruned by age)")
    max_mb: float = Field(512.0, ge=0, description="raw spans beyond this size are pruned, oldest first (0: no cap)")
    red_days: float = Field(14.0, ge=0, description="RED rows are kept this long (0: forever)")


class TraceAnomalies(_Strict):
    enabled: bool = True
    detector: str = Field("default", description="a shipped detector: default | likelihood | robust | cusum")
    options: dict[str, Any] = Field(default_factory=dict, description="the detector's constructor arguments")
    min_calls: int = Field(5, ge=1, description="steps with fewer calls are not scored")
    latency_floor_s: float = Field(0.005, ge=0, description="smaller p95 deviations never count")
    error_floor: float = Field(0.05, ge=0, le=1, description="smaller error-ratio deviations never count")
    severity: Severity = Severity.WARNING


class TracesConfig(_Strict):
    enabled: bool = True
    step_s: float = Field(60.0, ge=1, le=3600, description="the RED rows' step, seconds")
    lateness_s: float = Field(30.0, ge=0, le=3600, description="a step is written this long after it ends")
    max_spans: int = Field(200_000, ge=1000, description="spans the aggregator holds at most (bounded memory)")
    topology_hours: float = Field(24.0, gt=0, description="edges seen this recently join the service graph")
    retention: TraceRetention = Field(default_factory=TraceRetention)
    anomalies: TraceAnomalies = Field(default_factory=TraceAnomalies)


__all__ = ["TraceAnomalies", "TraceRetention", "TracesConfig"]
