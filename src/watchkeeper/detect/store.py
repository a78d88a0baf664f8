"""Detector state that survives a restart: one JSON file per series, never a pickle.

Detector classes are looked up in the explicit :data:`DETECTORS` registry (no lookup by string
in globals). Writes are atomic: a temporary file is written, flushed, and renamed over the old.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from watchkeeper.detect.base import Estimator, State
from watchkeeper.detect.changepoint import Cusum
from watchkeeper.detect.context import ContextNovelty, LikelihoodContext
from watchkeeper.detect.likelihood import AnomalyLikelihood
from watchkeeper.detect.multivariate import MaxZ
from watchkeeper.detect.robust import RobustSeasonal
from watchkeeper.detect.spatial import RangeLikelihood

#: Every built-in detector, by the ``kind`` its state carries.
DETECTORS: Mapping[str, type[Estimator]] = {
    cls.__name__: cls for cls in (
        AnomalyLikelihood, RangeLikelihood, RobustSeasonal, Cusum, MaxZ, ContextNovelty, LikelihoodContext,
    )
}


def restore(state: State) -> Estimator:
    """Rebuild any registered detector from its :meth:`~Estimator.to_state` output.

    >>> det = Cusum(warmup=5)
    >>> restore(json.loads(json.dumps(det.to_state())))
    Cusum(warmup=5, drift=1.0, threshold=10.0)
    """
    kind = state.get("kind")
    cls = DETECTORS.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown detector kind {kind!r}; known: {', '.join(sorted(DETECTORS))}")
    return cls.from_state(state)


class FileStore:
    """Detector state per series key in a directory of JSON files.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as root:
    ...     store = FileStore(Path(root))
    ...     store.save('api_latency{host="a"}', RobustSeasonal(window=8))
    ...     store.load('api_latency{host="a"}').params()["window"], store.load("other"), list(store.keys())
    (8, None, ['api_latency{host="a"}'])
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"

    def save(self, key: str, detector: Estimator) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"key": key, "detector": detector.to_state()}, allow_nan=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, key: str) -> Estimator | None:
        path = self.path(key)
        if not path.exists():
            return None
        body: dict[str, Any] = json.loads(path.read_text())
        if body.get("key") != key:
            raise ValueError(f"{path} holds the state of {body.get('key')!r}, not {key!r}")
        return restore(body["detector"])

    def keys(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("*.json")):
            yield str(json.loads(path.read_text())["key"])
