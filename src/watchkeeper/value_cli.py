"""``watchkeeper usecases | gates | report | assess | models``: the AIOps portfolio from the command line.

One ``typer.Typer`` (``app``) holding the groups, registered in the main CLI with one
``app.add_typer(value_cli.app)`` line. The commands work on the database (where ``serve`` runs),
like ``runbooks`` and ``approvals``, or, with ``--url`` and a token, through a server's API
(``usecases``, ``gates`` and ``models``; :mod:`watchkeeper.value_remote`). ``report`` and ``assess`` live in
:mod:`watchkeeper.value_report_cli`, ``models`` in :mod:`watchkeeper.model_cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from pydantic import ValidationError

from watchkeeper import model_cli, value_report_cli
from watchkeeper.errors import InputError, WatchkeeperError
from watchkeeper.value.usecase import UseCase
from watchkeeper.value_cli_common import backend, cli_common, dumps, err, make_table, out
from watchkeeper.yamlfile import load

app = typer.Typer(no_args_is_help=True)
usecases_app = typer.Typer(no_args_is_help=True, help="The AIOps use-case portfolio: owners, criteria, stages.")
gates_app = typer.Typer(no_args_is_help=True, help="Stage gates: evaluate, propose, approve (four eyes).")
app.add_typer(usecases_app, name="usecases")
app.add_typer(gates_app, name="gates")
app.add_typer(model_cli.app, name="models")
app.registered_commands.extend(value_report_cli.app.registered_commands)  # report, assess


def read_use_case(path: Path) -> UseCase:
    """A use case file, or an :class:`InputError` with every problem as ``file:line: field: message``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    try:
        doc = load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(f"{path}:{mark.line + 1 if mark else 1}: invalid YAML: {exc}") from None
    if not isinstance(doc.data, dict):
        raise InputError(f"{path}:1: a use case is a mapping (id, title, owners, success_criteria, …)")
    try:
        return UseCase.model_validate(doc.data)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            line, where = doc.where(tuple(e["loc"]))
            lines.append(f"{path}:{line}: {where}: {e['msg']}")
        raise InputError("\n".join(lines)) from None


# -- usecases -----------------------------------------------------------------------------------
@usecases_app.command("list")
def usecases_list(as_json: Annotated[bool, typer.Option("--json", help="JSON")] = False) -> None:
    """The portfolio: stage, owners, runbooks and services of each use case."""
    with backend() as b:
        cases = b.portfolio.cases()
    if as_json:
        out.print(dumps(cases), markup=False, soft_wrap=True)
        return
    table = make_table("id", "stage", "title", "runbooks")
    for c in cases:
        table.add_row(c["id"], f"{c['stage']} v{c['version']}", c["title"] or "", ", ".join(c["runbooks"]))
    out.print(table)
    if not cases:
        err.print("no use cases yet: 'watchkeeper usecases apply FILE' (see docs/value.md)")


@usecases_app.command("show")
def usecases_show(case_id: str) -> None:
    """One use case as JSON: its document, versions, proposals, and each runbook's declared and
    effective autonomy."""
    with backend() as b:
        out.print(dumps(b.portfolio.show(case_id)), markup=False, soft_wrap=True)


@usecases_app.command("apply")
def usecases_apply(
    file: Path,
    new_version: Annotated[bool, typer.Option(
        "--new-version", help="change criteria frozen since the pilot: a new, audited version")] = False,
    reason: Annotated[str, typer.Option(help="why (kept with the version in the audit log)")] = "",
) -> None:
    """Create or update a use case from a YAML file (errors as file:line). Its stage moves only
    through gates; its criteria are frozen once its pilot starts."""
    case = read_use_case(file)
    common = cli_common()
    with backend() as b:
        shown = b.portfolio.apply(case, common.actor(), new_version=new_version, reason=reason)
    out.print(f"use case {shown['id']}: version {shown['version']}, stage {shown['stage']}")
    for problem in shown["pilot_problems"]:
        err.print(f"note: before its pilot: {problem}")


@usecases_app.command("propose")
def usecases_propose(case_id: str) -> None:
    """Ask for the use case's next stage: a proposal an approver (not you) decides on, or exit 2
    with what is missing."""
    common = cli_common()
    with backend() as b:
        found = b.portfolio.propose(case_id, common.actor())
    out.print(f"gate proposal {found['id']}: {found['use_case_id']} {found['from_stage']} → {found['to_stage']}; "
              f"an approver runs 'watchkeeper gates approve {found['id']}'")


