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
