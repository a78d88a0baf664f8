"""``watchkeeper usecases | gates | report | assess | models``: the AIOps portfolio from the command line.

One ``typer.Typer`` (``app``) holding the groups, registered in the main CLI with one
``app.add_typer(value_cli.app)`` line. The commands work on the database (where ``serve`` runs),
like ``runbooks`` and ``approvals``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import orjson
import typer
import yaml
from pydantic import ValidationError
from rich.console import Console

from watchkeeper.errors import InputError, WatchkeeperError
from watchkeeper.portfolio import Portfolio
from watchkeeper.value.usecase import UseCase
from watchkeeper.yamlfile import load

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

app = typer.Typer(no_args_is_help=True)
usecases_app = typer.Typer(no_args_is_help=True, help="The AIOps use-case portfolio: owners, criteria, stages.")
gates_app = typer.Typer(no_args_is_help=True, help="Stage gates: evaluate, propose, approve (four eyes).")
app.add_typer(usecases_app, name="usecases")
app.add_typer(gates_app, name="gates")
models_app = typer.Typer(no_args_is_help=True, help="Model registry: versions, scores, drift.")
app.add_typer(models_app, name="models")


def _common() -> ModuleType:
    """The main CLI's shared helpers (settings, the service, who acts), imported when a command
    runs: the main CLI package imports this module to register it."""
    return importlib.import_module("watchkeeper.cli.common")


def _portfolio(wk: Any) -> Portfolio:
    return Portfolio.of(wk)


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS | orjson.OPT_INDENT_2).decode()


#: Columns of free text: the only ones that wrap (ids and states stay whole, as elsewhere in the CLI).
_WRAP = frozenset({"title", "criterion", "runbooks", "services", "held out", "in sample", "registered"})


def _table(*headers: str) -> Any:
    from rich import box
    from rich.table import Column, Table

    columns = [Column(h, no_wrap=h not in _WRAP, overflow="fold") for h in headers]
    return Table(*columns, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 2, 0, 0), collapse_padding=True)


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
    with _common().service() as wk:
        cases = _portfolio(wk).cases()
    if as_json:
        out.print(_dumps(cases), markup=False, soft_wrap=True)
        return
    table = _table("id", "stage", "title", "runbooks")
    for c in cases:
        table.add_row(c["id"], f"{c['stage']} v{c['version']}", c["title"] or "", ", ".join(c["runbooks"]))
    out.print(table)
    if not cases:
        err.print("no use cases yet: 'watchkeeper usecases apply FILE' (see docs/value.md)")


@usecases_app.command("show")
def usecases_show(case_id: str) -> None:
    """One use case as JSON: its document, versions, proposals, and each runbook's declared and
    effective autonomy."""
    with _common().service() as wk:
        out.print(_dumps(_portfolio(wk).show(case_id)), markup=False, soft_wrap=True)


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
    common = _common()
    with common.service() as wk:
        shown = _portfolio(wk).apply(case, common.actor(), new_version=new_version, reason=reason)
    out.print(f"use case {shown['id']}: version {shown['version']}, stage {shown['stage']}")
    for problem in shown["pilot_problems"]:
        err.print(f"note: before its pilot: {problem}")


@usecases_app.command("propose")
def usecases_propose(case_id: str) -> None:
    """Ask for the use case's next stage: a proposal an approver (not you) decides on, or exit 2
    with what is missing."""
    common = _common()
    with common.service() as wk:
        found = _portfolio(wk).propose(case_id, common.actor())
    out.print(f"gate proposal {found['id']}: {found['use_case_id']} {found['from_stage']} → {found['to_stage']}; "
              f"an approver runs 'watchkeeper gates approve {found['id']}'")


@usecases_app.command("rank")
def usecases_rank(as_json: Annotated[bool, typer.Option("--json", help="JSON")] = False) -> None:
    """The prioritization matrix: quick wins, strategic projects, future consideration (weights:
    the value_weights setting; data readiness measured from what Watchkeeper holds), duplicates."""
    common = _common()
    with common.service() as wk:
        found = Portfolio.of(wk).priorities(common.settings().value_weights)
    if as_json:
        out.print(_dumps(found), markup=False, soft_wrap=True)
        return
    table = _table("id", "score", "category", "ICDARF", "data")
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
    common = _common()
    with common.service() as wk:
        found = _portfolio(wk).evaluate(case_id, apply=apply, actor=common.actor())
    docs = [e.as_dict() for e in found]
    if as_json:
        out.print(_dumps(docs), markup=False, soft_wrap=True)
        return
    for d in docs:
        out.print(f"[bold]{d['use_case']}[/bold]: {d['stage']} → {d['move']} {d['to']} ({d['reason']}: {d['text']})")
        table = _table("criterion", "value", "samples", "result")
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
    with _common().service() as wk:
        found = _portfolio(wk).proposals(None if status == "all" else status)
    if as_json:
        out.print(_dumps(found), markup=False, soft_wrap=True)
        return
    table = _table("id", "use case", "from", "to", "status", "proposed by", "decided by")
    for p in found:
        table.add_row(str(p["id"]), p["use_case_id"], p["from_stage"], p["to_stage"], p["status"],
                      p["proposed_by"], p["decided_by"] or "")
    out.print(table)


def _vote(proposal_id: int, approve: bool, comment: str, token: str | None) -> None:
    common = _common()
    with common.service() as wk:
        who = common.approver(wk, token)
        found = _portfolio(wk).vote(proposal_id, who, approve, comment)
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


# -- report -------------------------------------------------------------------------------------
@app.command("report")
def report(
    out_dir: Annotated[Path, typer.Option("--out", help="directory for report.html, report.pdf, report.json")],
    itsm: Annotated[Path | None, typer.Option(
        help="baseline: an ITSM CSV export (a ServiceNow incident event log, or one row per incident)")] = None,
    baseline_from: Annotated[str | None, typer.Option(
        help="baseline instead: Watchkeeper's own incidents from this time (ISO 8601) ...")] = None,
    baseline_to: Annotated[str | None, typer.Option(help="... to this time")] = None,
    assumptions: Annotated[Path | None, typer.Option(help="YAML file overriding the ROI assumptions")] = None,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="print the PDF with headless Chromium")] = True,
) -> None:
    """The executive report (HTML with charts, and PDF): the portfolio, the baseline, ROI with every
    input's source, payback, sensitivity; one page per use case."""
    from watchkeeper.portfolio import report_figures
    from watchkeeper.value.report import render

    assumed = _assumptions(assumptions)
    common = _common()
    with common.service() as wk:
        portfolio = Portfolio.of(wk)
        if itsm is not None:
            if baseline_from or baseline_to:
                raise InputError("give either --itsm or --baseline-from/--baseline-to, not both")
            imported, source = _read_itsm(itsm), itsm.name
        else:
            imported, source = _own_baseline(portfolio, baseline_from, baseline_to)
        figures = report_figures(portfolio, imported, source, assumed)
        generated = wk.clock()
    page = render(generated_at=generated, base=figures["baseline"], roi=figures["roi"], rows=figures["sensitivity"],
                  currency=figures["currency"], portfolio=figures["priorities"], cases=figures["cases"],
                  skipped=figures["skipped"], itsm_rows=figures["rows"])
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / "report.html"
    html_path.write_text(page, encoding="utf-8")
    summary = {"baseline": {k: v for k, v in vars_of(figures["baseline"]).items()}, "roi": figures["roi"].as_dict(),
               "sensitivity": [r.as_dict() for r in figures["sensitivity"]],
               "use_cases": [{"id": c["doc"]["id"], "stage": c["stage"], "roi": c["roi"].as_dict(),
                              "levers": c["levers"]} for c in figures["cases"]]}
    (out_dir / "report.json").write_text(_dumps(summary), encoding="utf-8")
    out.print(f"wrote {html_path}")
    if pdf:
        pdf_path = out_dir / "report.pdf"
        print_pdf(html_path, pdf_path)
        out.print(f"wrote {pdf_path}")


