"""Correlation configuration (YAML): the window and the strategies, in priority order.

```yaml
window: 5m
auto_resolve: true
graph_file: services.yaml # optional: the service graph, added as a topology strategy (2 hops)
join:                     # the join score (see docs/correlation.md)
  threshold: 0.5          # join the best incident scoring this much or more
  possibly_related: 0.25  # name incidents scoring this much or more as "possibly related"
  lag: 30s                # a symptom's onset within this of its cause's keeps the full weight
  lead: 15s               # a caller's alert starting more than this before its dependency's is not its symptom
  learn_lag: true         # learn each alert kind's usual lag behind its service's first alert (late kinds)
  signals: true           # a caller's errors follow a dependency's errors or outage, its latency a dependency's latency
strategies:
  - type: labels          # Alertmanager-style group_by
    group_by: [service]
  - type: topology        # services connected in the graph
    hops: 1
    graph:                # service: [services it depends on]
      frontend: [checkout, catalog]
      checkout: [payments-db]
  - type: text            # same summary template once numbers and hosts are masked
    scope: service        # only within one service (or: any)
```
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from watchkeeper.correlate.evidence import JoinPolicy
from watchkeeper.correlate.pipeline_config import PipelineConfig
from watchkeeper.correlate.strategies import (
    CoOccurring,
    Host,
    LabelGroup,
    Mentions,
    Strategy,
    TextTemplate,
    Topology,
)
from watchkeeper.errors import ConfigError, InputError
from watchkeeper.suppress import FlapDetector, InhibitRule
from watchkeeper.yamlfile import Duration, load


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelsSpec(_Strict):
    type: Literal["labels"]
    group_by: list[str] = Field(default_factory=lambda: ["service"], min_length=1)


class TopologySpec(_Strict):
    type: Literal["topology"]
    graph: dict[str, list[str]] = Field(default_factory=dict, description="service: [services it depends on]")
    graph_file: Path | None = Field(None, description="YAML file holding the same mapping")
    hops: int = Field(1, ge=1, le=5)
    labels: list[str] = Field(default_factory=list,
                              description="alert labels naming services it depends on, e.g. [depends_on]")


class TextSpec(_Strict):
    type: Literal["text"]
    scope: Literal["any", "service"] = "service"


class CoOccurrenceSpec(_Strict):
    type: Literal["cooccurrence"]
    graph: dict[str, list[str]] = Field(default_factory=dict, description="alert type: [types it fires with]")
    graph_file: Path | None = Field(None, description="YAML written by `watchkeeper correlation learn`")


class HostSpec(_Strict):
    type: Literal["host"]
    max_services: int = Field(3, ge=1, description="a host seen under more services is no evidence")
    node_jobs: list[str] = Field(default_factory=lambda: list(Host.NODE_JOBS),
                                 description="job/service values of host-level alerts (node exporter)")
    max_hosts: int = Field(Host.MAX_HOSTS, ge=1,
                           description="hosts whose services are remembered (the least recently seen forgotten first)")


class MentionsSpec(_Strict):
    type: Literal["mentions"]
    labels: list[str] = Field(default_factory=lambda: list(Mentions.LABELS), min_length=1,
                              description="labels whose value names the service an alert blames")


StrategySpec = Annotated[LabelsSpec | TopologySpec | TextSpec | CoOccurrenceSpec | HostSpec | MentionsSpec,
                         Field(discriminator="type")]


class JoinSpec(_Strict):
    threshold: float = Field(0.5, gt=0, le=1, description="join the best incident scoring this or more")
    possibly_related: float = Field(0.25, ge=0, le=1, description="below threshold: name it, do not merge")
    lag: Duration = 30.0
    same_name_bonus: float = Field(0.3, ge=0, le=1, description="the same alert name on the same service")
    elsewhere: float = Field(0.5, ge=0, le=1, description="share of weight kept when a label names another culprit")
    lead: Duration = 15.0
    learn_lag: bool = Field(True, description="learn each alert kind's usual lag behind its service's first alert")
    signals: bool = Field(True, description="a caller's symptom shows its cause's golden signal (errors, latency)")
    reopen: bool = Field(True, description="an alert firing again within the window reopens its incident")

    def policy(self) -> JoinPolicy:
        return JoinPolicy(join=self.threshold, possible=self.possibly_related, lag=timedelta(seconds=self.lag),
                          same_name_bonus=self.same_name_bonus, elsewhere=self.elsewhere, reopen=self.reopen,
                          lead=timedelta(seconds=self.lead), learn_lag=self.learn_lag,
                          signals=self.signals)


class FlappingSpec(_Strict):
    transitions: int = Field(4, ge=2, description="state changes within the window that make it flapping")
    window: Duration = 600.0


class CorrelationConfig(_Strict):
    window: Duration = 300.0
    auto_resolve: bool = True
    strategies: list[StrategySpec] = Field(default_factory=lambda: _default_strategies(), min_length=1)
    inhibit_rules: list[dict[str, Any]] = Field(default_factory=list, description="Alertmanager's inhibit_rules")
    flapping: FlappingSpec | None = Field(default_factory=lambda: FlappingSpec(), description="null: off")
    join: JoinSpec = Field(default_factory=lambda: JoinSpec())
    graph: dict[str, list[str]] = Field(default_factory=dict,
                                        description="service: [services it calls]; adds a topology strategy")
    graph_file: Path | None = Field(None, description="YAML file holding the same mapping")
    hops: int = Field(2, ge=1, le=5, description="hops of the topology strategy `graph` adds")

    def inhibitors(self) -> tuple[InhibitRule, ...]:
        return tuple(InhibitRule.from_config(i, spec) for i, spec in enumerate(self.inhibit_rules))

    def flap_detector(self) -> FlapDetector | None:
        return None if self.flapping is None else FlapDetector(self.flapping.transitions,
                                                               timedelta(seconds=self.flapping.window))

    def pipeline(self, base: Path | None = None) -> PipelineConfig:
        return PipelineConfig(self.window_delta, self.auto_resolve, self.build(base), self.flap_detector(),
                              self.inhibitors(), self.join.policy())

    def build(self, base: Path | None = None) -> tuple[Strategy, ...]:
        built: list[Strategy] = []
        for spec in self.strategies:
            if isinstance(spec, LabelsSpec):
                built.append(LabelGroup(spec.group_by))
            elif isinstance(spec, TopologySpec | CoOccurrenceSpec):
                graph = dict(spec.graph)
                if spec.graph_file is not None:
                    graph.update(_graph_file(spec.graph_file if base is None else base / spec.graph_file))
                built.append(Topology(graph, spec.hops, spec.labels) if isinstance(spec, TopologySpec)
                             else CoOccurring(graph))
            elif isinstance(spec, HostSpec):
                built.append(Host(spec.max_services, spec.node_jobs, spec.max_hosts))
            elif isinstance(spec, MentionsSpec):
                built.append(Mentions(spec.labels))
            else:
                built.append(TextTemplate(spec.scope))
        if (self.graph or self.graph_file) and not any(isinstance(s, TopologySpec) for s in self.strategies):
            graph = dict(self.graph)
            if self.graph_file is not None:
                graph.update(_graph_file(self.graph_file if base is None else base / self.graph_file))
            built.append(Topology(graph, self.hops))
        return tuple(built)

    @property
    def window_delta(self) -> timedelta:
        return timedelta(seconds=self.window)


def _default_strategies() -> list[StrategySpec]:
    """Alertmanager's labels only: same service, a label naming the failing service, same host."""
    return [LabelsSpec(type="labels"), MentionsSpec(type="mentions"), HostSpec(type="host")]


def _graph_file(path: Path) -> dict[str, list[str]]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the service graph {path}: {exc}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v) for k, v in data.items()
    ):
        raise ConfigError(f"{path}: the service graph must map each service to a list of services")
    return data


def load_config(path: Path) -> CorrelationConfig:
    """Read and validate; every problem is reported as ``file:line: field: message``."""
    try:
        doc = load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    try:
        config = CorrelationConfig.model_validate(doc.data or {})
        config.build(path.parent)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            line, where = doc.where(tuple(err["loc"]))
            problems.append(f"{path}:{line}: {where}: {err['msg']}")
        raise ConfigError("invalid correlation config:\n" + "\n".join(problems)) from exc
    try:
        config.inhibitors()
    except InputError as exc:
        raise ConfigError(f"{path}:{doc.line(('inhibit_rules',))}: inhibit_rules: {exc}") from exc
    return config
