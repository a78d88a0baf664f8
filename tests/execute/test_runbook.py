"""Runbook files: validation with file and line, templates limited to declared params, the schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from fixtures.runbooks import write_restart
from watchkeeper.cli import app
from watchkeeper.execute.runbook import json_schema, load_catalog
from watchkeeper.yamlfile import parse_duration

SCHEMA_FILE = Path(__file__).parents[2] / "docs" / "runbook.schema.json"


def test_valid_catalog(tmp_path: Path) -> None:
    write_restart(tmp_path)
    (tmp_path / "policy.yaml").write_text("confidence_threshold: 0.9\nlimits: {max_actions_per_hour: 5}\n")
    catalog = load_catalog(tmp_path)
    assert catalog.problems == []
    assert list(catalog.runbooks) == ["restart-web"]
    assert catalog.policy.confidence_threshold == 0.9 and catalog.policy.limits.max_actions_per_hour == 5
    rb = catalog.runbooks["restart-web"]
    assert rb.verify is not None and rb.verify.deadline == 10.0 and rb.verify.interval == 0.2


BROKEN = """\
id: Bad ID
title: broken
selector: {}
parameters:
  host:
    from: alert.labels.host
    pattern: "([unclosed"
steps:
  - name: both
    command: {argv: [ls]}
    http: {url: "http://x"}
  - name: leak
    command:
      argv: ["echo", "{{ alert.labels.host }}", "{{ params.nope }}"]
risk: extreme
autonomy: auto
"""


def test_every_error_has_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    problems = [str(p) for p in load_catalog(tmp_path).problems]
    joined = "\n".join(problems)
    assert f"{path}:1: id:" in joined  # bad id, line 1
    assert f"{path}:7: parameters.host" in joined and "regular expression" in joined
    assert f"{path}:9: steps.0" in joined and "exactly one of" in joined
    assert f"{path}:15: risk:" in joined


def test_templates_may_only_use_declared_params(tmp_path: Path) -> None:
    text = BROKEN.replace("id: Bad ID", "id: leak").replace("risk: extreme", "risk: low")
    text = text.replace('    pattern: "([unclosed"\n', "").replace("    http: {url: \"http://x\"}\n", "")
    (tmp_path / "leak.yaml").write_text(text)
    problems = [str(p) for p in load_catalog(tmp_path).problems]
    assert any(":12: " in p and "unknown variable 'alert'" in p for p in problems), problems
    assert any("params.nope is not a declared parameter" in p for p in problems), problems


def test_duplicate_ids_and_bad_yaml(tmp_path: Path) -> None:
    write_restart(tmp_path)
    (tmp_path / "copy.yml").write_text((tmp_path / "restart-web.yaml").read_text())
    (tmp_path / "zz.yaml").write_text("id: [unclosed\n")
    problems = [str(p) for p in load_catalog(tmp_path).problems]
    assert any("also used by" in p for p in problems)
    assert any(p.startswith(str(tmp_path / "zz.yaml")) and "invalid YAML" in p for p in problems)


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    write_restart(tmp_path / "good")
    ok = CliRunner().invoke(app, ["runbooks", "validate", str(tmp_path / "good")])
    assert ok.exit_code == 0 and "1 runbooks valid" in ok.stdout
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.yaml").write_text(BROKEN)
    bad = CliRunner().invoke(app, ["runbooks", "validate", str(tmp_path / "bad")])
    assert bad.exit_code == 1 and "broken.yaml:15" in bad.stderr


def test_published_schema_is_current_and_validates_examples(tmp_path: Path) -> None:
    schema = json_schema()
    assert json.loads(SCHEMA_FILE.read_text()) == schema, "run: watchkeeper runbooks schema > docs/runbook.schema.json"
    jsonschema.Draft202012Validator.check_schema(schema)
    write_restart(tmp_path)
    document = yaml.safe_load((tmp_path / "restart-web.yaml").read_text())
    jsonschema.validate(document, schema)
    for example in sorted((Path(__file__).parents[2] / "examples" / "runbooks").glob("*.yaml")):
        if example.name != "policy.yaml":
            jsonschema.validate(yaml.safe_load(example.read_text()), schema)


@pytest.mark.parametrize("bad", ["5 minutes", "-1s", "1d", ""])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_a_cause_aimed_runbook_answers_the_causes_own_alerts() -> None:
    """The lab's bad deploy: the caller's error alert (version v1) would let lab-restart through, but
    the cause's own alerts name the bad configuration (v2), so restart does not match; rollback does."""
    from importlib.resources import files

    from watchkeeper.execute.select import match
    from watchkeeper.model import Cause

    catalog = load_catalog(Path(str(files("watchkeeper.lab") / "runbooks")))
    restart, rollback = catalog.runbooks.get("lab-restart"), catalog.runbooks.get("lab-rollback")
    assert restart is not None and rollback is not None
    incident = {"services": ["store", "catalog"], "alerts": [
        {"name": "HighErrorRatio", "service": "catalog", "status": "firing", "labels": {"version": "v1"}},
        {"name": "HighErrorRatio", "service": "store", "status": "firing", "labels": {"version": "v2"}},
    ]}
    causes = [Cause("store", confidence=0.99)]
    assert match(restart, incident, causes) is None
    found = match(rollback, incident, causes)
    assert found is not None and found.service == "store" and found.alert is not None
    # a crash: the cause's own alert is accepted
    crash = {"services": ["store"], "alerts": [{"name": "ServiceDown", "service": "store", "status": "firing",
                                                "labels": {}}]}
    assert match(restart, crash, causes) is not None
    # the cause has no firing alert of its own: any accepted alert justifies the runbook (a silent cause)
    silent = {"services": ["catalog"], "alerts": [incident["alerts"][0]]}
    found = match(restart, silent, causes)
    assert found is not None and found.alert is not None and found.alert["service"] == "catalog"
    # …and the action is on the cause: its per-service limits and its record name store, not the caller
    assert found.service == "store"