@usecases_app.command("rank")
def usecases_rank(as_json: Annotated[bool, typer.Option("--json", help="JSON")] = False) -> None:
    """The prioritization matrix: quick wins, strategic projects, future consideration (weights:
    the value_weights setting; data readiness measured from what Watchkeeper holds), duplicates."""
    common = cli_common()
    with backend() as b:  # through --url: the server's value_weights
        found = b.portfolio.priorities(None if b.remote else common.settings().value_weights)
    if as_json:
        out.print(dumps(found), markup=False, soft_wrap=True)
        return
    table = make_table("id", "score", "category", "ICDARF", "data")
    for s in found["ranked"]:
        letters = "".join((v or "?")[0].upper() for v in s["levels"].values())
        data = s["data_readiness"]
        measured = f"{data['completeness']:.0%}" if "completeness" in data else "stated"
        table.add_row(s["id"], f"{s['score']:.0f}", s["category"].replace("_", " "), letters, measured)
    out.print(table)
    out.print("ICDARF: impact, complexity, data readiness, alignment, risk, strategic fit; H/M/L, high is "
              "favourable; data: the share of the needed signals Watchkeeper holds (docs/value.md)", markup=False)
    for dup in found["duplicates"]:
        out.print(f"duplicate: {dup['text']}", markup=False, soft_wrap=True)


# -- gates --------------------------------------------------------------------------------------
@gates_app.command("evaluate")
def gates_evaluate(
    case_id: Annotated[str | None, typer.Argument(help="one use case (default: all)")] = None,
    apply: Annotated[bool, typer.Option(
        "--apply", help="record promotions as proposals for an approver; apply demotions at once")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON")] = False,
) -> None:
    """Each use case's KPIs over its window against its criteria, and the move its gate makes."""
    common = cli_common()
    with backend() as b:
        docs = b.evaluate(case_id, apply=apply, actor=common.actor())
    if as_json:
        out.print(dumps(docs), markup=False, soft_wrap=True)
        return
    for d in docs:
        out.print(f"[bold]{d['use_case']}[/bold]: {d['stage']} → {d['move']} {d['to']} ({d['reason']}: {d['text']})")
        table = make_table("criterion", "value", "samples", "result")
        for c in d["criteria"]:
            value = "-" if c["value"] is None else f"{c['value']:.4g}"
            table.add_row(c["text"], value, str(c["samples"]), c["result"])
        if d["criteria"]:
            out.print(table)
        for problem in d["problems"]:
            out.print(f"  - {problem}", markup=False)
        if d["proposal_id"] is not None:
            out.print(f"  proposal {d['proposal_id']}: an approver runs 'watchkeeper gates approve {d['proposal_id']}'")
        if d["applied"]:
            out.print(f"  demoted to {d['to']}: its runbooks' autonomy is lowered")
    if not docs:
        err.print("no use cases yet: 'watchkeeper usecases apply FILE'")


@gates_app.command("list")
def gates_list(
    status: Annotated[str, typer.Option(help="pending | approved | rejected | superseded | all")] = "pending",
    as_json: Annotated[bool, typer.Option("--json", help="JSON")] = False,
) -> None:
    """Gate proposals."""
    if status not in ("pending", "approved", "rejected", "superseded", "all"):
        raise WatchkeeperError(f"--status {status!r}: use pending, approved, rejected, superseded or all")
    with backend() as b:
        found = b.portfolio.proposals(None if status == "all" else status)
    if as_json:
        out.print(dumps(found), markup=False, soft_wrap=True)
        return
    table = make_table("id", "use case", "from", "to", "status", "proposed by", "decided by")
    for p in found:
        table.add_row(str(p["id"]), p["use_case_id"], p["from_stage"], p["to_stage"], p["status"],
                      p["proposed_by"], p["decided_by"] or "")
    out.print(table)


def _vote(proposal_id: int, approve: bool, comment: str, token: str | None) -> None:
    common = cli_common()
    with backend(token) as b:  # through --url the server names the voter: the token's name
        who = common.actor() if b.remote else common.approver(b.wk, token)
        found = b.portfolio.vote(proposal_id, who, approve, comment)
    out.print(f"gate proposal {proposal_id}: {found['status']} ({found['use_case_id']} "
              f"{found['from_stage']} → {found['to_stage']})")


Token = Annotated[str | None, typer.Option(envvar="WATCHKEEPER_TOKEN", help="an approver's token: who votes")]


@gates_app.command("approve")
def gates_approve(proposal_id: int, comment: Annotated[str, typer.Option()] = "", token: Token = None) -> None:
    """Approve a promotion (role approver; not its proposer; one of the use case's approvers)."""
    _vote(proposal_id, True, comment, token)


@gates_app.command("reject")
def gates_reject(proposal_id: int, comment: Annotated[str, typer.Option()] = "", token: Token = None) -> None:
    """Reject a promotion."""
    _vote(proposal_id, False, comment, token)
