"""Captured sample payloads, one per vendor (``samples/``): what each integration sends for the
conformance suite's sample incident. A change to a wire format shows up here as a diff to review
against the vendor's documentation; regenerate with ``WK_CAPTURE=1``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from integrations.conftest import targets
from integrations.standins import StandIn
from integrations.test_conformance import KINDS, sample_message
from watchkeeper.integrations import registry
from watchkeeper.integrations.base import EventKind
from watchkeeper.integrations.config import IntegrationsConfig

SAMPLES = Path(__file__).parent / "samples"
#: values that differ per run (ports, secrets are fixed), replaced before comparing
VOLATILE = {"ts"}


def _stable(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: ("…" if k in VOLATILE else _stable(v)) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_stable(v) for v in doc]
    return doc


@pytest.mark.parametrize("name", sorted(KINDS))
@pytest.mark.parametrize("event", [EventKind.OPENED, EventKind.RESOLVED])
def test_payloads_match_the_captured_samples(standins: dict[str, StandIn], name: str, event: EventKind) -> None:
    config = IntegrationsConfig.model_validate({"targets": targets(standins)})
    notifier = registry.build(name, config.targets[name])
    try:
        made = notifier.deliver(sample_message(name)).ref  # ITSM: the ticket's id, handed back next time
        opened = len(standins[KINDS[name]].accepted)  # what opening sent (ITSM: a look-up, then the create)
        if event is EventKind.RESOLVED:
            first = standins[KINDS[name]].accepted[0].json()
            ref = {"channel": first.get("channel"), "ts": "1700000000.000100"} if name == "chat" else made
            message = sample_message(name, event)
            message = type(message)(message.id, message.incident_id, message.target, event,
                                    {**message.payload, "incident": {**message.incident, "status": "resolved"},
                                     "change": {**message.change, "kind": "incident.resolved"}}, 0, None, ref)
            notifier.deliver(message)
    finally:
        notifier.close()
    stand = standins[KINDS[name]]
    sent = stand.accepted[:opened] if event is EventKind.OPENED else stand.accepted[opened:]
    seen = [{"path": s.path, "body": _stable(s.json())} for s in sent]
    path = SAMPLES / f"{KINDS[name]}_{event.value}.json"
    if os.environ.get("WK_CAPTURE"):
        path.write_bytes(orjson.dumps(seen, option=orjson.OPT_INDENT_2) + b"\n")
    assert seen == orjson.loads(path.read_bytes())
