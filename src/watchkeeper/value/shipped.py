"""The model versions Watchkeeper ships, as registry entries: the default detector (its version,
threshold and parameters) and the RCA ranker (its scoring parameters and fitted calibration).
``serve`` registers them at start-up when they are not there yet, so decisions and drift checks
can name them without anyone registering them by hand (docs/value.md).

Held-out scores: the detector's are figures of ``watchkeeper eval detect`` recorded in
docs/detect.md, not constants in the code, so none are registered here (a person registers a
version with scores by ``watchkeeper models register FILE``). Nothing here is measured.

>>> [(m.kind.value, m.name) for m in shipped_models()]
[('detector', 'likelihood'), ('rca', 'baro-v1')]
>>> shipped_models()[0].params["threshold"] == DEFAULT.threshold
True
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from watchkeeper import rca
from watchkeeper.detect.default import DEFAULT, make
from watchkeeper.rca.calibration import CALIBRATION
from watchkeeper.rca.scoring import Params
from watchkeeper.value.drift import ModelKind, ModelVersion


def _detector() -> ModelVersion:
    built = make("default").params()
    return ModelVersion(kind=ModelKind.DETECTOR, name=DEFAULT.name, version=DEFAULT.version,
                        params={**built, "threshold": DEFAULT.threshold, "max_skip": DEFAULT.max_skip,
                                "detector": "default"})


def _rca() -> ModelVersion:
    """Named as causes name their model (``rca.MODEL``, what a decision's ``model_versions`` looks
    up); its version changes with the fitted calibration (``eval rca --calibrate``), which changes
    what a confidence means."""
    calibration = dict(CALIBRATION)
    digest = hashlib.sha256(json.dumps(calibration, sort_keys=True).encode()).hexdigest()[:10]
    return ModelVersion(kind=ModelKind.RCA, name=rca.MODEL, version=f"{rca.MODEL}+cal.{digest}",
                        params={"scoring": asdict(Params()), "calibration": calibration})


def shipped_models() -> list[ModelVersion]:
    """The shipped model versions, in a fixed order."""
    return [_detector(), _rca()]
