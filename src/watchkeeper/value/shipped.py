"""The model versions Watchkeeper ships, as registry entries: the default detector (its version,
threshold and parameters), the RCA ranker (its scoring parameters and fitted calibration) and the
default correlation strategy (its parameters, versioned by their digest). ``serve`` registers them at
start-up when they are not there yet, so decisions and drift checks can name them without anyone
registering them by hand (docs/value.md).

Their evaluation scores, held out and in-sample, are not constants in the code: each comes from a
data file next to the model (``detect/likelihood-v3.scores.json``, ``rca/scores.json``,
``correlate/scores.json``) holding the figures with the command that produced them and the commit
it ran on. A file whose model version is not the shipped one (the calibration was refitted, the
default correlation changed) gives no scores: the figures belong to the version they measured.

To ship another model version, append its builder to :data:`SHIPPED` (a function returning its
:class:`ModelVersion`), as the log template miner is.

>>> [m.kind.value for m in shipped_models()]
['detector', 'rca', 'correlation', 'template_miner']
>>> from watchkeeper.detect.default import DEFAULT
>>> shipped_models()[0].params["threshold"] == DEFAULT.threshold
True
>>> shipped_models()[0].scores.held_out["nab_pooled"] > 0
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields, is_dataclass
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from watchkeeper.correlate.pipeline_config import PipelineConfig
from watchkeeper.correlate.window import CORRELATOR_VERSION
from watchkeeper.value.drift import ModelKind, ModelVersion, Scores

HERE = Path(__file__).resolve().parent.parent
DETECTOR_SCORES = HERE / "detect" / "likelihood-v3.scores.json"
RCA_SCORES = HERE / "rca" / "scores.json"
CORRELATION_SCORES = HERE / "correlate" / "scores.json"
MINER_SCORES = HERE / "logs" / "miner.scores.json"

#: the registry name of the correlation configuration a user gets with no configuration file
DEFAULT_CORRELATION = "default"
#: the registry name of a correlation configuration from a file (``correlation_config``)
CONFIGURED_CORRELATION = "configured"


def scores_file(path: Path, key: str, version: str) -> tuple[Scores, dict[str, Any]]:
    """The scores a data file holds for ``key`` at ``version`` and where they came from (command,
    commit, file); no scores when the file measured another version (or is missing)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return Scores(), {}
    if doc.get("model") != key or doc.get("version") != version:
        return Scores(), {"scores_file": path.name, "scores_for": f"{doc.get('model')} {doc.get('version')}"}
    scores = Scores(held_out=doc.get("held_out", {}), in_sample=doc.get("in_sample", {}))
    provenance = {k: doc[k] for k in ("command", "commit", "measured", "figure", "note") if k in doc}
    return scores, {"scores_file": path.name, **provenance}


def _detector() -> ModelVersion:
    from watchkeeper.detect.default import DEFAULT, make  # imported when a model is registered (numpy)

    built = make("default").params()
    key = f"{ModelKind.DETECTOR.value}:{DEFAULT.name}"
    scores, provenance = scores_file(DETECTOR_SCORES, key, DEFAULT.version)
    params = {**built, "threshold": DEFAULT.threshold, "max_skip": DEFAULT.max_skip, "detector": "default"}
    return ModelVersion(kind=ModelKind.DETECTOR, name=DEFAULT.name, version=DEFAULT.version,
                        params={**params, "evaluation": provenance} if provenance else params, scores=scores)


def rca_version() -> str:
    """Named as causes name their model (``rca.MODEL``); its version changes with the fitted
    calibration (``eval rca --calibrate``), which changes what a confidence means."""
    from watchkeeper import rca  # imported when a model is registered, not by every service
    from watchkeeper.rca.calibration import CALIBRATION

    return f"{rca.MODEL}+cal.{digest(dict(CALIBRATION))}"


