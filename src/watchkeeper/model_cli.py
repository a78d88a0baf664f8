"""``watchkeeper models``: the model registry (versions, parameters, training windows, scores) and drift."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from watchkeeper.errors import InputError
from watchkeeper.value_cli_common import backend, cli_common, dumps, load_model, make_table, out

app = typer.Typer(no_args_is_help=True, help="Model registry: versions, scores, drift.")


@app.command("list")
def models_list(kind: Annotated[str | None, typer.Option(help="detector | template_miner | correlation | rca")] = None,
                as_json: Annotated[bool, typer.Option("--json", help="JSON")] = False) -> None:
    """Registered model versions with their training window and scores."""
    with backend() as b:
        found = b.registry.versions(kind)
    if as_json:
        out.print(dumps(found), markup=False, soft_wrap=True)
        return
    table = make_table("model", "version", "trained on", "held out", "in sample", "registered")
    for m in found:
        trained = m["train_start"] and m["train_end"]
        window = f"{m['train_start']:%Y-%m-%d} to {m['train_end']:%Y-%m-%d}" if trained else "-"
        scores = m["scores"] or {}
        table.add_row(f"{m['kind']}:{m['name']}", m["version"], window,
                      ", ".join(f"{k} {v:.3g}" for k, v in (scores.get("held_out") or {}).items()) or "-",
                      ", ".join(f"{k} {v:.3g}" for k, v in (scores.get("in_sample") or {}).items()) or "-",
                      f"{m['registered_at']:%Y-%m-%d} by {m['registered_by']}")
    out.print(table)


@app.command("register")
def models_register(file: Path) -> None:
    """Register a model version from a YAML file (kind, name, version, params, train_start, train_end,
    scores: {held_out, in_sample}, baseline: [a reference sample of its output scores])."""
    from watchkeeper.value.drift import ModelVersion

    model = load_model(file, ModelVersion)
    common = cli_common()
    with backend() as b:
        found = b.registry.register(model, common.actor())
    out.print(f"model {found['kind']}:{found['name']} version {found['version']} registered "
              f"(reference sample of {found['baseline_size']} scores)")


@app.command("drift")
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
    common = cli_common()
    with backend() as b:
        found = b.registry.drift(kind, name, signal=chosen, scores=values, version=version, days=days,
                                    actor=common.actor())
    if as_json:
        out.print(dumps(found), markup=False, soft_wrap=True)
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