def vars_of(value: Any) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(value)


def _assumptions(path: Path | None) -> Any:
    from watchkeeper.value.roi import Assumptions

    if path is None:
        return Assumptions()
    try:
        doc = load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    try:
        return Assumptions.model_validate(doc.data or {})
    except ValidationError as exc:
        lines = [f"{path}:{doc.where(tuple(e['loc']))[0]}: {doc.where(tuple(e['loc']))[1]}: {e['msg']}"
                 for e in exc.errors()]
        raise InputError("\n".join(lines)) from None


def _read_itsm(path: Path) -> Any:
    from watchkeeper.value.roi import read_itsm_csv

    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    try:
        return read_itsm_csv(text)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def _own_baseline(portfolio: Portfolio, start: str | None, end: str | None) -> tuple[Any, str]:
    from datetime import UTC, datetime

    from watchkeeper.storage import value as store
    from watchkeeper.value.roi import ItsmImport, ItsmIncident

    if not (start and end):
        raise InputError("a baseline is needed: --itsm FILE (an ITSM export), or --baseline-from and --baseline-to "
                         "(Watchkeeper's own incidents before it acted)")
    try:
        since, until = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (start, end))
    except ValueError as exc:
        raise InputError(f"--baseline-from/--baseline-to: {exc} (ISO 8601, e.g. 2026-10-01T00:00:00Z)") from None
    since, until = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (since, until))
    if until <= since:
        raise InputError("--baseline-to must be after --baseline-from")
    with portfolio.db.read() as conn:
        times = store.incident_times(conn, [], since, until)
    found = tuple(ItsmIncident(str(n), "", t.opened_at, t.acknowledged_at, t.resolved_at) for n, t in enumerate(times))
    if not found:
        raise InputError(f"Watchkeeper holds no incident opened between {start} and {end}")
    return ItsmImport(found, len(found), "watchkeeper"), f"Watchkeeper incidents {start} to {end}"


