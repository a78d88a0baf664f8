"""What the value commands share: consoles, the main CLI's helpers, JSON, tables, YAML files."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import yaml
from pydantic import ValidationError
from rich.console import Console

from watchkeeper.errors import InputError
from watchkeeper.portfolio import Portfolio
from watchkeeper.yamlfile import load

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def cli_common() -> ModuleType:
    """The main CLI's shared helpers (settings, the service, who acts), imported when a command
    runs: the main CLI package imports this module to register it."""
    return importlib.import_module("watchkeeper.cli.common")


def portfolio_of(wk: Any) -> Portfolio:
    return Portfolio.of(wk)


@dataclass(frozen=True, slots=True)
class Backend:
    """Where a value command acts: the database (``wk`` set) or a server's API (``--url``)."""

    portfolio: Any  # Portfolio, or RemotePortfolio
    registry: Any  # Registry, or RemoteRegistry
    wk: Any = None

    @property
    def remote(self) -> bool:
        return self.wk is None

    def evaluate(self, case_id: str | None, *, apply: bool, actor: str) -> list[dict[str, Any]]:
        if self.wk is None:
            found: list[dict[str, Any]] = self.portfolio.evaluate_docs(case_id, apply=apply)
            return found
        return [e.as_dict() for e in self.portfolio.evaluate(case_id, apply=apply, actor=actor)]


@contextmanager
def backend(token: str | None = None) -> Iterator[Backend]:
    """The server's API when ``--url`` / ``WATCHKEEPER_URL`` is given (with ``token`` instead of the
    global ``--token`` when one is passed: a vote's approver), else the database."""
    common = cli_common()
    if common.STATE.url is None:
        from watchkeeper.model_registry import Registry

        with common.service() as wk:
            yield Backend(portfolio_of(wk), Registry(wk.db, wk.clock), wk)
        return
    from watchkeeper.value_remote import RemotePortfolio, RemoteRegistry, ValueApi

    api = ValueApi(common.STATE.url, token or common.STATE.token)
    try:
        yield Backend(RemotePortfolio(api), RemoteRegistry(api))
    finally:
        api.close()


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS | orjson.OPT_INDENT_2).decode()


#: Columns of free text: the only ones that wrap (ids and states stay whole, as elsewhere in the CLI).
_WRAP = frozenset({"title", "criterion", "runbooks", "services", "held out", "in sample", "registered"})


def make_table(*headers: str) -> Any:
    from rich import box
    from rich.table import Column, Table

    columns = [Column(h, no_wrap=h not in _WRAP, overflow="fold") for h in headers]
    return Table(*columns, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 2, 0, 0), collapse_padding=True)



def load_model(path: Path, model: Any) -> Any:
    """A pydantic model from a YAML file, or an :class:`InputError` with every problem as file:line."""
    try:
        doc = load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise InputError("\n".join(f"{path}:{doc.where(tuple(e['loc']))[0]}: {doc.where(tuple(e['loc']))[1]}: "
                                   f"{e['msg']}" for e in exc.errors())) from None
