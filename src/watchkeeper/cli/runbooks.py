"""``watchkeeper runbooks``: validate, inspect and run runbooks; evidence and breakers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from watchkeeper.cli.common import (
    RunbooksDir,
    actor,
    dumps,
    err,
    make_table,
    out,
    service,
)

app = typer.Typer(no_args_is_help=True, help="Runbooks: validate, inspect, run; evidence and breakers.")


@app.command("validate")
def runbooks_validate(directory: Annotated[Path, typer.Argument(help="Directory of runbook YAML files")]) -> None:
    """Report every error with its file and line; exit 1 if there is any."""
    from watchkeeper.execute.runbook import load_catalog

    catalog = load_catalog(directory)
    for problem in catalog.problems:
        err.print(str(problem), markup=False)
    if catalog.problems:
        err.print(f"{len(catalog.problems)} problem(s) in {directory}")
        raise typer.Exit(1)
    out.print(f"OK: {len(catalog.runbooks)} runbooks valid"
              + (", policy.yaml valid" if (directory / "policy.yaml").exists() else ""))


@app.command("schema")
def runbooks_schema() -> None:
    """Print the runbook JSON Schema (for editors and CI)."""
    from watchkeeper.execute.runbook import json_schema

    print(orjson.dumps(json_schema(), option=orjson.OPT_INDENT_2).decode())


@app.command("list")
def runbooks_list(directory: RunbooksDir = None) -> None:
    """Runbooks with their autonomy, risk, shadow evidence and breaker state."""
    with service(directory) as wk:
        evidence = wk.governance.evidence()
        runbooks = list(wk.governance.catalog.runbooks.values())
        from watchkeeper.portfolio import Portfolio

        effective = Portfolio.of(wk).effective_autonomy()  # its use cases' stages may lower it
    if not runbooks:
        err.print("no runbooks configured: put runbook YAML files in a directory and name it with "
                  "'runbooks_dir:' in the settings, WATCHKEEPER_RUNBOOKS_DIR or --dir (examples: "
                  "examples/runbooks/; check them with 'watchkeeper runbooks validate DIR')", soft_wrap=True)
        return
    table = make_table("id", "autonomy", "risk", "shadow", "breaker", "title")
    for rb in runbooks:
        e = evidence[rb.id]
        precision = "n/a" if e["shadow_precision"] is None else f"{e['shadow_precision']:.0%}"
        level = effective.get(rb.id, rb.autonomy.value)
        autonomy = level if level == rb.autonomy.value else f"{level} (file: {rb.autonomy.value})"
        table.add_row(rb.id, autonomy, rb.risk.value, f"{e['agreed']}/{e['scored']} {precision}",
                      "OPEN" if e["breaker_open"] else "closed", rb.title)
    out.print(table)


@app.command("show")
def runbooks_show(runbook_id: str, directory: RunbooksDir = None) -> None:
    """One runbook as loaded, with its evidence."""
    with service(directory) as wk:
        rb = wk.governance.runbook(runbook_id)
        evidence = wk.governance.evidence()[runbook_id]
    print(dumps({**rb.model_dump(mode="json", by_alias=True, exclude_none=True), "evidence": evidence}))


@app.command("run")
def runbooks_run(
    runbook_id: str,
    incident: Annotated[int, typer.Option(help="Incident to act on")],
    dry_run: Annotated[bool, typer.Option(help="Show the rendered steps; run nothing")] = False,
    directory: RunbooksDir = None,
) -> None:
    """Run a runbook for an incident now (or ask for approval when its level or risk needs it)."""
    with service(directory) as wk:
        gov = wk.governance
        proposed = gov.propose_manual(runbook_id, incident)
        if dry_run:
            print(dumps({"params": proposed.params, "plan": gov.plan(proposed.runbook, proposed.params, incident)}))
            return
        result = gov.run_manual(runbook_id, incident, actor())
        if "approval_id" in result:
            out.print(f"approval {result['approval_id']} requested: another approver must run "
                      f"'watchkeeper approvals approve {result['approval_id']}'")
            return
        gov.work()
        with wk.db.read() as conn:
            from watchkeeper.storage import governance as gov_store

            run = gov_store.action(conn, result["action_id"])
    out.print(f"action {run['id']}: {run['status']} (verification {run['verification']})")
    for step in (run["result"] or {}).get("steps", []):
        out.print(f"  {step['phase']:8} {step['name']}: {'ok' if step['ok'] else 'FAILED'} — {step['detail']}")
    if run["status"] != "succeeded":
        raise typer.Exit(1)


@app.command("enable")
def runbooks_enable(runbook_id: str, directory: RunbooksDir = None) -> None:
    """Close a runbook's circuit breaker after a human has looked into its failures."""
    with service(directory) as wk:
        wk.governance.enable(runbook_id, actor())
    out.print(f"runbook {runbook_id}: breaker closed")
