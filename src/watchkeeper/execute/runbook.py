"""Runbooks: the YAML schema (pydantic, published as JSON Schema), loading with ``file:line`` errors.

Templates (``{{ params.unit }}``) are Jinja2, sandboxed, and may reference only the runbook's
declared parameters, ``incident_id`` and ``runbook_id`` — never raw alert data. Parameters are
bound from the incident and validated before any template sees them (see ``params.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from watchkeeper.policy.base import Autonomy, PolicyConfig, Risk
from watchkeeper.yamlfile import Duration, YamlPositions, load

Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
#: Where a parameter's value comes from.
PARAM_SOURCE = (
    r"^(service|incident\.(id|severity|title)|alert\.(name|service|resource|severity|fingerprint)"
    r"|alert\.labels\.[A-Za-z_][A-Za-z0-9_]*|cause\.(component|kind))$"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Parameter(_Strict):
    """A typed value bound from incident data and validated before use."""

    source: str | None = Field(None, alias="from", pattern=PARAM_SOURCE,
                               description="incident data to bind, e.g. alert.labels.instance")
    type: Literal["string", "integer", "number", "boolean"] = "string"
    pattern: str | None = Field(None, description="regular expression the whole value must match")
    enum: list[str | int | float] | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int = Field(256, ge=1, le=4096)
    default: str | int | float | bool | None = None
    leading_dash: bool = Field(False, description="accept a string starting with '-' (refused by default: "
                               "a program would read it as an option)")

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _check(self) -> Parameter:
        if self.source is None and self.default is None:
            raise ValueError("a parameter needs 'from' (incident data) or a 'default'")
        return self


class CommandSpec(_Strict):
    """Run a program: an argv list, never a shell string."""

    argv: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict, description="extra variables (templated)")
    env_allowlist: list[str] = Field(default_factory=lambda: ["PATH", "LANG", "LC_ALL", "TZ"],
                                     description="variables passed through from Watchkeeper's environment")
    cwd: str | None = None
    timeout: Duration = 30.0


class HttpSpec(_Strict):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    expect_status: list[int] = Field(default_factory=list, description="empty: any 2xx")
    timeout: Duration = 10.0
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="hosts the rendered URL may reach besides a host written literally in 'url' "
        "(a templated host reaches only these; link-local and cloud metadata addresses only when listed)")


class PythonSpec(_Strict):
    executor: str = Field(description="name registered under the watchkeeper.executors entry points")
    args: dict[str, Any] = Field(default_factory=dict, alias="with")


class Step(_Strict):
    name: str = Field(min_length=1, max_length=128)
    command: CommandSpec | None = None
    http: HttpSpec | None = None
    python: PythonSpec | None = None

    @model_validator(mode="after")
    def _one(self) -> Step:
        if sum(x is not None for x in (self.command, self.http, self.python)) != 1:
            raise ValueError("a step has exactly one of command, http or python")
        return self

    @property
    def kind(self) -> str:
        return "command" if self.command else "http" if self.http else "python"


class Verify(_Strict):
    """A check retried every ``interval`` until it passes or ``deadline`` passes."""

    check: Step
    deadline: Duration = 60.0
    interval: Duration = 2.0


class CauseSelector(_Strict):
    components: list[str] = Field(default_factory=list, description="glob patterns")
    kinds: list[str] = Field(default_factory=list)
    min_confidence: float = Field(0.0, ge=0, le=1)
    changed: bool | None = Field(
        None, description="true: only when the selected cause's ranking names a change of it (a deploy) near "
        "the onset; false: only when it names none. Checked on the cause the other criteria select: a "
        "mismatch means the runbook does not apply, never that a lower-ranked cause is taken instead")


class Selector(_Strict):
    """All given criteria must hold. Services are glob patterns; a label value starting with
    ``=~`` is a regular expression, with ``!=`` a negation."""

    services: list[str] = Field(default_factory=list)
    alertnames: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    causes: CauseSelector | None = None


class Runbook(_Strict):
    """One runbook file."""

    id: Id
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    version: str = "1"
    selector: Selector
    parameters: dict[Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,63}$")], Parameter] = Field(
        default_factory=dict
    )
    steps: list[Step] = Field(min_length=1)
    verify: Verify | None = None
    rollback: list[Step] = Field(default_factory=list)
    risk: Risk
    autonomy: Autonomy
    confidence_threshold: float | None = Field(None, ge=0, le=1, description="overrides the policy's")
    on_success: Literal["mitigate", "resolve", "none"] = "mitigate"


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(slots=True)
class Catalog:
    """Every runbook of a directory, its policy file, and what was wrong with them."""

    runbooks: dict[str, Runbook] = field(default_factory=dict)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    problems: list[Problem] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # runbook id -> file


POLICY_FILE = "policy.yaml"
_ENV = SandboxedEnvironment(autoescape=False)
_GLOBALS = {"params", "incident_id", "runbook_id"}


def load_catalog(directory: Path) -> Catalog:
    """Read ``*.yaml``/``*.yml`` in ``directory`` (not recursive); ``policy.yaml`` is the policy."""
    catalog = Catalog()
    if not directory.is_dir():
        catalog.problems.append(Problem(str(directory), 1, "not a directory"))
        return catalog
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        name = str(path)
        try:
            doc = load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            catalog.problems.append(Problem(name, 1, f"cannot read: {exc}"))
            continue
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            catalog.problems.append(Problem(name, mark.line + 1 if mark else 1, f"invalid YAML: {exc}"))
            continue
        if path.name == POLICY_FILE:
            policy = _validate(PolicyConfig, doc, name, catalog.problems, empty_ok=True)
            if isinstance(policy, PolicyConfig):
                catalog.policy = policy
            continue
        runbook = _validate(Runbook, doc, name, catalog.problems)
        if not isinstance(runbook, Runbook):
            continue
        template_problems = check_templates(runbook, doc)
        catalog.problems.extend(Problem(name, line, msg) for line, msg in template_problems)
        if template_problems:
            continue
        if runbook.id in catalog.runbooks:
            other = catalog.files[runbook.id]
            message = f"runbook id {runbook.id!r} is also used by {other}"
            catalog.problems.append(Problem(name, doc.line(("id",)), message))
            continue
        catalog.runbooks[runbook.id] = runbook
        catalog.files[runbook.id] = name
    return catalog


def _validate(
    model: type[BaseModel], doc: YamlPositions, name: str, problems: list[Problem], *, empty_ok: bool = False
) -> BaseModel | None:
    data = doc.data
    if data is None and empty_ok:
        data = {}
    if not isinstance(data, dict):
        problems.append(Problem(name, 1, "the file must hold a mapping"))
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            line, where = doc.where(tuple(err["loc"]))
            problems.append(Problem(name, line, f"{where}: {err['msg']}"))
        return None


def templates_of(runbook: Runbook) -> list[tuple[tuple[Any, ...], str]]:
    """Every templated string of a runbook with its path in the document."""
    found: list[tuple[tuple[Any, ...], str]] = []

    def walk(value: Any, path: tuple[Any, ...]) -> None:
        if isinstance(value, str):
            found.append((path, value))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*path, i))

    for section in ("steps", "rollback"):
        for i, step in enumerate(getattr(runbook, section)):
            walk(step.model_dump(by_alias=True, exclude_none=True), (section, i))
    if runbook.verify is not None:
        walk(runbook.verify.check.model_dump(by_alias=True, exclude_none=True), ("verify", "check"))
    return found


def check_templates(runbook: Runbook, doc: YamlPositions | None = None) -> list[tuple[int, str]]:
    """Syntax errors, and references to anything but declared parameters, with their lines."""
    problems: list[tuple[int, str]] = []
    for path, text in templates_of(runbook):
        if "{" not in text:
            continue
        line = doc.line(path) if doc else 1
        try:
            tree = _ENV.parse(text)
        except TemplateSyntaxError as exc:
            problems.append((line, f"{'.'.join(map(str, path))}: template syntax error: {exc.message}"))
            continue
        for name in tree.find_all(nodes.Name):
            if name.name not in _GLOBALS:
                problems.append((line, f"{'.'.join(map(str, path))}: unknown variable {name.name!r}; "
                                       "templates may use params.<name>, incident_id, runbook_id"))
        for attr in tree.find_all(nodes.Getattr):
            if isinstance(attr.node, nodes.Name) and attr.node.name == "params" and (
                attr.attr not in runbook.parameters
            ):
                where = ".".join(map(str, path))
                problems.append((line, f"{where}: params.{attr.attr} is not a declared parameter"))
    return problems


def render(text: str, params: dict[str, Any], incident_id: int, runbook_id: str) -> str:
    """Render one template string with validated parameters only."""
    template = _ENV.from_string(text)
    return str(template.render(params=params, incident_id=incident_id, runbook_id=runbook_id))


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of a runbook file."""
    schema = Runbook.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://watchkeeper.dev/schemas/runbook.schema.json"
    return schema
