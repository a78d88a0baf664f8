"""``watchkeeper rca``: refit the confidence model of ranked causes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from watchkeeper.cli.common import (
    local_only,
    out,
    service,
    settings,
)
from watchkeeper.errors import WatchkeeperError

app = typer.Typer(no_args_is_help=True, help="Root-cause ranking: refit its confidence model.")


@app.command("calibrate")
def rca_calibrate(
    out_file: Annotated[Path | None, typer.Option("--out", help="where to write the model (default: the "
                                                                "settings' rca.calibration)")] = None,
) -> None:
    """Refit the confidence of ranked causes on your resolved incidents with a recorded true cause
    (at least 20); serve reads the file that rca.calibration names."""
    import json

    from watchkeeper.ranking import calibrate

    local_only("rca calibrate")
    target = out_file or settings().rca.calibration
    if target is None:
        raise WatchkeeperError("say where to write the model: --out FILE, or rca.calibration in the settings")
    with service() as wk:
        fitted = calibrate(wk)
    try:
        target.write_text(json.dumps(fitted.model, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise WatchkeeperError(f"cannot write {target}: {exc}") from None
    out.print(f"fitted on {fitted.incidents} incidents (top-1 right in {100 * fitted.top1:.0f} %): "
              f"intercept {fitted.model['intercept']:g}, w_top {fitted.model['w_top']:g}, "
              f"w_margin {fitted.model['w_margin']:g}; written to {target}")
