"""``watchkeeper report`` (the executive report: ROI on a baseline, HTML and PDF) and
``watchkeeper assess`` (the maturity assessment and roadmap)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError

from watchkeeper.errors import InputError, WatchkeeperError
from watchkeeper.portfolio import Portfolio
from watchkeeper.value_cli_common import cli_common, dumps, load_model, make_table, out
from watchkeeper.yamlfile import load

app = typer.Typer(no_args_is_help=True)


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
    common = cli_common()
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
    (out_dir / "report.json").write_text(dumps(summary), encoding="utf-8")
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

    q = load_model(questionnaire, Questionnaire) if questionnaire else default_questionnaire()
    common = cli_common()
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
        out.print(dumps(found.as_dict()), markup=False, soft_wrap=True)
        return
    table = make_table("dimension", "level", "", "measured")
    for dim, level in found.levels.items():
        evidence = "; ".join(m.evidence for qid, m in measured.items()
                             if any(x.id == qid and x.dimension is dim for x in q.questions))
        table.add_row(dim.value, str(level or "-"), LEVELS.get(level or 0, "not assessed"), evidence)
    out.print(table)
    for step in found.roadmap:
        mark = "done" if step["done"] else "NOW" if step["now"] else "later"
        cases_text = ", ".join(step["next_use_cases"]) or "no use case yet: 'watchkeeper usecases apply FILE'"
        out.print(f"{mark:>5}  {step['phase']}: {step['goal']} — next: {cases_text}", markup=False)


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
