"""Limits every request meets before its route runs (pure ASGI middleware).

- A body larger than ``max_body_bytes`` is a 413, for every route (ingest routes read their own
  body under the same limit, so that the refused body is kept as a dead letter).
- A JSON body nested deeper than ``MAX_JSON_DEPTH`` levels, or holding a NUL character, is a 422;
  one that is not JSON at all (``NaN``, a cut-off document) is a 400.
- A NUL character in the path or the query string is a 422 (PostgreSQL text cannot hold one).
- An API query parameter given twice is a 422: no API parameter is a list, and taking one of the
  two values silently would answer a question that was not asked.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson

from watchkeeper.server.responses import error
from watchkeeper.sources.limits import MAX_JSON_DEPTH, json_problem

INGEST_PREFIX = "/api/v1/ingest/"
#: OTLP/HTTP (``/v1/traces``, ``/v1/logs``): read by their routes, refused bodies dead-lettered there.
OTLP_PREFIX = "/v1/"
API_PREFIX = "/api/"


class RequestLimits:
    def __init__(self, app: Any, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            await error(422, "the URL holds a NUL character (%00), which cannot be stored")(scope, receive, send)
            return
        repeated = _repeated_key(scope) if scope["path"].startswith(API_PREFIX) else None
        if repeated is not None:
            await error(422, f"query parameter {repeated!r} given more than once")(scope, receive, send)
            return
        if scope["path"].startswith((INGEST_PREFIX, OTLP_PREFIX)) or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        limit = self.max_body_bytes
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(f"{int(declared)}", limit)(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(f"{size}+", limit)(scope, receive, send)  # the rest is not read
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        media = headers.get(b"content-type", b"application/json").split(b";")[0].strip().lower()
        if body and (media.endswith(b"/json") or media.endswith(b"+json")):
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                await error(400, f"malformed JSON: {exc}")(scope, receive, send)
                return
            problem = json_problem(document, MAX_JSON_DEPTH)
            if problem is not None:
                await error(422, f"the body cannot be accepted: {problem}")(scope, receive, send)
                return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _repeated_key(scope: Any) -> str | None:
    """The first query parameter that appears twice, if any."""
    query: bytes = scope.get("query_string", b"")
    if not query:
        return None
    seen: set[str] = set()
    for key, _value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if key in seen:
            return str(key)
        seen.add(key)
    return None


def _too_large(size: str, limit: int) -> Any:
    return error(413, f"the request body of {size} bytes exceeds the limit of {limit} bytes "
                      "(setting max_body_bytes)")


__all__ = ["RequestLimits"]
