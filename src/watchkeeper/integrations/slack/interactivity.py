"""Slack interactivity: verify a click, read it, decide what it may do. No HTTP server, no
database here: ``integrations/runtime.py`` acts on the :class:`Click` and audits it.

Verification follows Slack's "Verifying requests from Slack": the ``X-Slack-Signature`` header is
``v0=`` + hex HMAC-SHA256 keyed with the app's signing secret over ``v0:{X-Slack-Request-Timestamp}:
{raw body}``, compared in constant time; a timestamp more than five minutes from our clock is
refused (a replayed click). The body is form-encoded with one field, ``payload``, a JSON
``block_actions`` document.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs

import orjson

from watchkeeper.errors import AuthError, InputError
from watchkeeper.integrations.slack.blocks import ACKNOWLEDGE, APPROVE, REJECT

MAX_AGE = 300.0


class Refusal(StrEnum):
    """Why a request was refused before anything was read from it."""

    MISSING = "missing_signature"
    MALFORMED = "malformed_timestamp"
    STALE = "stale_timestamp"
    BAD_SIGNATURE = "bad_signature"


def signature(secret: str, timestamp: str, raw: bytes) -> str:
    """Slack's ``v0`` signature of a request.

    >>> signature("8f742231b10e8888abcd99yyyzzz85a5", "1531420618",
    ...           b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J")[:12]
    'v0=bca5eef5d'
    """
    base = b"v0:" + timestamp.encode() + b":" + raw
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(secrets: list[str], headers: Mapping[str, str], raw: bytes, now: float, max_age: float = MAX_AGE
           ) -> int:
    """The index of the secret that signed this request, or an AuthError (401) whose ``code``
    is the :class:`Refusal`. The age is checked before the signature (cheap) and the signature
    over the raw bytes, never a re-encoded form."""
    lower = {k.lower(): v for k, v in headers.items()}
    stamp, sig = lower.get("x-slack-request-timestamp"), lower.get("x-slack-signature")
    if not stamp or not sig:
        raise AuthError("missing X-Slack-Signature or X-Slack-Request-Timestamp", code=Refusal.MISSING.value)
    if not stamp.isdigit() or len(stamp) > 12:
        raise AuthError("X-Slack-Request-Timestamp is not Unix seconds", code=Refusal.MALFORMED.value)
    age = now - int(stamp)
    if abs(age) > max_age:
        raise AuthError(f"request signed {age:.0f} s ago; more than {max_age:.0f} s apart is refused (replay)",
                        code=Refusal.STALE.value)
    for index, secret in enumerate(secrets):
        if hmac.compare_digest(signature(secret, stamp, raw).encode(), sig.encode()):
            return index
    raise AuthError("X-Slack-Signature does not match the body", code=Refusal.BAD_SIGNATURE.value)


class Verb(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    ACKNOWLEDGE = "acknowledge"


VERBS = {APPROVE: Verb.APPROVE, REJECT: Verb.REJECT, ACKNOWLEDGE: Verb.ACKNOWLEDGE}
#: the Watchkeeper roles that may do each
ROLES = {Verb.APPROVE: {"approver", "admin"}, Verb.REJECT: {"approver", "admin"},
         Verb.ACKNOWLEDGE: {"operator", "approver", "admin"}}


@dataclass(frozen=True, slots=True)
class Click:
    """One button click of a ``block_actions`` payload."""

    user_id: str
    team_id: str
    verb: Verb | None  # None: not one of our buttons
    value: str
    action_ts: str
    channel: str
    message_ts: str
    response_url: str

    @property
    def key(self) -> str:
        """Identifies the click across Slack's retries of the same request."""
        return f"{self.team_id}:{self.user_id}:{self.action_ts}:{self.value}"

    def target_id(self) -> int:
        """The approval or incident id the button names."""
        if not self.value.isdigit() or not 0 < int(self.value) < 2**31:
            raise InputError(f"button value {self.value[:40]!r} is not an id", status=400)
        return int(self.value)


def parse(raw: bytes) -> Click | None:
    """The click in a verified request body; None for payload types we do not act on."""
    try:
        form = parse_qs(raw.decode("utf-8"), strict_parsing=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"the body is not a form: {exc}", status=400) from None
    texts = form.get("payload")
    if not texts:
        raise InputError("the form has no 'payload' field", status=400)
    try:
        doc = orjson.loads(texts[0])
    except orjson.JSONDecodeError as exc:
        raise InputError(f"'payload' is not JSON: {exc}", status=400) from None
    if not isinstance(doc, dict):
        raise InputError("'payload' is not a JSON object", status=400)
    if doc.get("type") != "block_actions":
        return None
    actions = doc.get("actions")
    user, team = _obj(doc, "user"), _obj(doc, "team")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise InputError("block_actions without actions", status=400)
    action: dict[str, Any] = actions[0]
    container, channel = _obj(doc, "container"), _obj(doc, "channel")
    user_id = str(user.get("id", ""))
    if not user_id:
        raise InputError("block_actions without user.id", status=400)
    return Click(user_id=user_id, team_id=str(team.get("id", user.get("team_id", ""))),
                 verb=VERBS.get(str(action.get("action_id", ""))), value=str(action.get("value", ""))[:64],
                 action_ts=str(action.get("action_ts", ""))[:32],
                 channel=str(channel.get("id", container.get("channel_id", "")))[:64],
                 message_ts=str(container.get("message_ts", ""))[:32],
                 response_url=str(doc.get("response_url", ""))[:2048])


def _obj(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def ephemeral(text: str) -> dict[str, Any]:
    """A reply only the clicking user sees, leaving the message as it is."""
    return {"response_type": "ephemeral", "replace_original": False, "text": text}
