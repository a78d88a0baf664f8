"""Bind a runbook's parameters from incident data and validate each before any template sees it.

Strings are ASCII without control characters, at most ``max_length`` long, and must match the
parameter's ``pattern`` or ``enum`` — or, when neither is given, :data:`SAFE_TOKEN` (letters,
digits and ``._:@-``, starting with a letter or digit: no spaces, quotes, slashes, ``$``, ``;``).
A string starting with ``-`` is refused whatever the pattern says (it would be read as an option),
unless the parameter sets ``leading_dash: true``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from watchkeeper.errors import InputError
from watchkeeper.execute.runbook import Parameter, Runbook

SAFE_TOKEN = r"[A-Za-z0-9][A-Za-z0-9_.:@-]*"  # noqa: S105 - a pattern, not a password
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INTEGER = re.compile(r"-?\d{1,18}")
_NUMBER = re.compile(r"-?\d{1,18}(\.\d{1,18})?")


class ParameterError(InputError):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"parameter {name!r}: {message}")
        self.name = name


def bind(runbook: Runbook, data: Mapping[str, Any]) -> dict[str, Any]:
    """Validated values for every parameter, from ``data`` (keys like ``alert.labels.instance``).

    >>> from watchkeeper.execute.runbook import Runbook
    >>> rb = Runbook.model_validate({"id": "r", "title": "t", "selector": {}, "risk": "low",
    ...     "autonomy": "auto", "steps": [{"name": "s", "command": {"argv": ["true"]}}],
    ...     "parameters": {"unit": {"from": "alert.labels.unit", "pattern": "[a-z-]+\\\\.service"}}})
    >>> bind(rb, {"alert.labels.unit": "nginx.service"})
    {'unit': 'nginx.service'}
    >>> bind(rb, {"alert.labels.unit": "nginx.service; rm -rf /"})
    Traceback (most recent call last):
    ...
    watchkeeper.execute.params.ParameterError: parameter 'unit': value does not match the pattern ...
    """
    values: dict[str, Any] = {}
    for name, param in runbook.parameters.items():
        raw = data.get(param.source) if param.source else None
        if raw is None:
            if param.default is None:
                raise ParameterError(name, f"no value: the incident has no {param.source}")
            raw = param.default
        values[name] = validate(name, param, raw)
    return values


def validate(name: str, param: Parameter, raw: Any) -> Any:
    text = raw if isinstance(raw, str) else None
    if param.type == "boolean":
        if isinstance(raw, bool):
            return raw
        if text in ("true", "false"):
            return text == "true"
        raise ParameterError(name, "expected true or false")
    if param.type in ("integer", "number"):
        if isinstance(raw, bool):
            raise ParameterError(name, f"expected a {param.type}")
        if isinstance(raw, int | float):
            value: float = raw
        elif text is not None and (_INTEGER if param.type == "integer" else _NUMBER).fullmatch(text):
            value = int(text) if param.type == "integer" else float(text)
        else:
            raise ParameterError(name, f"expected a {param.type}, got {_show(raw)}")
        if param.type == "integer" and not float(value).is_integer():
            raise ParameterError(name, "expected an integer")
        if param.minimum is not None and value < param.minimum:
            raise ParameterError(name, f"{value} is below the minimum {param.minimum}")
        if param.maximum is not None and value > param.maximum:
            raise ParameterError(name, f"{value} is above the maximum {param.maximum}")
        if param.enum is not None and value not in param.enum:
            raise ParameterError(name, f"{value} is not one of {param.enum}")
        return int(value) if param.type == "integer" else value
    if text is None:
        raise ParameterError(name, f"expected a string, got {_show(raw)}")
    if len(text) > param.max_length:
        raise ParameterError(name, f"value longer than {param.max_length} characters")
    if not text.isascii():
        raise ParameterError(name, "value has non-ASCII characters (look-alikes are refused)")
    if _CONTROL.search(text):
        raise ParameterError(name, "value has control characters")
    if param.enum is not None:
        if text not in param.enum:
            raise ParameterError(name, f"{_show(text)} is not one of {param.enum}")
        return text
    if not re.fullmatch(param.pattern or SAFE_TOKEN, text):
        which = "the pattern" if param.pattern else "the default safe-token pattern"
        raise ParameterError(name, f"value does not match {which} {param.pattern or SAFE_TOKEN}: {_show(text)}")
    if text.startswith("-") and not param.leading_dash:
        # a value that a program would read as an option (``systemctl restart --force``)
        raise ParameterError(name, f"value starts with '-' and could be read as an option: {_show(text)} "
                             "(set 'leading_dash: true' on the parameter if that is meant)")
    return text


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