def _rca() -> ModelVersion:
    from watchkeeper import rca
    from watchkeeper.rca.calibration import CALIBRATION
    from watchkeeper.rca.scoring import Params

    version = rca_version()
    scores, provenance = scores_file(RCA_SCORES, f"{ModelKind.RCA.value}:{rca.MODEL}", version)
    params: dict[str, Any] = {"scoring": asdict(Params()), "calibration": dict(CALIBRATION)}
    return ModelVersion(kind=ModelKind.RCA, name=rca.MODEL, version=version,
                        params={**params, "evaluation": provenance} if provenance else params, scores=scores)


def digest(value: Any) -> str:
    """The first 10 hex digits of the SHA-256 of ``value`` as canonical JSON.

    >>> digest({"b": 1, "a": 2}) == digest({"a": 2, "b": 1})
    True
    """
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:10]


def describe(value: Any) -> Any:
    """A JSON-able description of a correlation configuration's parts: dataclasses by their fields,
    strategies by their type and public attributes (caches, named with ``_``, are left out),
    durations in seconds, sets sorted.

    >>> describe(timedelta(minutes=5)), describe({"b": {"y", "x"}})
    (300.0, {'b': ['x', 'y']})
    """
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): describe(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, set | frozenset):
        return sorted((describe(v) for v in value), key=str)
    if isinstance(value, list | tuple):
        return [describe(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: describe(getattr(value, f.name)) for f in fields(value)}
    attrs = getattr(value, "__dict__", None)
    if attrs is None:
        return repr(value)
    public = {k: v for k, v in attrs.items() if not k.startswith("_")}
    return {"type": getattr(value, "name", type(value).__name__), **describe(public)}


def correlation_params(config: PipelineConfig) -> dict[str, Any]:
    """The parameters of a correlation configuration (what its version digests). Take it right after
    loading: strategies learn (a topology from alert labels) while they run."""
    described = describe(config)
    assert isinstance(described, dict)
    return {"correlator": CORRELATOR_VERSION, **described}


def correlation_identity(config: PipelineConfig) -> tuple[str, str]:
    """(registry name, version) of a correlation configuration: the shipped default is
    ``correlation:default``, any other ``correlation:configured``; the version is ``cfg.`` and the
    digest of its parameters.

    >>> correlation_identity(PipelineConfig())[0]
    'default'
    """
    version = f"cfg.{digest(correlation_params(config))}"
    default = version == f"cfg.{digest(correlation_params(PipelineConfig()))}"
    return (DEFAULT_CORRELATION if default else CONFIGURED_CORRELATION), version


def correlation_model(config: PipelineConfig) -> ModelVersion:
    """A correlation configuration as a registry entry (scores only for the shipped default)."""
    name, version = correlation_identity(config)
    params = correlation_params(config)
    scores, provenance = (scores_file(CORRELATION_SCORES, f"{ModelKind.CORRELATION.value}:{name}", version)
                          if name == DEFAULT_CORRELATION else (Scores(), {}))
    return ModelVersion(kind=ModelKind.CORRELATION, name=name, version=version,
                        params={**params, "evaluation": provenance} if provenance else params, scores=scores)


def _correlation() -> ModelVersion:
    return correlation_model(PipelineConfig())


def _miner() -> ModelVersion:
    """The log template miner with its default configuration (what ``serve``'s log inputs run)."""
    from watchkeeper.logs.miner import MINER_NAME, MINER_VERSION, MinerConfig

    scores, provenance = scores_file(MINER_SCORES, f"{ModelKind.TEMPLATE_MINER.value}:{MINER_NAME}", MINER_VERSION)
    params: dict[str, Any] = {"config": MinerConfig().model_dump(mode="json")}
    return ModelVersion(kind=ModelKind.TEMPLATE_MINER, name=MINER_NAME, version=MINER_VERSION,
                        params={**params, "evaluation": provenance} if provenance else params, scores=scores)


#: The builders of the shipped model versions, in a fixed order. Append here to ship another one.
SHIPPED: list[Callable[[], ModelVersion]] = [_detector, _rca, _correlation, _miner]


def shipped_models() -> list[ModelVersion]:
    """The shipped model versions, in a fixed order."""
    return [build() for build in SHIPPED]
