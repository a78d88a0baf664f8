"""``open_jetstream``'s patience: a NATS that answers too slowly at start-up is asked again until
the patience runs out; a wrong configuration fails at once."""

from __future__ import annotations

from typing import Any

import pytest

from watchkeeper.bus import BusUnavailable, open_jetstream
from watchkeeper.bus.jetstream import JetStreamBus
from watchkeeper.errors import ConfigError
from watchkeeper.settings import Settings


class Flaky:
    """``JetStreamBus.open`` that fails ``times`` times with ``error``, then answers."""

    def __init__(self, error: Exception, times: int) -> None:
        self.error, self.times, self.calls = error, times, 0

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return "bus"


@pytest.fixture
def settings() -> Settings:
    return Settings(database_url="sqlite://", bus_url="nats://127.0.0.1:4222")


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda _s: None)


def test_a_slow_nats_is_asked_again_within_the_patience(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    flaky = Flaky(BusUnavailable("NATS did not answer within 2 s"), times=2)
    monkeypatch.setattr(JetStreamBus, "open", flaky)
    assert open_jetstream(settings, patience=60.0) == "bus"  # type: ignore[comparison-overlap]
    assert flaky.calls == 3


def test_without_patience_a_slow_nats_fails_at_once(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    flaky = Flaky(BusUnavailable("NATS did not answer within 2 s"), times=1)
    monkeypatch.setattr(JetStreamBus, "open", flaky)
    with pytest.raises(BusUnavailable):
        open_jetstream(settings)
    assert flaky.calls == 1


def test_a_wrong_configuration_is_never_retried(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    flaky = Flaky(ConfigError("the JetStream stream 'WATCHKEEPER' does not exist"), times=5)
    monkeypatch.setattr(JetStreamBus, "open", flaky)
    with pytest.raises(ConfigError, match="does not exist"):
        open_jetstream(settings, patience=60.0)
    assert flaky.calls == 1


def test_the_patience_runs_out(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    ticks = iter(range(0, 1000, 10))
    monkeypatch.setattr("time.monotonic", lambda: float(next(ticks)))
    flaky = Flaky(BusUnavailable("NATS did not answer within 2 s"), times=100)
    monkeypatch.setattr(JetStreamBus, "open", flaky)
    with pytest.raises(BusUnavailable):
        open_jetstream(settings, patience=25.0)
    assert flaky.calls == 3  # at 10 s, 20 s, 30 s: past the deadline of 25 s
