"""The detector protocol: river-style ``learn_one`` / ``score_one``, scores in ``[0, 1]``.

A detector only scores; it never decides. :mod:`watchkeeper.detect.filter` turns scores into
anomaly events and decides whether a point may be learned. Constructor arguments are the whole
configuration (``params()``, ``clone()`` and ``repr`` derive from them), and the learned state is
a plain JSON-able dict (``to_state()`` / ``from_state()``), never a pickle.
"""

from __future__ import annotations

import abc
import inspect
import math
from collections.abc import Sequence
from typing import Any, ClassVar, Self

#: A detector's persisted form: ``{"kind", "version", "params", "state"}``, JSON-able.
State = dict[str, Any]


class Estimator(abc.ABC):
    """Shared plumbing: parameters from the constructor, cloning, JSON-able state."""

    #: Bumped when the layout of ``_get_state`` changes; ``from_state`` refuses other versions.
    state_version: ClassVar[int] = 1

    def params(self) -> dict[str, Any]:
        """The constructor arguments, read back from attributes of the same name."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def clone(self) -> Self:
        """A fresh, untrained detector with the same configuration."""
        return type(self)(**self.params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    def to_state(self) -> State:
        """Configuration plus learned state, as plain JSON-able values."""
        return {"kind": type(self).__name__, "version": self.state_version,
                "params": self.params(), "state": self._get_state()}

    @classmethod
    def from_state(cls, state: State) -> Self:
        """Rebuild a detector from :meth:`to_state` output; it scores exactly as the original."""
        if state.get("kind") != cls.__name__ or state.get("version") != cls.state_version:
            raise ValueError(
                f"state of {state.get('kind')} v{state.get('version')} cannot load into "
                f"{cls.__name__} v{cls.state_version}"
            )
        detector = cls(**state["params"])
        detector._set_state(state["state"])
        return detector

    @abc.abstractmethod
    def _get_state(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def _set_state(self, state: dict[str, Any]) -> None: ...


class Detector(Estimator):
    """A univariate streaming detector: ``x`` is the value, ``t`` the time in epoch seconds."""

    @abc.abstractmethod
    def learn_one(self, x: float, t: float) -> None:
        """Update the model with one (normal) observation."""

    @abc.abstractmethod
    def score_one(self, x: float, t: float) -> float:
        """How anomalous ``x`` at ``t`` is, in ``[0, 1]``; does not change the model."""

    def score_learn_one(self, x: float, t: float) -> float:
        """:meth:`score_one`, then :meth:`learn_one`; the score. Detectors may do both in one
        pass (faster), but must give exactly the score and the state of the two calls."""
        score = self.score_one(x, t)
        self.learn_one(x, t)
        return score

    def expected_range(self, t: float) -> tuple[float, float] | None:
        """The range of values the model considers normal at ``t`` (``None`` while warming up)."""
        return None


class MultiDetector(Estimator):
    """A multivariate streaming detector over a fixed set of metrics (one vector per time)."""

    @abc.abstractmethod
    def learn_one(self, x: Sequence[float], t: float) -> None:
        """Update the model with one (normal) vector."""

    @abc.abstractmethod
    def score_one(self, x: Sequence[float], t: float) -> float:
        """How anomalous the vector is, in ``[0, 1]``; does not change the model."""


def squash(z: float, half: float) -> float:
    """Map a non-negative deviation onto ``[0, 1)``: ``z == half`` gives 0.5.

    >>> squash(0.0, 5.0), squash(5.0, 5.0), round(squash(15.0, 5.0), 2)
    (0.0, 0.5, 0.9)
    """
    if not z > 0.0:  # also NaN
        return 0.0
    if math.isinf(z):
        return 1.0
    z2 = z * z
    return z2 / (z2 + half * half)
