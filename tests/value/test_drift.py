"""Drift, on seeded samples: PSI and KS agree with their definitions, thresholds act as stated."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from watchkeeper.value.drift import DriftReason, ModelVersion, check, hourly_counts, ks, ks_critical, psi


def normal(n: int, mean: float, sd: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, sd) for _ in range(n)]


REFERENCE = normal(2000, 0.0, 1.0, seed=1)


@pytest.mark.parametrize(("current", "reason"), [
    (normal(2000, 0.0, 1.0, seed=2), DriftReason.STABLE),  # the same population, another draw
    (normal(2000, 0.05, 1.0, seed=3), DriftReason.STABLE),  # a shift too small to act on
    (normal(2000, 1.0, 1.0, seed=4), DriftReason.PSI_AND_KS),  # one standard deviation up
    (normal(2000, 0.0, 3.0, seed=5), DriftReason.PSI_AND_KS),  # the spread tripled
    (normal(2000, 0.25, 1.0, seed=6), DriftReason.KS),  # large samples: KS sees what PSI tolerates
    (normal(20, 5.0, 1.0, seed=7), DriftReason.TOO_FEW),
])
def test_drift_on_seeded_samples(current: list[float], reason: DriftReason) -> None:
    found = check(REFERENCE, current)
    assert found.reason is reason, found
    assert found.drifted is (reason in (DriftReason.PSI, DriftReason.KS, DriftReason.PSI_AND_KS))


def test_psi_by_hand() -> None:
    # two bins (the median splits the reference): 50/50 against 80/20
    reference, current = [0.0] * 50 + [1.0] * 50, [0.0] * 80 + [1.0] * 20
    want = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert psi(reference, current) == pytest.approx(want)
    assert ks(reference, current) == pytest.approx(0.3)
    assert ks_critical(1000, 1000) == pytest.approx(1.628 * (2 / 1000) ** 0.5)
    with pytest.raises(ValueError, match="at least one score"):
        psi([], [1.0])


def test_hourly_counts_ignore_what_is_outside() -> None:
    t = datetime(2026, 11, 1, tzinfo=UTC)
    assert hourly_counts([t - timedelta(minutes=1), t, t + timedelta(hours=2, minutes=59), t + timedelta(hours=3)],
                         t, t + timedelta(hours=3)) == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("doc", [
    {"kind": "oracle", "name": "x", "version": "1"},
    {"kind": "detector", "name": "X Y", "version": "1"},
    {"kind": "detector", "name": "x", "version": ""},
    {"kind": "detector", "name": "x", "version": "1", "baseline": [1.0, float("inf")]},
    {"kind": "detector", "name": "x", "version": "1", "train_start": "2026-11-02T00:00:00Z",
     "train_end": "2026-11-01T00:00:00Z"},
    {"kind": "detector", "name": "x", "version": "1", "train_start": 0, "train_end": "2000-01-01T00:00:00Z"},
    {"kind": "detector", "name": "x", "version": "1", "scores": {"held_out": {"f1": "good"}}},
])
def test_hostile_model_versions(doc: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ModelVersion.model_validate(doc)
