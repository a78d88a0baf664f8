"""The model registry as the API and the CLI use it: model versions with their parameters,
training window and scores, and drift checks that record a drift event (audited) which the stage
gates of the use cases naming the model count."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import IntegrityError

from watchkeeper.errors import Conflict, InputError, NotFound, WatchkeeperError
from watchkeeper.model import Change
from watchkeeper.storage import Database, audit
from watchkeeper.storage import value as store
from watchkeeper.value.drift import ModelKind, ModelVersion, check, hourly_counts
from watchkeeper.value.shipped import shipped_models


class Signal(StrEnum):
    SCORES = "scores"  # the model's output scores against its registered reference sample
    ALERT_RATE = "alert_rate"  # alerts per hour now against its training window
    ANOMALY_RATE = "anomaly_rate"  # anomaly events per hour now against its training window


class Registry:
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    def register(self, model: ModelVersion, actor: str) -> dict[str, Any]:
        now = self.clock()
        try:
            with self.db.write() as conn:
                if store.model_row(conn, model.kind.value, model.name, model.version) is not None:
                    raise Conflict(f"model {model.key} version {model.version} is already registered: a new "
                                   "version needs a new version string")
                store.add_model(conn, kind=model.kind.value, name=model.name, version=model.version,
                                params=model.params, train_start=model.train_start, train_end=model.train_end,
                                scores=model.scores.model_dump(), baseline=model.baseline, registered_at=now,
                                registered_by=actor)
                audit.append(conn, actor, [Change("model.registered", f"model:{model.key}", now, {
                    "model": model.key, "version": model.version, "params": model.params,
                    "train_start": model.train_start, "train_end": model.train_end,
                    "scores": model.scores.model_dump(), "baseline_size": len(model.baseline)})])
        except IntegrityError:  # registered by someone else at the same moment
            raise Conflict(f"model {model.key} version {model.version} is already registered") from None
        return self.show(model.kind.value, model.name, model.version)

    def ensure(self, found: Sequence[ModelVersion], actor: str) -> list[str]:
        """Register each version that is not registered yet (``serve`` does this at start-up for
        the shipped models); idempotent, also against another process doing the same. Returns the
        ``kind:name version`` of those it registered."""
        added = []
        for model in found:
            with self.db.read() as conn:
                row = store.model_row(conn, model.kind.value, model.name, model.version)
            if row is not None:
                if self._scored(row, model, actor):
                    added.append(f"{model.key} {model.version} (scores)")
                continue
            try:
                self.register(model, actor)
            except Conflict:  # registered meanwhile
                continue
            added.append(f"{model.key} {model.version}")
        return added

    def _scored(self, row: dict[str, Any], model: ModelVersion, actor: str) -> bool:
        """A version ``actor`` registered itself without scores (``serve`` before its scores were
        shipped) gets the scores now, audited as ``model.scored``; a version registered by anyone
        else, or with scores already, is left as it is."""
        scores = model.scores.model_dump()

        def unscored(found: dict[str, Any] | None) -> bool:
            had = (found or {}).get("scores") or {}
            return (found is not None and found["registered_by"] == actor and not had.get("held_out")
                    and not had.get("in_sample") and bool(scores["held_out"] or scores["in_sample"]))

        if not unscored(row):
            return False
        now = self.clock()
        with self.db.write() as conn:  # again under the lock: another server may have done it meanwhile
            again = store.model_row(conn, model.kind.value, model.name, model.version)
            if again is None or not unscored(again):
                return False
            store.set_model_scores(conn, again["id"], scores, model.params)
            audit.append(conn, actor, [Change("model.scored", f"model:{model.key}", now, {
                "model": model.key, "version": model.version, "scores": scores,
                "evaluation": model.params.get("evaluation")})])
        return True

    def register_shipped(self, actor: str = "serve", in_use: Sequence[ModelVersion] = ()) -> list[str]:
        """Register the shipped model versions (:data:`watchkeeper.value.shipped.SHIPPED`, with their
        scores from the data files next to them) and the versions this server uses that are not
        shipped (``in_use``: a correlation configuration from a file), when not there yet."""
        return self.ensure([*shipped_models(), *in_use], actor)

    def check_scheduled(self, days: float, actor: str = "drift") -> list[dict[str, Any]]:
        """The scheduled drift check (``serve`` every ``drift_check_seconds``): the latest version of
        every registered model that has a training window, on its rate signal (anomaly events per hour
        for a detector, alerts per hour for the others) over the last ``days`` against that window. A
        drift is recorded and audited as on request. A model without a training window (the shipped
        ones: trained elsewhere) is compared with its first ``days`` in production here, from its
        registration on, once that reference lies wholly before the last ``days``."""
        with self.db.read() as conn:
            latest = store.latest_models(conn)
        found = []
        now = self.clock()
        for row in latest:
            window = None
            if row["train_start"] is None or row["train_end"] is None:
                start = row["registered_at"]
                window = (start, start + timedelta(days=days))
                if now - timedelta(days=days) < window[1]:
                    continue  # not yet: its first days here are the reference, and they are not over
            signal = Signal.ANOMALY_RATE if row["kind"] == ModelKind.DETECTOR.value else Signal.ALERT_RATE
            try:
                found.append(self.drift(row["kind"], row["name"], signal=signal, version=row["version"], days=days,
                                        actor=actor, window=window))
            except WatchkeeperError as exc:  # one model's problem does not stop the others' checks
                found.append({"model": f"{row['kind']}:{row['name']}", "version": row["version"],
                              "signal": signal.value, "drifted": False, "reason": "error", "error": str(exc)})
        return found

    def versions(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = store.model_rows(conn, kind)
        return [_view(r) for r in rows]

    def show(self, kind: str, name: str, version: str | None = None) -> dict[str, Any]:
        with self.db.read() as conn:
            version = version or store.latest_version(conn, kind, name)
            row = store.model_row(conn, kind, name, version) if version else None
        if row is None:
            raise NotFound(f"no model {kind}:{name}" + (f" version {version}" if version else "")
                           + "; see 'watchkeeper models list'")
        return _view(row)

    def drift(self, kind: str, name: str, *, signal: Signal, scores: Sequence[float] = (), version: str | None = None,
              days: float = 1.0, actor: str, window: tuple[datetime, datetime] | None = None) -> dict[str, Any]:
        """Check a model version for drift; a drift is recorded (and audited) as a drift event. Rates are
        compared with the training window, or with ``window`` when given (its first days here)."""
        now = self.clock()
        with self.db.write() as conn:
            version = version or store.latest_version(conn, kind, name)
            row = store.model_row(conn, kind, name, version) if version else None
            if row is None or version is None:
                raise NotFound(f"no model {kind}:{name}; see 'watchkeeper models list'")
            if signal is Signal.SCORES:
                if not scores:
                    raise InputError("a score drift check needs the recent scores")
                reference, current = list(row["baseline"]), list(scores)
                if not reference:
                    raise InputError(f"model {kind}:{name} {version} was registered without a reference sample "
                                     "(baseline): register a version with one")
            else:
                start, end = window or (row["train_start"], row["train_end"])
                if start is None or end is None:
                    raise InputError(f"model {kind}:{name} {version} has no training window to compare rates with")
                times = store.alert_times if signal is Signal.ALERT_RATE else store.anomaly_times
                since = now - timedelta(days=days)
                reference = hourly_counts(times(conn, start, end), start, end)
                current = hourly_counts(times(conn, since, now), since, now)
            found = check(reference, current)
            event_id = None
            if found.drifted:
                key = f"{kind}:{name}"
                details = {"signal": signal.value, **found.as_dict(), "days": days}
                event_id = store.add_drift(conn, model=key, version=version, signal=signal.value, psi=found.psi,
                                           ks=found.ks, at=now, details=details)
                audit.append(conn, actor, [Change("model.drift", f"model:{key}", now, {
                    "drift_id": event_id, "model": key, "version": version, **details})])
        return {"model": f"{kind}:{name}", "version": version, "signal": signal.value, **found.as_dict(),
                "drift_id": event_id}

    def drift_events(self, model: str | None = None) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return store.drift_rows(conn, model)


def _view(row: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in row.items() if k != "baseline"}, "baseline_size": len(row["baseline"] or [])}
