"""The model registry's vocabulary and drift tests, pure.

A model version (a detector, a template miner, a correlation strategy, an RCA model) is
registered with its parameters, its training window, its evaluation scores — held out as well as
in-sample — and a reference sample of its output scores. Drift compares a recent sample with
that reference: the population stability index (PSI, on the reference's deciles) and the
two-sample Kolmogorov-Smirnov statistic; either past its threshold is a drift event, which the
stage gates count (``drift_events``) for the use cases that name the model.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watchkeeper.sources.limits import UtcTime

#: PSI from which a population has shifted enough to act (the usual rule of thumb: < 0.1 stable,
#: 0.1-0.25 moderate, > 0.25 significant).
PSI_DRIFT = 0.25
#: The Kolmogorov-Smirnov coefficient at a 1 % significance level.
KS_ALPHA_COEFFICIENT = 1.628
MAX_SAMPLE = 100_000
#: A number in a request: true/false are not numbers (pydantic's lax mode would take them), nor NaN.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class ModelKind(StrEnum):
    DETECTOR = "detector"
    TEMPLATE_MINER = "template_miner"
    CORRELATION = "correlation"
    RCA = "rca"


class Scores(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    held_out: dict[str, Number] = Field(default_factory=dict, description="scores on data it was not tuned on")
    in_sample: dict[str, Number] = Field(default_factory=dict, description="scores on the data it was tuned on")


def _storable(value: Any) -> None:
    """JSON the database can keep: no integer beyond 64 bits, anywhere inside.

    >>> _storable({"a": [1, 2**63 - 1]}) is None
    True
    >>> _storable({"a": [2**64]})
    Traceback (most recent call last):
    ...
    ValueError: integers must fit in 64 bits (found 18446744073709551616)
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool) and not -(2**63) <= item < 2**63:
            raise ValueError(f"integers must fit in 64 bits (found {item})")


class ModelVersion(BaseModel):
    """One registered model version (``watchkeeper models register FILE``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ModelKind
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$")
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
    params: dict[str, Any] = Field(default_factory=dict)
    train_start: UtcTime | None = None  # ISO 8601 text (a number is refused); without an offset: UTC
    train_end: UtcTime | None = None
    scores: Scores = Field(default_factory=Scores)
    baseline: list[Number] = Field(default_factory=list, max_length=MAX_SAMPLE,
                                  description="a reference sample of its output scores (for drift)")

    @field_validator("baseline")
    @classmethod
    def _finite(cls, values: list[float]) -> list[float]:
        if any(not math.isfinite(v) for v in values):
            raise ValueError("scores must be finite numbers")
        _storable(values)
        return values

    @field_validator("params")
    @classmethod
    def _storable_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        _storable(value)
        return value

    @model_validator(mode="after")
    def _window(self) -> ModelVersion:
        if self.train_start and self.train_end and self.train_end <= self.train_start:
            raise ValueError("train_end must be after train_start")
        return self

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.name}"


def psi(expected: Sequence[float], actual: Sequence[float], bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected``, on the deciles of
    ``expected`` (empty bins get a small floor, so the index stays finite).

    >>> round(psi(list(range(100)), list(range(100))), 6)
    0.0
    >>> psi(list(range(100)), [x + 50 for x in range(100)]) > PSI_DRIFT
    True
    """
    if not expected or not actual:
        raise ValueError("both samples need at least one score")
    ref = sorted(expected)
    edges = sorted({ref[min(len(ref) - 1, int(len(ref) * q / bins))] for q in range(1, bins)})

    def shares(sample: Sequence[float]) -> list[float]:
        counts = [0] * (len(edges) + 1)
        for x in sample:
            counts[bisect.bisect_right(edges, x)] += 1
        return [max(c / len(sample), 1e-4) for c in counts]

    e, a = shares(expected), shares(actual)
    return sum((ai - ei) * math.log(ai / ei) for ei, ai in zip(e, a, strict=True))


def ks(expected: Sequence[float], actual: Sequence[float]) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs.

    >>> ks([1, 2, 3], [1, 2, 3]), ks([1, 2, 3], [10, 11, 12])
    (0.0, 1.0)
    """
    if not expected or not actual:
        raise ValueError("both samples need at least one score")
    a, b = sorted(expected), sorted(actual)
    gap = 0.0
    for x in sorted(set(a) | set(b)):
        gap = max(gap, abs(bisect.bisect_right(a, x) / len(a) - bisect.bisect_right(b, x) / len(b)))
    return gap


def ks_critical(n: int, m: int) -> float:
    """The statistic above which two samples of sizes n and m differ at the 1 % level.

    >>> round(ks_critical(100, 100), 4)
    0.2302
    """
    return KS_ALPHA_COEFFICIENT * math.sqrt((n + m) / (n * m))


class DriftReason(StrEnum):
    STABLE = "stable"
    PSI = "psi_above_threshold"
    KS = "ks_above_critical"
    PSI_AND_KS = "psi_and_ks"
    TOO_FEW = "too_few_samples"


@dataclass(frozen=True, slots=True)
class Drift:
    psi: float | None
    ks: float | None
    ks_critical: float | None
    reason: DriftReason
    reference: int
    current: int

    @property
    def drifted(self) -> bool:
        return self.reason in (DriftReason.PSI, DriftReason.KS, DriftReason.PSI_AND_KS)

    def as_dict(self) -> dict[str, Any]:
        return {"psi": self.psi, "ks": self.ks, "ks_critical": self.ks_critical, "reason": self.reason.value,
                "drifted": self.drifted, "reference": self.reference, "current": self.current,
                "psi_threshold": PSI_DRIFT}


def check(reference: Sequence[float], current: Sequence[float], *, min_samples: int = 30,
          psi_threshold: float = PSI_DRIFT) -> Drift:
    """Has ``current`` drifted from ``reference``?

    >>> check(list(range(100)), list(range(100))).reason.value
    'stable'
    >>> check(list(range(100)), [x * 3 for x in range(100)]).reason.value
    'psi_and_ks'
    >>> check(list(range(100)), [1.0] * 5).reason.value
    'too_few_samples'
    """
    if len(reference) < min_samples or len(current) < min_samples:
        return Drift(None, None, None, DriftReason.TOO_FEW, len(reference), len(current))
    p, d = psi(reference, current), ks(reference, current)
    critical = ks_critical(len(reference), len(current))
    by_psi, by_ks = p >= psi_threshold, d > critical
    reason = (DriftReason.PSI_AND_KS if by_psi and by_ks else DriftReason.PSI if by_psi
              else DriftReason.KS if by_ks else DriftReason.STABLE)
    return Drift(round(p, 6), round(d, 6), round(critical, 6), reason, len(reference), len(current))


def hourly_counts(times: Sequence[datetime], start: datetime, end: datetime) -> list[float]:
    """Events per hour over ``[start, end)`` (the rate whose distribution drift compares).

    >>> from datetime import UTC, timedelta as d
    >>> t = datetime(2026, 11, 1, tzinfo=UTC)
    >>> hourly_counts([t, t + d(minutes=5), t + d(hours=2)], t, t + d(hours=3))
    [2.0, 0.0, 1.0]
    """
    hours = max(int((end - start).total_seconds() // 3600), 0)
    counts = [0.0] * hours
    for at in times:
        slot = int((at - start).total_seconds() // 3600)
        if 0 <= slot < hours:
            counts[slot] += 1
    return counts
