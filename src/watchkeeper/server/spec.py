"""Make the OpenAPI spec tell the truth about errors.

Every error the API answers has the project's shape, ``{"error": str, "status": int}`` (not
FastAPI's ``{"detail": …}``), and the status codes a route can answer are declared on it: 401/403
where a token is needed, 404 where the path names an object, 400/413 where a body is read, 422
everywhere (a bad parameter, or a NUL character in the URL). A schemathesis run over the spec in
the test suite (``tests/server/test_schema.py``) holds the two together.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "What is wrong, in one sentence"},
        "status": {"type": "integer", "description": "The HTTP status, repeated"},
    },
    "required": ["error", "status"],
}

_WHY = {
    "400": "malformed JSON",
    "401": "missing, unknown or revoked token",
    "403": "the token's role may not do this",
    "404": "no such object",
    "409": "conflicts with the object's current state",
    "413": "body larger than max_body_bytes",
    "415": "not JSON",
    "422": "invalid request (the message names the field)",
}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def document_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """Declare, on each operation of ``spec``, the error statuses it can answer, in the error shape."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            codes = {"422"}
            if operation.get("security"):
                codes |= {"401", "403"}
            if "{" in path:
                codes.add("404")
            if "requestBody" in operation or method in ("post", "put", "patch"):
                codes |= {"400", "413"}
            if method in ("post", "put", "delete") and "{" in path:
                codes.add("409")  # a state the object is not in (resolving a resolved incident…)
            for code in codes:
                responses.setdefault(code, {"description": _WHY[code]})
            for code, response in responses.items():
                if code.startswith(("4", "5")):
                    response["content"] = content
                    response.setdefault("description", _WHY.get(code, "error"))
    return spec


def allowed_methods(app: Any, scope: Any) -> list[str]:
    """The methods some route of ``app`` takes at ``scope``'s path (for a 405's ``Allow``)."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**scope, "method": "GET"})
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


__all__ = ["ERROR_SCHEMA", "allowed_methods", "document_errors"]