def test_causes_changed_is_checked_on_the_selected_cause_and_never_moves_to_another() -> None:
    """``causes.changed``: a restart cannot undo a deploy. The demo's reopened incident (2026-12-05): only
    the caller's alert (v1) was in it, the top cause had just been deployed, and lab-restart ran on it."""
    from importlib.resources import files

    from watchkeeper.execute.runbook import Runbook
    from watchkeeper.execute.select import match
    from watchkeeper.model import Cause

    def runbook(changed: bool | None) -> Runbook:
        return Runbook.model_validate({
            "id": "r", "title": "t", "risk": "low", "autonomy": "auto",
            "selector": {"alertnames": ["HighErrorRatio"], "causes": {"kinds": ["service"], "changed": changed}},
            "steps": [{"name": "s", "command": {"argv": ["true"]}}]})

    deploy = {"changes": [{"at": "2026-12-05T03:00:00+00:00", "description": "deploy v1 -> v2"}]}
    reopened = {"services": ["frontend", "checkout"], "alerts": [
        {"name": "HighErrorRatio", "service": "frontend", "status": "firing", "labels": {"version": "v1"}}]}
    changed_top = [Cause("checkout", confidence=0.998, evidence=deploy), Cause("frontend", confidence=0.4)]
    plain_top = [Cause("checkout", confidence=0.998), Cause("frontend", confidence=0.4, evidence=deploy)]

    assert match(runbook(False), reopened, changed_top) is None  # not frontend instead: it is not the cause
    found = match(runbook(False), reopened, plain_top)
    assert found is not None and found.service == "checkout"
    found = match(runbook(True), reopened, changed_top)
    assert found is not None and found.service == "checkout" and found.cause is not None
    assert match(runbook(True), reopened, plain_top) is None
    found = match(runbook(None), reopened, changed_top)  # unset: as before
    assert found is not None and found.service == "checkout"

    catalog = load_catalog(Path(str(files("watchkeeper.lab") / "runbooks")))
    restart = catalog.runbooks.get("lab-restart")
    assert restart is not None
    assert match(restart, reopened, changed_top) is None
    found = match(restart, reopened, plain_top)
    assert found is not None and found.service == "checkout"
