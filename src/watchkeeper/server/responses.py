"""JSON responses rendered with orjson (UTC times with ``Z``)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse

OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_DATACLASS


class Json(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=OPTIONS)


def error(status: int, message: str) -> Json:
    return Json({"error": message, "status": status}, status_code=status)


def challenge(code: str | None, message: str) -> str:
    """A ``WWW-Authenticate`` value (RFC 6750): ``Bearer realm="watchkeeper"``, with the error
    code and a description when credentials were given but are not good enough.

    >>> print(challenge("invalid_token", 'token "x" expired'))
    Bearer realm="watchkeeper", error="invalid_token", error_description="token 'x' expired"
    """
    value = 'Bearer realm="watchkeeper"'
    if code:
        # a quoted-string of visible ASCII (RFC 6750 section 3): no quotes, backslashes or others
        text = "".join(c if " " <= c <= "~" and c not in '"\\' else "'" if c == '"' else "?" for c in message)
        value += f', error="{code}", error_description="{text[:300]}"'
    return value
