"""The value commands through a running server (``watchkeeper --url URL --token T usecases …``):
:class:`RemotePortfolio` and :class:`RemoteRegistry` answer the calls the ``usecases``, ``gates``
and ``models`` commands make on :class:`~watchkeeper.portfolio.Portfolio` and
:class:`~watchkeeper.model_registry.Registry`, with the same shapes, over the API. The server checks
the token's role (viewer reads, operator applies and proposes, approver votes) and records the
token's name as the actor, so the ``actor`` arguments here are not sent.

>>> RemotePortfolio(ValueApi("http://127.0.0.1:9", "t")).api.url
'http://127.0.0.1:9'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from watchkeeper.client import Remote
from watchkeeper.value.drift import ModelVersion
from watchkeeper.value.usecase import UseCase


class ValueApi(Remote):
    """The server's API for the value routes (the HTTP and error handling of :class:`Remote`)."""

    def call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None) -> Any:
        return self._call(method, path, params=params, body=body)


def _id(value: str) -> str:
    """A path segment as the routes take it (their patterns refuse anything else with a 422)."""
    from urllib.parse import quote

    return quote(value, safe="")


class RemotePortfolio:
    def __init__(self, api: ValueApi) -> None:
        self.api = api

    def cases(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.api.call("GET", "/api/v1/usecases")
        return found

    def show(self, case_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.api.call("GET", f"/api/v1/usecases/{_id(case_id)}")
        return found

    def apply(self, case: UseCase, _actor: str, *, new_version: bool = False, reason: str = "") -> dict[str, Any]:
        found: dict[str, Any] = self.api.call("POST", "/api/v1/usecases", body={
            "use_case": case.model_dump(mode="json"), "new_version": new_version, "reason": reason})
        return found

    def propose(self, case_id: str, _actor: str) -> dict[str, Any]:
        found: dict[str, Any] = self.api.call("POST", f"/api/v1/usecases/{_id(case_id)}/propose")
        return found

    def priorities(self, _weights: Any = None) -> dict[str, Any]:
        """The server's ranking, with the server's ``value_weights``."""
        found: dict[str, Any] = self.api.call("GET", "/api/v1/portfolio/priorities")
        return found

    def evaluate_docs(self, case_id: str | None, *, apply: bool) -> list[dict[str, Any]]:
        if apply:
            found: list[dict[str, Any]] = self.api.call("POST", "/api/v1/gates/evaluate", body={"use_case": case_id})
        else:
            found = self.api.call("GET", "/api/v1/gates/evaluation", params={"use_case": case_id})
        return found

    def proposals(self, status: str | None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.api.call("GET", "/api/v1/gates", params={"status": status or "all"})
        return found

    def vote(self, proposal_id: int, _actor: str, approve: bool, comment: str = "") -> dict[str, Any]:
        verb = "approve" if approve else "reject"
        found: dict[str, Any] = self.api.call("POST", f"/api/v1/gates/{proposal_id}/{verb}", body={"comment": comment})
        return found


def _windows(row: dict[str, Any]) -> dict[str, Any]:
    """A model row with its training window as ``datetime`` (what the local registry gives)."""
    for key in ("train_start", "train_end"):
        if isinstance(row.get(key), str):
            row[key] = datetime.fromisoformat(row[key].replace("Z", "+00:00"))
    return row


class RemoteRegistry:
    def __init__(self, api: ValueApi) -> None:
        self.api = api

    def versions(self, kind: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.api.call("GET", "/api/v1/models", params={"kind": kind})
        return [_windows(r) for r in found]

    def register(self, model: ModelVersion, _actor: str) -> dict[str, Any]:
        return _windows(self.api.call("POST", "/api/v1/models", body=model.model_dump(mode="json")))

    def drift(self, kind: str, name: str, *, signal: Any, scores: Sequence[float] = (), version: str | None = None,
              days: float = 1.0, actor: str = "") -> dict[str, Any]:
        body = {"signal": str(signal), "scores": list(scores), "version": version, "days": float(days)}
        found: dict[str, Any] = self.api.call("POST", f"/api/v1/models/{_id(kind)}/{_id(name)}/drift", body=body)
        return found

    def drift_events(self, model: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.api.call("GET", "/api/v1/drift", params={"model": model})
        return found
