"""What every console test file shares: browser-like clients for a service the file's own `wk`
fixture makes (each file decides the database and the integrations)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from fixtures.console import Browser
from watchkeeper.service import Watchkeeper


@pytest.fixture
def browser(wk: Watchkeeper) -> Iterator[Callable[[str], Browser]]:
    """``browser(name)`` opens a client signed in as ``name`` (``""``: signed out); all closed after."""
    opened: list[Browser] = []

    def open_as(name: str) -> Browser:
        b = Browser(wk)
        b.client.__enter__()
        opened.append(b)
        if name:
            assert b.sign_in(name).status_code == 303
        return b

    yield open_as
    for b in opened:
        b.client.__exit__(None, None, None)
