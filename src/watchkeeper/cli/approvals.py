"""``watchkeeper approvals``: vote on pending actions (four eyes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from watchkeeper.cli.common import (
    STATE,
    RunbooksDir,
    actor,
    approver,
    backend,
    dumps,
    make_table,
    out,
    service,
    stamp,
)

app = typer.Typer(no_args_is_help=True, help="Approve or reject pending actions.")


@app.command("list")
def approvals_list(
    status: Annotated[str, typer.Option(help="pending | approved | rejected | expired | all")] = "pending",
    as_json: Annotated[bool, typer.Option("--json")] = False, directory: RunbooksDir = None,
) -> None:
    """Approval requests, newest first."""
    if STATE.url is not None:
        with backend() as remote:
            rows = remote.approvals(None if status == "all" else status)
    else:
        with service(directory) as wk:
            rows = wk.governance.approvals(None if status == "all" else status)
    if as_json:
        for row in rows:
            print(dumps(row))
        return
    table = make_table("id", "incident", "runbook", "risk", "status", "requested by", "expires", "votes")
    for r in rows:
        approved = sum(v["approve"] for v in r["votes"])
        table.add_row(str(r["id"]), str(r["incident_id"]), r["runbook_id"], r["risk"], r["status"],
                      r["requested_by"], stamp(r["expires_at"]), f"{approved}/{r['required']}")
    out.print(table)


def _vote(approval_id: int, approve: bool, comment: str, directory: Path | None, token: str | None) -> None:
    if STATE.url is not None:  # the server knows who votes: the token's name, checked for four-eyes
        STATE.token = token or STATE.token
        with backend() as remote:
            result = remote.vote(approval_id, actor(), approve, comment)
    else:  # the database: the token (or cli_users mapping) says who votes, never $USER
        with service(directory) as wk:
            result = wk.governance.vote(approval_id, approver(wk, token), approve, comment)
    out.print(f"approval {approval_id}: {result['status']}"
              + (f"; action {result['action_id']} queued" if "action_id" in result else ""))


VoteToken = Annotated[str | None, typer.Option(
    "--token", help="An approver's API token (default: WATCHKEEPER_TOKEN; or map your unix user in cli_users)")]


@app.command("approve")
def approvals_approve(approval_id: int, comment: str = "", directory: RunbooksDir = None,
                      token: VoteToken = None) -> None:
    """Approve a pending action as an approver (token or cli_users); it then runs on the server's worker."""
    _vote(approval_id, True, comment, directory, token)


@app.command("reject")
def approvals_reject(approval_id: int, comment: str = "", directory: RunbooksDir = None,
                     token: VoteToken = None) -> None:
    """Reject a pending action as an approver (token or cli_users)."""
    _vote(approval_id, False, comment, directory, token)
