"""The demo's side of the loop: it injects faults into the lab and watches what ``watchkeeper
serve`` does with each one — through the server's API alone. It detects, ranks and decides nothing
itself: the server's watches and the lab's Prometheus alerts detect, the server ranks causes on the
topology of its configuration, and its governance runs (or asks approval for) the lab's runbooks.

:class:`Api` is the few API calls the demo makes; :class:`Observer` turns what the API shows into one
:class:`Outcome` per fault and stands in for the human approver when asked to.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

#: One fault of every kind the lab knows, on a service where it makes sense, in demo order.
DEFAULT_FAULTS: tuple[tuple[str, str], ...] = (
    ("crash", "checkout"),
    ("error_burst", "catalog"),
    ("hang", "payment"),
    ("bad_deploy", "checkout"),
    ("memory_leak", "store"),
    ("disk_fill", "payment"),
    ("cpu_hog", "catalog"),
    ("dependency_outage", "catalog"),
)
APPROVER = "demo-approver"


@dataclass(slots=True)
class Outcome:
    """What happened to one injected fault (times in seconds after the injection)."""

    fault: str
    target: str
    injected_at: float
    detected: bool = False
    detected_after_s: float | None = None
    incident: int | None = None
    top_cause: str | None = None
    confidence: float | None = None
    cause_correct: bool = False
    action: str | None = None
    mode: str | None = None
    resolved: bool = False
    mttr_s: float | None = None
    ended_by: str | None = None  # the lab's ground truth: which remediation really ended the fault
    ended_after_s: float | None = None
    timed_out: bool = False  # nothing ended it in time: the demo repaired it and stopped measuring
    approvals: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The fields ``demo --headless`` prints per fault."""
        keep = ("fault", "target", "detected", "detected_after_s", "top_cause", "cause_correct", "action",
                "resolved", "mttr_s")
        d = asdict(self)
        return {k: d[k] for k in keep} | {"confidence": self.confidence, "mode": self.mode,
                                          "incident": self.incident, "ended_by": self.ended_by,
                                          "timed_out": self.timed_out}


def parse_faults(spec: str, services: Sequence[str], kinds: Sequence[str]) -> list[tuple[str, str]]:
    """``"crash:checkout,hang"`` → ``[("crash", "checkout"), ("hang", <its default target>)]``.

    >>> parse_faults("crash:checkout, hang", ["checkout", "payment"], ["crash", "hang"])
    [('crash', 'checkout'), ('hang', 'payment')]
    """
    defaults = dict(DEFAULT_FAULTS)
    out: list[tuple[str, str]] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        kind, _, target = item.partition(":")
        if kind not in kinds:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(kinds)}")
        target = target or defaults.get(kind, services[0])
        if target not in services:
            raise ValueError(f"unknown service {target!r} in {item!r}; lab services: {', '.join(services)}")
        out.append((kind, target))
    if not out:
        raise ValueError("no faults given")
    return out


