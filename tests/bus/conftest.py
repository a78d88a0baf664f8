"""Fixtures of the bus tests: a NATS server of their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.natsd import NatsServer


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats").start()
    try:
        yield server
    finally:
        server.stop()
