"""An action run as the worker sees it: its status, its parameters and the lease that makes it
one server's to run.

A lease is the pair (owner, deadline). A worker claims a queued action by writing both in the same
atomic update that marks it running; its heartbeat moves the deadline forward while the runbook
runs. Only a lease whose deadline has passed may be taken over by another server.

>>> from datetime import UTC, datetime, timedelta
>>> t = datetime(2026, 12, 3, tzinfo=UTC)
>>> lease = Lease("wk-a", t + timedelta(seconds=60))
>>> lease.expired(t), lease.expired(t + timedelta(seconds=60))
(False, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class ActionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    INTERRUPTED = "interrupted"  # its server stopped mid-run and its lease expired: never re-run

    @property
    def active(self) -> bool:
        return self in (ActionStatus.QUEUED, ActionStatus.RUNNING)


class Trigger(StrEnum):
    AUTO = "auto"
    APPROVED = "approved"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class Lease:
    owner: str
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


@dataclass(frozen=True, slots=True)
class ActionRun:
    id: int
    incident_id: int
    runbook_id: str
    service: str
    trigger: Trigger
    actor: str
    status: ActionStatus
    params: Mapping[str, Any] = field(default_factory=dict)
    decision_id: int | None = None
    approval_id: int | None = None
    lease: Lease | None = None

    @property
    def subject(self) -> str:
        return f"incident:{self.incident_id}"