def print_pdf(html_path: Path, pdf_path: Path) -> None:
    """Print the page with headless Chromium (Debian's ``chromium``)."""
    import shutil
    import subprocess
    import tempfile

    browser = next((found for name in ("chromium", "chromium-browser", "google-chrome")
                    if (found := shutil.which(name))), None)
    if browser is None:
        raise WatchkeeperError(
            f"no PDF: Chromium is not installed (apt-get install chromium); the HTML is at {html_path}")
    with tempfile.TemporaryDirectory(prefix="wk-report-") as profile:
        argv = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-pdf-header-footer", f"--user-data-dir={profile}", f"--print-to-pdf={pdf_path.resolve()}",
                html_path.resolve().as_uri()]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
        except subprocess.TimeoutExpired:
            raise WatchkeeperError(f"no PDF: Chromium took more than 180 s; the HTML is at {html_path}") from None
    if done.returncode != 0 or not pdf_path.exists() or pdf_path.stat().st_size == 0:
        raise WatchkeeperError(f"no PDF: Chromium exited {done.returncode}: {done.stderr.strip()[-300:]}; "
                               f"the HTML is at {html_path}")


# -- assess -------------------------------------------------------------------------------------
@app.command("assess")
def assess_cmd(
    from_file: Annotated[Path | None, typer.Option(
        "--from", help="answers from a YAML file ({question_id: level 1-5}) instead of asking")] = None,
    questionnaire: Annotated[Path | None, typer.Option(help="your own questionnaire (YAML; default: built in)")] = None,
    save: Annotated[Path | None, typer.Option(help="write the answers given to this YAML file")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON")] = False,
) -> None:
    """The AIOps maturity assessment: level 1-5 per dimension and a phased roadmap naming the next
    use cases. What Watchkeeper measures is pre-filled; the rest is asked (or read --from a file)."""
    from watchkeeper.value.maturity import LEVELS, Questionnaire, assess, default_questionnaire, prefill

    q = _load_model(questionnaire, Questionnaire) if questionnaire else default_questionnaire()
    common = _common()
    with common.service() as wk:
        portfolio = Portfolio.of(wk)
        measures: dict[str, float | None] = {**portfolio.maturity_measures(),
                                             "audit": 1.0 if wk.verify_audit().ok else 0.0}
        cases = portfolio.roadmap_cases()
    measured = prefill(measures)
    answers: dict[str, int] = {}
    if from_file is not None:
        answers = _answers(from_file, {x.id for x in q.questions})
    else:
        from rich.prompt import IntPrompt

        for question in q.questions:
            out.print(f"\n[bold]{question.dimension.value}[/bold]: {question.text}", highlight=False)
            for n, text in enumerate(question.answers, start=1):
                out.print(f"  {n}. {text}", markup=False)
            default = measured[question.id].level if question.id in measured else None
            if default is not None:
                out.print(f"  measured: {measured[question.id].evidence} → {default}", markup=False)
            choices = ["1", "2", "3", "4", "5"]
            answers[question.id] = (IntPrompt.ask("  level", console=out, choices=choices, default=default)
                                    if default is not None else IntPrompt.ask("  level", console=out, choices=choices))
    try:
        found = assess(q, answers, measured, cases)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if save is not None:
        save.write_text(yaml.safe_dump(found.answers, sort_keys=False), encoding="utf-8")
    if as_json:
        out.print(_dumps(found.as_dict()), markup=False, soft_wrap=True)
        return
    table = _table("dimension", "level", "", "measured")
    for dim, level in found.levels.items():
        evidence = "; ".join(m.evidence for qid, m in measured.items()
                             if any(x.id == qid and x.dimension is dim for x in q.questions))
        table.add_row(dim.value, str(level or "-"), LEVELS.get(level or 0, "not assessed"), evidence)
    out.print(table)
    for step in found.roadmap:
        mark = "done" if step["done"] else "NOW" if step["now"] else "later"
        cases_text = ", ".join(step["next_use_cases"]) or "no use case yet: 'watchkeeper usecases apply FILE'"
        out.print(f"{mark:>5}  {step['phase']}: {step['goal']} — next: {cases_text}", markup=False)


def _load_model(path: Path, model: Any) -> Any:
    try:
        doc = load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise InputError("\n".join(f"{path}:{doc.where(tuple(e['loc']))[0]}: {doc.where(tuple(e['loc']))[1]}: "
                                   f"{e['msg']}" for e in exc.errors())) from None


def _answers(path: Path, known: set[str]) -> dict[str, int]:
    try:
        doc = load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    data = doc.data or {}
    if isinstance(data, dict) and isinstance(data.get("answers"), dict):
        data = data["answers"]
    if not isinstance(data, dict):
        raise InputError(f"{path}:1: answers are a mapping of question id to a level 1-5")
    found = {}
    for key, value in data.items():
        line = doc.line((key,)) if "answers" not in (doc.data or {}) else doc.line(("answers", key))
        if key not in known:
            raise InputError(f"{path}:{line}: {key!r} is not a question; known: {', '.join(sorted(known))}")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
            raise InputError(f"{path}:{line}: {key}: a level is a whole number 1 to 5, not {value!r}")
        found[str(key)] = value
    return found


# -- models -------------------------------------------------------------------------------------
def _registry(wk: Any) -> Any:
    from watchkeeper.model_registry import Registry

    return Registry(wk.db, wk.clock)


@models_app.command("list")
def models_list(kind: Annotated[str | None, typer.Option(help="detector | template_miner | correlation | rca")] = None,
                as_json: Annotated[bool, typer.Option("--json", help="JSON")] = False) -> None:
    """Registered model versions with their training window and scores."""
    with _common().service() as wk:
        found = _registry(wk).versions(kind)
    if as_json:
        out.print(_dumps(found), markup=False, soft_wrap=True)
        return
    table = _table("model", "version", "trained on", "held out", "in sample", "registered")
    for m in found:
        trained = m["train_start"] and m["train_end"]
        window = f"{m['train_start']:%Y-%m-%d} to {m['train_end']:%Y-%m-%d}" if trained else "-"
        scores = m["scores"] or {}
        table.add_row(f"{m['kind']}:{m['name']}", m["version"], window,
                      ", ".join(f"{k} {v:.3g}" for k, v in (scores.get("held_out") or {}).items()) or "-",
                      ", ".join(f"{k} {v:.3g}" for k, v in (scores.get("in_sample") or {}).items()) or "-",
                      f"{m['registered_at']:%Y-%m-%d} by {m['registered_by']}")
    out.print(table)


@models_app.command("register")
def models_register(file: Path) -> None:
    """Register a model version from a YAML file (kind, name, version, params, train_start, train_end,
    scores: {held_out, in_sample}, baseline: [a reference sample of its output scores])."""
    from watchkeeper.value.drift import ModelVersion

    model = _load_model(file, ModelVersion)
    common = _common()
    with common.service() as wk:
        found = _registry(wk).register(model, common.actor())
    out.print(f"model {found['kind']}:{found['name']} version {found['version']} registered "
              f"(reference sample of {found['baseline_size']} scores)")


@models_app.command("drift")
def models_drift(
    model: Annotated[str, typer.Argument(help="KIND:NAME, e.g. detector:robust")],
    signal: Annotated[str, typer.Option(help="scores | alert_rate | anomaly_rate")] = "scores",
    scores: Annotated[Path | None, typer.Option(help="recent scores: one number per line, or a JSON list")] = None,
    version: Annotated[str | None, typer.Option(help="default: the latest registered")] = None,
    days: Annotated[float, typer.Option(help="the recent window of a rate check")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="JSON")] = False,
) -> None:
    """Check a model for drift (PSI and KS); a drift is recorded as an audited drift event, which the
    gates of the use cases naming the model count. Exit 1 when it drifted."""
    from watchkeeper.model_registry import Signal

    kind, sep, name = model.partition(":")
    if not sep:
        raise InputError(f"{model!r}: name the model as KIND:NAME, e.g. detector:robust")
    try:
        chosen = Signal(signal)
    except ValueError:
        raise InputError(f"--signal {signal!r}: use scores, alert_rate or anomaly_rate") from None
    values = _scores(scores) if scores is not None else []
    common = _common()
    with common.service() as wk:
        found = _registry(wk).drift(kind, name, signal=chosen, scores=values, version=version, days=days,
                                    actor=common.actor())
    if as_json:
        out.print(_dumps(found), markup=False, soft_wrap=True)
    else:
        psi = "-" if found["psi"] is None else f"{found['psi']:.3f}"
        ks = "-" if found["ks"] is None else f"{found['ks']:.3f} (critical {found['ks_critical']:.3f})"
        out.print(f"{found['model']} {found['version']} {found['signal']}: {found['reason']}; PSI {psi}, KS {ks}; "
                  f"{found['reference']} reference and {found['current']} current samples", markup=False)
    if found["drifted"]:
        raise typer.Exit(1)


def _scores(path: Path) -> list[float]:
    import math

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    try:
        if text.lstrip().startswith("["):
            values = orjson.loads(text)
            if not isinstance(values, list):
                raise ValueError("not a list")
        else:
            values = [line for line in text.splitlines() if line.strip()]
        found = [float(v) for v in values]
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise InputError(f"{path}: scores are numbers, one per line or a JSON list ({exc})") from None
    if not all(math.isfinite(v) for v in found):
        raise InputError(f"{path}: scores must be finite numbers")
    return found