class Api:
    """The server's API as the demo uses it (a bearer token of role approver, or admin)."""

    def __init__(self, url: str, token: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, timeout=timeout, trust_env=False,
                                    headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self._client.close()

    def _get(self, path: str, **params: Any) -> Any:
        response = self._client.get(path, params={k: v for k, v in params.items() if v is not None})
        response.raise_for_status()
        return response.json()

    def incidents(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/incidents", limit=limit))

    def incident(self, incident_id: int) -> dict[str, Any]:
        return dict(self._get(f"/api/v1/incidents/{incident_id}"))

    def approvals(self, status: str = "pending") -> list[dict[str, Any]]:
        return list(self._get("/api/v1/approvals", status=status))

    def approve(self, approval_id: int, comment: str) -> bool:
        """False when the request is no longer pending (a human or expiry was faster)."""
        response = self._client.post(f"/api/v1/approvals/{approval_id}/approve", json={"comment": comment})
        if response.status_code == 409:
            return False
        response.raise_for_status()
        return True

    def kpis(self) -> dict[str, Any]:
        return dict(self._get("/api/v1/kpis"))

    def audit_verify(self) -> dict[str, Any]:
        return dict(self._get("/api/v1/audit/verify"))

    def health(self) -> dict[str, Any]:
        return dict(self._client.get("/healthz").json())


def _ts(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value)).timestamp()


class Observer:
    """What the server did with each fault, read from its API; optionally approves for a human."""

    def __init__(self, api: Api, *, approve_after: float | None = None) -> None:
        self.api = api
        #: Approve a pending action nobody has answered after this many seconds (None: never).
        self.approve_after = approve_after
        self._pending_since: dict[int, float] = {}

    def open_incidents(self) -> list[dict[str, Any]]:
        return [i for i in self.api.incidents(limit=100) if i["status"] != "resolved"]

    def approve_pending(self, now: float) -> list[int]:
        """Stand in for the human approver on requests left unanswered for ``approve_after`` s."""
        approved: list[int] = []
        if self.approve_after is None:
            return approved
        for row in self.api.approvals("pending"):
            first = self._pending_since.setdefault(int(row["id"]), now)
            if now - first < self.approve_after:
                continue
            if self.api.approve(int(row["id"]), f"demo approver: nobody answered in {self.approve_after:g} s"):
                approved.append(int(row["id"]))
        return approved

    def observe(self, outcome: Outcome, fault: Mapping[str, Any] | None = None) -> Outcome:
        """Fill ``outcome`` from the incidents opened since the injection (the first one gives the
        detection, cause and action) and from the lab's ground truth ``fault`` record: the fault
        counts as resolved only once it has really ended (``ended_at``) *and* every incident opened
        since the injection has resolved — an incident that closes while the fault goes on (its
        signals dipped) does not count. MTTR is the later of the two."""
        if fault is not None and fault.get("ended_at"):
            outcome.ended_by = str(fault.get("ended_by") or "?")
            outcome.ended_after_s = round(_ts(fault["ended_at"]) - outcome.injected_at, 1)
        since = outcome.injected_at - 1
        # an incident opened since the injection, or one reopened since (the server folds a returning
        # alert into its recent incident: a second fault on the same service within the window)
        mine: list[dict[str, Any]] = []
        began: dict[int, float] = {}
        for i in self.api.incidents(limit=100):
            if not i.get("alert_count"):
                continue  # emptied by a split: its alerts live on in another incident
            if _ts(i["opened_at"]) >= since:
                mine.append(i)
                began[i["id"]] = _ts(i["opened_at"])
            elif i.get("last_activity_at") and _ts(i["last_activity_at"]) >= since:
                reopened = [_ts(t["at"]) for t in self.api.incident(i["id"]).get("timeline", [])
                            if t.get("kind") == "incident.reopened" and _ts(t["at"]) >= since]
                if reopened:
                    mine.append(i)
                    began[i["id"]] = min(reopened)
        if not mine:
            return outcome
        # the fault's incident: the first one that holds the faulty service's alerts (else the first)
        incident = min(mine, key=lambda i: (outcome.target not in i.get("services", []), began[i["id"]]))
        detail = self.api.incident(incident["id"])
        outcome.detected, outcome.incident = True, incident["id"]
        outcome.detected_after_s = round(max(0.0, began[incident["id"]] - outcome.injected_at), 1)
        if detail.get("causes"):
            top = detail["causes"][0]
            outcome.top_cause, outcome.confidence = top["component"], round(float(top["confidence"]), 3)
            outcome.cause_correct = top["component"] == outcome.target
        for action in detail.get("actions", []):
            if _since(action, since):
                outcome.action = f"{action['runbook_id']}: {action['status']}"
        for decision in detail.get("decisions", []):
            if _since(decision, since):
                outcome.mode = str(decision["verdict"])
        closed = [i for i in mine if i["status"] == "resolved" and i.get("resolved_at") is not None]
        ended = fault is None or outcome.ended_after_s is not None
        outcome.resolved = ended and len(closed) == len(mine)
        outcome.mttr_s = None
        if outcome.resolved:
            last = max(_ts(i["resolved_at"]) for i in closed) - outcome.injected_at
            outcome.mttr_s = round(max(last, outcome.ended_after_s or 0.0), 1)
        return outcome


def _since(row: Mapping[str, Any], since: float) -> bool:
    """Whether a decision or action row belongs after ``since`` (by its first time field)."""
    for key in ("at", "decided_at", "created_at", "queued_at", "started_at", "finished_at"):
        if row.get(key):
            return _ts(row[key]) >= since
    return True


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, default=str) + "\n")
