"""Executors against real processes and a real local HTTP server."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from watchkeeper.execute.executors import CommandExecutor, HttpExecutor, PythonExecutor, StepContext, StepResult
from watchkeeper.execute.runbook import Step

CTX = StepContext({"name": "web-1", "secret": "s3cr3t-value"}, 42, "rb", base_env={"PATH": os.environ["PATH"],
                                                                                  "HOME": "/root", "AWS_KEY": "x"})


def step(**kind: Any) -> Step:
    return Step.model_validate({"name": "s", **kind})


def test_command_argv_rendering_exit_code_and_output() -> None:
    result = CommandExecutor().run(step(command={"argv": [sys.executable, "-c", "import sys; print(sys.argv[1]); sys.exit(3)",
                                                         "{{ params.name }}-{{ incident_id }}"]}), CTX)
    assert not result.ok and result.code == 3 and result.detail == "exit 3"
    assert result.output.strip() == "web-1-42"


def test_command_env_is_an_allowlist() -> None:
    code = "import os; print(sorted(k for k in os.environ if k in ('PATH','HOME','AWS_KEY','EXTRA')))"
    result = CommandExecutor().run(step(command={"argv": [sys.executable, "-c", code], "env": {"EXTRA": "1"}}), CTX)
    assert result.ok
    assert result.output.strip() == "['EXTRA', 'PATH']"


def test_command_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    result = CommandExecutor().run(step(command={"argv": [sys.executable, "-c", script], "timeout": "1s"}), CTX)
    assert not result.ok and "timed out after 1s" in result.detail
    assert time.monotonic() - started < 20
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the grandchild survived the timeout"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (already dead, not yet reaped by its reparented init) counts as dead
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_command_that_cannot_start() -> None:
    result = CommandExecutor().run(step(command={"argv": ["/nonexistent/binary"]}), CTX)
    assert not result.ok and "cannot start" in result.detail


def test_secrets_are_redacted_from_output_and_plan() -> None:
    s = step(command={"argv": [sys.executable, "-c", "import os; print('token=' + os.environ['API_TOKEN'])"],
                      "env": {"API_TOKEN": "{{ params.secret }}"}})
    result = CommandExecutor().run(s, CTX)
    assert result.ok and "s3cr3t-value" not in result.output and "***" in result.output
    assert result.request["env"] == {"API_TOKEN": "***"}


class _Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.seen.append({"path": self.path, "body": body, "auth": self.headers.get("authorization")})
        self.send_response(201 if self.path.startswith("/restart/") else 500)
        self.end_headers()
        self.wfile.write(b"restarted token=abc1234")

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_http_step_renders_checks_status_and_redacts(server: str) -> None:
    s = step(http={"method": "POST", "url": server + "/restart/{{ params.name }}", "expect_status": [201],
                   "headers": {"Authorization": "Bearer {{ params.secret }}"}, "body": {"who": "{{ params.name }}"}})
    result = HttpExecutor().run(s, CTX)
    assert result.ok and result.code == 201
    assert _Handler.seen[-1]["path"] == "/restart/web-1" and _Handler.seen[-1]["body"] == b'{"who":"web-1"}'
    assert _Handler.seen[-1]["auth"] == "Bearer s3cr3t-value"
    assert "abc1234" not in result.output and result.request["headers"] == {"Authorization": "***"}
    wrong = HttpExecutor().run(step(http={"method": "POST", "url": server + "/other"}), CTX)
    assert not wrong.ok and wrong.detail == "HTTP 500"


def test_http_connection_refused_is_a_failed_step() -> None:
    result = HttpExecutor().run(step(http={"url": "http://127.0.0.1:9/", "timeout": "1s"}), CTX)
    assert not result.ok and "failed" in result.detail


def test_python_plugins() -> None:
    def restart(args: dict[str, Any], ctx: StepContext) -> StepResult:
        return StepResult(True, f"restarted {args['target']} for incident {ctx.incident_id}")

    def broken(args: dict[str, Any], ctx: StepContext) -> StepResult:
        raise RuntimeError("boom")

    executor = PythonExecutor({"restart": restart, "broken": broken})
    ok = executor.run(step(python={"executor": "restart", "with": {"target": "{{ params.name }}"}}), CTX)
    assert ok.ok and ok.detail == "restarted web-1 for incident 42"
    assert "raised RuntimeError: boom" in executor.run(step(python={"executor": "broken"}), CTX).detail
    assert "no executor plugin" in executor.run(step(python={"executor": "missing"}), CTX).detail


def plugin_restart(args: dict[str, Any], ctx: StepContext) -> StepResult:
    """A third-party executor, as a plugin package would ship it."""
    return StepResult(True, f"plugin restarted {args['target']}")


def test_python_executors_come_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    from watchkeeper.errors import ConfigError
    from watchkeeper.execute import executors as module

    point = EntryPoint("restart", f"{__name__}:plugin_restart", "watchkeeper.executors")
    monkeypatch.setattr(module, "entry_points", lambda group: [point] if group == "watchkeeper.executors" else [])
    registry = module.registry()
    result = registry["python"].run(step(python={"executor": "restart", "with": {"target": "{{ params.name }}"}}), CTX)
    assert result.ok and result.detail == "plugin restarted web-1"
    monkeypatch.setattr(module, "entry_points", lambda group: [point, point])
    with pytest.raises(ConfigError, match="two executor plugins"):
        module.registry()


def test_a_parameter_cannot_move_an_http_step_to_another_host(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    before = len(_Handler.seen)
    # the reviewer's attack: a string port of '9@127.0.0.1:PORT' turns 'localhost:' into a user part
    ctx = StepContext({"port": f"9@127.0.0.1:{port}"}, 1, "rb")
    attack = HttpExecutor().run(step(http={"url": "http://localhost:{{ params.port }}/restart/x"}), ctx)
    assert not attack.ok and "refused" in attack.detail and "user part" in attack.detail
    # a templated host reaches only what the runbook lists
    ctx = StepContext({"host": "127.0.0.1"}, 1, "rb")
    templated = step(http={"url": f"http://{{{{ params.host }}}}:{port}/restart/x", "expect_status": [201]})
    assert "not the runbook's literal host" in HttpExecutor().run(templated, ctx).detail
    assert len(_Handler.seen) == before, "no request was sent"
    listed = step(http={"method": "POST", "url": f"http://{{{{ params.host }}}}:{port}/restart/x", "expect_status": [201],
                        "allowed_hosts": ["127.0.0.1"]})
    assert HttpExecutor().run(listed, ctx).ok
    metadata = HttpExecutor().run(step(http={"url": "http://169.254.169.254/latest/meta-data/", "timeout": "1s"}), CTX)
    assert not metadata.ok and "link-local or cloud metadata" in metadata.detail
