"""Parameters: nothing from alert data reaches an executor unvalidated (property tests)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchkeeper.execute.executors import StepContext
from watchkeeper.execute.params import SAFE_TOKEN, ParameterError, bind
from watchkeeper.execute.runbook import Runbook

RUNBOOK = Runbook.model_validate({
    "id": "p", "title": "t", "selector": {}, "risk": "low", "autonomy": "auto",
    "parameters": {
        "host": {"from": "alert.labels.host"},  # default safe-token pattern
        "unit": {"from": "alert.labels.unit", "pattern": "[a-z][a-z0-9-]{0,40}\\.service"},
        "mode": {"from": "alert.labels.mode", "enum": ["soft", "hard"]},
        "replicas": {"from": "alert.labels.replicas", "type": "integer", "minimum": 1, "maximum": 10},
    },
    "steps": [{"name": "s", "command": {"argv": ["restart", "{{ params.host }}", "{{ params.unit }}",
                                                  "--mode={{ params.mode }}", "{{ params.replicas }}"]}}],
})
GOOD = {"alert.labels.host": "web-1.example:8080", "alert.labels.unit": "nginx.service",
        "alert.labels.mode": "soft", "alert.labels.replicas": "3"}

NASTY = [
    "web-1; rm -rf /", "$(reboot)", "`id`", "web-1 && curl evil", "../../etc/passwd", "/etc/shadow", "a|b",
    "web\x00-1", "web-1\n--privileged", "wеb-1",  # Cyrillic е: a look-alike
    "ｗeb-1", "web-1\u202e", "x" * 1_000_000, "", " web-1", "-rf", "--help", "'quoted'", '"dq"', "a b",
]


@pytest.mark.parametrize("value", NASTY, ids=lambda v: repr(v[:20]))
def test_nasty_host_values_are_refused(value: str) -> None:
    with pytest.raises(ParameterError, match="'host'"):
        bind(RUNBOOK, {**GOOD, "alert.labels.host": value})


def test_good_values_bind_and_render_as_separate_argv_elements() -> None:
    params = bind(RUNBOOK, GOOD)
    assert params == {"host": "web-1.example:8080", "unit": "nginx.service", "mode": "soft", "replicas": 3}
    ctx = StepContext(params, 1, "p")
    argv = [ctx.render(a) for a in RUNBOOK.steps[0].command.argv]  # type: ignore[union-attr]
    assert argv == ["restart", "web-1.example:8080", "nginx.service", "--mode=soft", "3"]


@pytest.mark.parametrize(("key", "value"), [
    ("alert.labels.unit", "nginx.service;reboot"), ("alert.labels.mode", "SOFT"), ("alert.labels.replicas", "11"),
    ("alert.labels.replicas", "3.5"), ("alert.labels.replicas", "1e3"), ("alert.labels.replicas", "true"),
])
def test_typed_checks(key: str, value: str) -> None:
    with pytest.raises(ParameterError):
        bind(RUNBOOK, {**GOOD, key: value})


def test_missing_value_is_an_error() -> None:
    data = {k: v for k, v in GOOD.items() if k != "alert.labels.host"}
    with pytest.raises(ParameterError, match="no value"):
        bind(RUNBOOK, data)


@settings(max_examples=2000, deadline=None)
@given(labels=st.dictionaries(st.sampled_from(["host", "unit", "mode", "replicas"]),
                              st.text(max_size=80) | st.sampled_from(NASTY) | st.integers(), max_size=4))
def test_whatever_the_labels_rendered_argv_holds_only_validated_values(labels: dict[str, Any]) -> None:
    data = {**GOOD, **{f"alert.labels.{k}": v for k, v in labels.items()}}
    try:
        params = bind(RUNBOOK, data)
    except ParameterError:
        return
    assert re.fullmatch(SAFE_TOKEN, params["host"]) and len(params["host"]) <= 256
    assert re.fullmatch(r"[a-z][a-z0-9-]{0,40}\.service", params["unit"])
    assert params["mode"] in ("soft", "hard") and 1 <= params["replicas"] <= 10
    ctx = StepContext(params, 1, "p")
    argv = [ctx.render(a) for a in RUNBOOK.steps[0].command.argv]  # type: ignore[union-attr]
    assert len(argv) == 5
    for element in argv:
        assert element.isascii() and not re.search(r"[\s;|&$`'\"<>()\\\x00]", element)


def test_a_leading_dash_is_refused_even_when_the_pattern_admits_it() -> None:
    loose = Runbook.model_validate({
        "id": "p", "title": "t", "selector": {}, "risk": "low", "autonomy": "auto",
        "parameters": {"unit": {"from": "alert.labels.unit", "pattern": "[a-z0-9@-]{1,64}\\.service"},
                       "flag": {"from": "alert.labels.flag", "pattern": "-[a-z]", "leading_dash": True}},
        "steps": [{"name": "s", "command": {"argv": ["systemctl", "restart", "--", "{{ params.unit }}"]}}],
    })
    with pytest.raises(ParameterError, match="starts with '-' and could be read as an option"):
        bind(loose, {"alert.labels.unit": "--force.service", "alert.labels.flag": "-q"})
    assert bind(loose, {"alert.labels.unit": "nginx.service", "alert.labels.flag": "-q"}) == {
        "unit": "nginx.service", "flag": "-q"}
