"""The vendors' rules, as their public documentation states them, for the stand-ins to enforce.

- PagerDuty Events API v2: ``POST /v2/enqueue``, JSON; ``routing_key`` (the integration key),
  ``event_action`` trigger | acknowledge | resolve, ``dedup_key`` (at most 255 characters);
  a trigger needs ``payload.summary`` (at most 1024), ``payload.source`` and ``payload.severity``
  (critical | error | warning | info). Accepted: ``202 {"status": "success", "message": "Event
  processed", "dedup_key": …}``; invalid: ``400 {"status": "invalid event", …}``.
- Slack Web API: ``POST /api/chat.postMessage`` and ``/api/chat.update`` with
  ``Authorization: Bearer xoxb-…`` and a JSON body; Slack answers HTTP 200 with ``ok: false`` and
  an ``error`` code (``invalid_auth``, ``channel_not_found``, ``invalid_blocks``) when it refuses.
  Block Kit limits checked: at most 50 blocks, header text ≤ 150, a section's text ≤ 3000 and
  ≤ 10 fields, ≤ 25 elements per actions block, button text ≤ 75, ``value`` ≤ 2000,
  ``action_id`` ≤ 255 and unique in the message.
- Generic webhook (ours): ``X-Watchkeeper-Signature`` = ``v1=`` HMAC-SHA256 over
  ``{X-Watchkeeper-Timestamp}.{raw body}``.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import orjson

from integrations.standins import Answer, Check, Seen
from watchkeeper.integrations.webhook.notifier import verify

PD_SEVERITIES = {"critical", "error", "warning", "info"}


def json_body(seen: Seen) -> Any:
    try:
        return orjson.loads(seen.body)
    except orjson.JSONDecodeError:
        return None


def _bad(status: int, doc: dict[str, Any]) -> tuple[int, bytes]:
    return status, orjson.dumps(doc)


def pagerduty(routing_key: str) -> tuple[Check, Answer]:
    def check(seen: Seen) -> tuple[int, bytes] | None:
        if seen.path != "/v2/enqueue":
            return _bad(404, {"status": "not found"})
        if not seen.headers.get("content-type", "").startswith("application/json"):
            return _bad(400, {"status": "invalid event", "message": "Event object is invalid",
                              "errors": ["content type must be application/json"]})
        doc = json_body(seen)
        if not isinstance(doc, dict):
            return _bad(400, {"status": "invalid event", "message": "Event object is invalid", "errors": ["not JSON"]})
        errors = []
        if doc.get("routing_key") != routing_key:
            errors.append("'routing_key' invalid")
        action = doc.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is invalid")
        key = doc.get("dedup_key")
        if not isinstance(key, str) or not 0 < len(key) <= 255:
            errors.append("'dedup_key' must be 1-255 characters")
        if action == "trigger":
            payload = doc.get("payload")
            if not isinstance(payload, dict):
                errors.append("'payload' is missing")
            else:
                if not isinstance(payload.get("summary"), str) or not 0 < len(payload["summary"]) <= 1024:
                    errors.append("'payload.summary' must be 1-1024 characters")
                if not payload.get("source"):
                    errors.append("'payload.source' is missing")
                if payload.get("severity") not in PD_SEVERITIES:
                    errors.append("'payload.severity' is invalid")
        if errors:
            return _bad(400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors})
        return None

    def answer(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        doc = json_body(seen)
        return 202, {"Content-Type": "application/json"}, orjson.dumps(
            {"status": "success", "message": "Event processed", "dedup_key": doc["dedup_key"]})

    return check, answer


def _block_problems(blocks: Any) -> list[str]:
    if not isinstance(blocks, list) or len(blocks) > 50:
        return ["blocks must be a list of at most 50"]
    problems, ids = [], []
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in ("header", "section", "actions", "context", "divider"):
            problems.append(f"unknown block type {kind!r}")
            continue
        if kind == "header" and (block["text"].get("type") != "plain_text" or len(block["text"]["text"]) > 150):
            problems.append("header must be plain_text of at most 150 characters")
        if kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append("section needs text or fields")
            if "text" in block and len(block["text"]["text"]) > 3000:
                problems.append("section text over 3000")
            if len(block.get("fields", [])) > 10:
                problems.append("more than 10 fields")
        if kind == "actions":
            elements = block.get("elements", [])
            if not 0 < len(elements) <= 25:
                problems.append("actions needs 1-25 elements")
            for el in elements:
                if el.get("type") != "button" or len(el["text"]["text"]) > 75 or len(el.get("value", "")) > 2000:
                    problems.append("bad button")
                if not 0 < len(el.get("action_id", "")) <= 255:
                    problems.append("bad action_id")
                ids.append(el.get("action_id"))
    if len(ids) != len(set(ids)):
        problems.append("action_id not unique")
    return problems


def slack(token: str, channel: str) -> tuple[Check, Answer]:
    counter = itertools.count(1)

    def check(seen: Seen) -> tuple[int, bytes] | None:
        if seen.path not in ("/api/chat.postMessage", "/api/chat.update"):
            return _bad(404, {"ok": False, "error": "unknown_method"})
        if seen.headers.get("authorization") != f"Bearer {token}":
            return _bad(200, {"ok": False, "error": "invalid_auth"})
        if not seen.headers.get("content-type", "").startswith("application/json"):
            return _bad(200, {"ok": False, "error": "invalid_form_data"})
        doc = json_body(seen)
        if not isinstance(doc, dict):
            return _bad(200, {"ok": False, "error": "invalid_json"})
        if doc.get("channel") != channel:
            return _bad(200, {"ok": False, "error": "channel_not_found"})
        if not doc.get("text") and not doc.get("blocks"):
            return _bad(200, {"ok": False, "error": "no_text"})
        if seen.path == "/api/chat.update" and not doc.get("ts"):
            return _bad(200, {"ok": False, "error": "message_not_found"})
        if "blocks" in doc and _block_problems(doc["blocks"]):
            return _bad(200, {"ok": False, "error": "invalid_blocks", "errors": _block_problems(doc["blocks"])})
        return None

    def answer(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        doc = json_body(seen)
        ts = doc.get("ts") if seen.path == "/api/chat.update" else f"{int(time.time())}.{next(counter):06d}"
        return 200, {"Content-Type": "application/json"}, orjson.dumps(
            {"ok": True, "channel": channel, "ts": ts, "message": {"text": doc.get("text", "")}})

    return check, answer


def webhook(secret: str) -> tuple[Check, Answer]:
    def check(seen: Seen) -> tuple[int, bytes] | None:
        problem = verify(secret, seen.headers, seen.body)
        if problem:
            return _bad(401, {"error": problem})
        if not seen.headers.get("x-watchkeeper-delivery", "").startswith("wk-outbox-"):
            return _bad(400, {"error": "no delivery id"})
        return None

    def answer(_seen: Seen) -> tuple[int, dict[str, str], bytes]:
        return 204, {}, b""

    return check, answer
