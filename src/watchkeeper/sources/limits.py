"""What a request body and the events made from it may hold, checked at the edge.

Each limit turns an error the database (or the JSON encoder) would raise deep inside a shared
transaction into a 4xx that names the field, before the body joins anyone else's commit:

- ``json_problem``: nesting deeper than :data:`MAX_JSON_DEPTH` (orjson decodes 1,024 levels but
  encodes only 254, and a recursive walk of 1,000 levels is near Python's stack limit), or a NUL
  character (PostgreSQL text cannot hold one).
- ``size_problem``: an event field longer than its column (``storage/tables.py``; a test checks
  that the two agree).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from watchkeeper.model import Event, utc

#: Deepest accepted JSON nesting of any request body (objects and arrays, the top one counting 1).
MAX_JSON_DEPTH = 64

#: Longest value of each event field that has a sized column (``storage/tables.py``).
FIELD_LIMITS: dict[str, int] = {"source": 64, "fingerprint": 256, "name": 256, "service": 256, "resource": 256}
#: The labels a field is taken from, to name the culprit in the message.
_FROM_LABELS = {"name": "alertname", "service": "service", "resource": "instance"}


def json_problem(value: Any, max_depth: int = MAX_JSON_DEPTH, *, strings: bool = True) -> str | None:
    """Why a decoded JSON document cannot be accepted (too deep, or a NUL character), or None.
    Iterative, so a hostile depth cannot exhaust the stack. ``strings=False`` skips the NUL
    check (the ingest path does it only when the raw body holds ``\\u0000``).

    >>> json_problem({"a": [1, "two", {"b": None}]}) is None
    True
    >>> json_problem([[[[1]]]], max_depth=3)
    'JSON nested deeper than 3 levels'
    >>> json_problem({"k": ["a\\x00b"]})
    'a string holds a NUL character (\\\\u0000), which cannot be stored'
    """
    if isinstance(value, str):
        return _NUL_VALUE if strings and "\x00" in value else None
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if type(item) is dict:
            if strings and any("\x00" in key for key in item):
                return "a key holds a NUL character (\\u0000), which cannot be stored"
            children: Any = item.values()
        elif type(item) is list:
            children = item
        else:
            continue
        if depth > max_depth:
            return f"JSON nested deeper than {max_depth} levels"
        kinds = set(map(type, children))  # in C: most objects hold only strings and numbers
        if dict in kinds or list in kinds:
            stack.extend([(child, depth + 1) for child in children if type(child) is dict or type(child) is list])
        if strings and str in kinds and any(type(c) is str and "\x00" in c for c in children):
            return _NUL_VALUE
    return None


_NUL_VALUE = "a string holds a NUL character (\\u0000), which cannot be stored"


def size_problem(events: Iterable[Event]) -> str | None:
    """The first event field longer than its column can store, as a sentence, or None.

    >>> from datetime import UTC
    >>> from watchkeeper.model import EventKind, Severity, Status
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> e = Event("am", EventKind.ALERT, "f", Status.FIRING, Severity.INFO, "Down", "db", "h" * 300,
    ...           {"instance": "h" * 300}, "x", t, None, t)
    >>> size_problem([e])
    "event 0: resource (label 'instance') is 300 characters long; at most 256 can be stored"
    """
    for index, event in enumerate(events):
        for name, limit in FIELD_LIMITS.items():
            value: str = getattr(event, name)
            if len(value) > limit:
                label = _FROM_LABELS.get(name)
                where = f" (label {label!r})" if label and event.labels.get(label) == value else ""
                return (f"event {index}: {name}{where} is {len(value)} characters long; "
                        f"at most {limit} can be stored")
    return None


_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_text(value: Any) -> Any:
    """Only ISO 8601 text (or a datetime) is a time: not a number taken as a Unix timestamp."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_TIME.match(value)):
        return value
    raise ValueError("expected an ISO 8601 date and time, e.g. 2026-01-31T12:00:00Z")


def _in_utc(value: datetime) -> datetime:
    return utc(value)  # raises ValueError (a validation error) for a time that leaves years 1-9999


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected an integer, not true or false")
    return value


#: An integer field of a request: ``true``/``false`` are not integers (pydantic's lax mode takes them),
#: and it fits 64 bits (the spec says so: a larger one is a 422, as the JSON parser refuses it).
JsonInt = Annotated[int, Field(ge=-(2**63), le=2**63 - 1), BeforeValidator(_not_bool)]

#: A datetime field of a request: ISO 8601 text, converted to UTC once, and refused (422) when that
#: conversion leaves the years 1-9999 (``0001-01-01T00:00:00+01:00``, ``9999-12-31T23:59:59-01:00``).
UtcTime = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_in_utc)]

__all__ = ["FIELD_LIMITS", "MAX_JSON_DEPTH", "JsonInt", "UtcTime", "json_problem", "size_problem"]
