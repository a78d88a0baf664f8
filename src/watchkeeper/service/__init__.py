"""The application service: what the API and the CLI both call.

It wires the pure stages to storage, one module per concept, joined here in :class:`Watchkeeper`:

- :mod:`~watchkeeper.service.access`: roles, permissions, tokens, principals (authenticate);
- :mod:`~watchkeeper.service.ingest`: normalize → dedup → correlate → persist + audit, in one
  transaction shared by concurrent requests; dead letters; retention;
- :mod:`~watchkeeper.service.incidents`: incident views, lifecycle actions, grouping corrections,
  silences, KPIs, audit verification;
- :mod:`~watchkeeper.service.core`: what they share (settings, clock, database, correlation
  configuration, governance, change log).
"""

from __future__ import annotations

from watchkeeper.service.access import (
    GRANTS,
    LAST_USED_EVERY,
    TOKEN_CACHE_SECONDS,
    Access,
    IssuedToken,
    Permission,
    Principal,
    Role,
    hash_token,
)
from watchkeeper.service.core import Core
from watchkeeper.service.incidents import Incidents
from watchkeeper.service.ingest import JSON_TYPES, KEEP_ALERTS, Ingest, IngestResult, _Pending


class Watchkeeper(Access, Ingest, Incidents, Core):
    """The whole service: access control, ingest and incidents over one database."""


__all__ = [
    "GRANTS", "JSON_TYPES", "KEEP_ALERTS", "LAST_USED_EVERY", "TOKEN_CACHE_SECONDS", "IngestResult", "IssuedToken",
    "Permission", "Principal", "Role", "Watchkeeper", "_Pending", "hash_token",
]
