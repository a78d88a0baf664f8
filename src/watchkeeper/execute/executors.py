"""Executors, behind one protocol: ``run(step, context) -> StepResult``.

* ``command``: an argv list (each element rendered separately, never through a shell), an
  environment built from an allowlist, a working directory, a timeout after which the whole
  process group is killed. Output goes to a temporary file (not a pipe), so a command that
  starts a detached daemon does not hang the run.
* ``http``: method, URL, headers and JSON body templates, expected status, timeout.
* ``python``: third-party executors registered under the ``watchkeeper.executors`` entry points.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from watchkeeper.errors import ConfigError
from watchkeeper.execute.runbook import Step, render

if TYPE_CHECKING:  # httpx is imported by the HTTP step that runs
    import httpx

MAX_OUTPUT = 4096
_SECRETISH = re.compile(
    r"(?i)((?:authorization|token|password|passwd|secret|api[_-]?key)\s*[:=]\s*)((?:bearer\s+|basic\s+)?\S+)"
)
_SECRET_NAMES = re.compile(r"(?i)(token|secret|password|passwd|key|authorization|credential)")


@dataclass(frozen=True, slots=True)
class StepContext:
    params: Mapping[str, Any]
    incident_id: int
    runbook_id: str
    base_env: Mapping[str, str] = field(default_factory=dict)

    def render(self, text: str) -> str:
        return render(text, dict(self.params), self.incident_id, self.runbook_id)

    def render_all(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.render(value)
        if isinstance(value, list):
            return [self.render_all(v) for v in value]
        if isinstance(value, dict):
            return {k: self.render_all(v) for k, v in value.items()}
        return value


@dataclass(frozen=True, slots=True)
class StepResult:
    ok: bool
    detail: str
    output: str = ""
    duration_s: float = 0.0
    code: int | None = None
    request: dict[str, Any] = field(default_factory=dict)


class Executor(Protocol):
    kind: str

    def run(self, step: Step, ctx: StepContext) -> StepResult: ...

    def plan(self, step: Step, ctx: StepContext) -> dict[str, Any]:
        """What ``run`` would do, rendered, with secrets redacted (for dry runs and the audit)."""
        ...


def redact(text: str, secrets: list[str]) -> str:
    """
    >>> redact("Authorization: Bearer abc123 and abc123", ["abc123"])
    'Authorization: *** and ***'
    """
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _SECRETISH.sub(lambda m: m.group(1) + "***", text)


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_OUTPUT else text[:MAX_OUTPUT] + f"... ({len(text) - MAX_OUTPUT} more characters)"


class CommandExecutor:
    kind = "command"

    def plan(self, step: Step, ctx: StepContext) -> dict[str, Any]:
        spec = step.command
        assert spec is not None
        env_extra = {k: ctx.render(v) for k, v in spec.env.items()}
        secrets = [v for k, v in env_extra.items() if _SECRET_NAMES.search(k)]
        return {
            "argv": [redact(ctx.render(a), secrets) for a in spec.argv],
            "cwd": ctx.render(spec.cwd) if spec.cwd else None,
            "env": {k: "***" if _SECRET_NAMES.search(k) else v for k, v in env_extra.items()},
            "env_allowlist": spec.env_allowlist, "timeout_s": spec.timeout,
        }

    def run(self, step: Step, ctx: StepContext) -> StepResult:
        spec = step.command
        assert spec is not None
        argv = [ctx.render(a) for a in spec.argv]
        extra = {k: ctx.render(v) for k, v in spec.env.items()}
        env = {k: ctx.base_env[k] for k in spec.env_allowlist if k in ctx.base_env} | extra
        secrets = [v for k, v in extra.items() if _SECRET_NAMES.search(k)]
        cwd = ctx.render(spec.cwd) if spec.cwd else None
        plan = self.plan(step, ctx)
        started = time.monotonic()
        with tempfile.TemporaryFile() as out:
            try:
                proc = subprocess.Popen(
                    argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: a timeout kills children too
                )
            except OSError as exc:
                return StepResult(False, f"cannot start {argv[0]!r}: {exc.strerror or exc}", request=plan)
            try:
                code = proc.wait(timeout=spec.timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                code, timed_out = proc.wait(), True
            out.seek(0)
            output = redact(_truncate(out.read(MAX_OUTPUT * 2).decode("utf-8", "replace")), secrets)
        duration = time.monotonic() - started
        if timed_out:
            return StepResult(False, f"timed out after {spec.timeout:g}s: process group killed", output,
                              duration, code, plan)
        detail = "exit 0" if code == 0 else f"exit {code}"
        return StepResult(code == 0, detail, output, duration, code, plan)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


class HttpExecutor:
    kind = "http"

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self.transport = transport

    def _request(self, step: Step, ctx: StepContext) -> tuple[str, str, dict[str, str], Any, list[str]]:
        spec = step.http
        assert spec is not None
        headers = {k: ctx.render(v) for k, v in spec.headers.items()}
        secrets = [v for k, v in headers.items() if _SECRET_NAMES.search(k)]
        return spec.method, ctx.render(spec.url), headers, ctx.render_all(spec.body), secrets

    def plan(self, step: Step, ctx: StepContext) -> dict[str, Any]:
        method, url, headers, body, secrets = self._request(step, ctx)
        assert step.http is not None
        return {
            "method": method, "url": redact(url, secrets),
            "headers": {k: "***" if _SECRET_NAMES.search(k) else v for k, v in headers.items()},
            "body": body, "expect_status": step.http.expect_status or "2xx", "timeout_s": step.http.timeout,
        }

    def run(self, step: Step, ctx: StepContext) -> StepResult:
        spec = step.http
        assert spec is not None
        method, url, headers, body, secrets = self._request(step, ctx)
        plan = self.plan(step, ctx)
        started = time.monotonic()
        refused = refused_host(spec.url, url, spec.allowed_hosts)
        if refused is not None:
            return StepResult(False, f"{method} {redact(url, secrets)} refused: {refused}",
                              duration_s=time.monotonic() - started, request=plan)
        import httpx

        try:
            with httpx.Client(timeout=spec.timeout, transport=self.transport, trust_env=False) as client:
                response = client.request(method, url, headers=headers, json=body if body is not None else None)
        except httpx.HTTPError as exc:
            return StepResult(False, f"{method} {redact(url, secrets)} failed: {type(exc).__name__}: {exc}",
                              duration_s=time.monotonic() - started, request=plan)
        ok = response.status_code in spec.expect_status if spec.expect_status else response.is_success
        output = redact(_truncate(response.text), secrets)
        return StepResult(ok, f"HTTP {response.status_code}", output, time.monotonic() - started,
                          response.status_code, plan)


#: Never reached unless a runbook lists them: link-local (cloud metadata lives there) and metadata names.
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})


def _authority_host(url: str) -> str | None:
    """The host written literally in a URL template, or None when the host part is templated."""
    authority = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in authority:
        return None
    host = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
    return None if "{{" in host or "{%" in host else host.strip("[]").lower()


def refused_host(template: str, rendered: str, allowed: list[str]) -> str | None:
    """Why the rendered URL of an HTTP step may not be requested (None: it may).

    The host must be the one written literally in the template or one of ``allowed``; a URL
    with credentials (``user@host``) is refused, as are link-local and cloud-metadata addresses
    unless listed. A parameter cannot move a request to another host.

    >>> refused_host("http://localhost:{{ params.port }}/x", "http://localhost:9@127.0.0.1:33269/x", [])
    "the URL carries a user part ('...@'), which a parameter may have injected"
    >>> refused_host("http://{{ params.host }}/x", "http://10.0.0.5/x", [])
    "host '10.0.0.5' is not the runbook's literal host nor in its allowed_hosts"
    >>> refused_host("http://{{ params.host }}/x", "http://10.0.0.5/x", ["10.0.0.5"]) is None
    True
    >>> refused_host("http://169.254.169.254/latest", "http://169.254.169.254/latest", [])
    "host '169.254.169.254' is link-local or cloud metadata; list it in allowed_hosts to reach it"
    """
    import ipaddress

    import httpx

    try:
        parsed = httpx.URL(rendered)
    except (httpx.InvalidURL, ValueError) as exc:
        return f"not a valid URL: {exc}"
    if parsed.userinfo:
        return "the URL carries a user part ('...@'), which a parameter may have injected"
    host = parsed.host.lower()
    listed = {h.lower().strip("[]") for h in allowed}
    if host in listed:
        return None
    try:
        special = ipaddress.ip_address(host).is_link_local
    except ValueError:
        special = host in _METADATA_HOSTS
    if special:
        return f"host {host!r} is link-local or cloud metadata; list it in allowed_hosts to reach it"
    if host != _authority_host(template):
        return f"host {host!r} is not the runbook's literal host nor in its allowed_hosts"
    return None


class PythonExecutor:
    """Dispatch to a plugin: an entry point ``watchkeeper.executors`` naming a callable
    ``(args: dict, ctx: StepContext) -> StepResult``."""

    kind = "python"

    def __init__(self, plugins: Mapping[str, Callable[[dict[str, Any], StepContext], StepResult]]) -> None:
        self.plugins = plugins

    def plan(self, step: Step, ctx: StepContext) -> dict[str, Any]:
        assert step.python is not None
        return {"executor": step.python.executor, "with": ctx.render_all(step.python.args)}

    def run(self, step: Step, ctx: StepContext) -> StepResult:
        spec = step.python
        assert spec is not None
        plugin = self.plugins.get(spec.executor)
        if plugin is None:
            return StepResult(False, f"no executor plugin named {spec.executor!r} is installed")
        started = time.monotonic()
        try:
            result = plugin(ctx.render_all(spec.args), ctx)
        except Exception as exc:  # a plugin's failure is a failed step, never a crash
            return StepResult(False, f"plugin {spec.executor!r} raised {type(exc).__name__}: {exc}",
                              duration_s=time.monotonic() - started)
        return result


def plugins() -> dict[str, Callable[[dict[str, Any], StepContext], StepResult]]:
    found: dict[str, Callable[[dict[str, Any], StepContext], StepResult]] = {}
    for ep in entry_points(group="watchkeeper.executors"):
        if ep.name in found:
            raise ConfigError(f"two executor plugins are named {ep.name!r}")
        found[ep.name] = ep.load()
    return found


def registry(
    *, http_transport: httpx.BaseTransport | None = None,
    extra: Mapping[str, Callable[[dict[str, Any], StepContext], StepResult]] | None = None,
) -> dict[str, Executor]:
    """The built-in executors (explicit list) plus entry-point plugins for ``python`` steps."""
    return {
        "command": CommandExecutor(),
        "http": HttpExecutor(http_transport),
        "python": PythonExecutor({**plugins(), **(extra or {})}),
    }
