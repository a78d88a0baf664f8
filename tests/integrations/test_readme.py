"""The README sets each integration up in under ten lines of YAML (issue 17), and those lines are
valid settings."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from watchkeeper.integrations.config import IntegrationsConfig
from watchkeeper.integrations.routing import Route

README = Path(__file__).resolve().parents[2] / "README.md"
KINDS = {"slack", "pagerduty", "email", "webhook", "servicenow", "jira", "teams"}


def blocks() -> list[str]:
    return [b for b in re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S) if "integrations:" in b]


def entry_lines(block: str, name: str) -> int:
    """Lines of one target's entry: its key's line and the more indented ones after it."""
    lines = block.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{name}:"))
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines) and len(lines[end]) - len(lines[end].lstrip()) > indent:
        end += 1
    return end - start


def test_every_integration_is_set_up_in_under_ten_valid_lines() -> None:
    seen: set[str] = set()
    for block in blocks():
        doc = yaml.safe_load(block)
        config = IntegrationsConfig.model_validate(doc["integrations"])
        routes = [Route.model_validate(r) for r in doc["routes"]]
        routed = {t for r in routes for t in r.to}
        for name, target in config.targets.items():
            assert name in routed, f"{name} is set up but no route sends it anything"
            # integrations: + targets: + its entry + routes: + one route line
            assert 2 + entry_lines(block, name) + 2 < 10, name
            seen.add(target.type)
    assert seen == KINDS
