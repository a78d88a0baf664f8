"""``watchkeeper logs …``: log files through the template miner."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import IO, Annotated

import orjson
import typer
import yaml
from pydantic import ValidationError
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from watchkeeper.cli.common import err, make_table, out
from watchkeeper.errors import ConfigError, InputError
from watchkeeper.logs.formats import HeaderFormat
from watchkeeper.logs.miner import MinerConfig, TemplateMiner

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Logs: templates of log lines.")

#: Files at least this big show a progress bar (on a terminal).
PROGRESS_BYTES = 8 * 1024 * 1024


def load_miner_config(path: Path) -> MinerConfig:
    """A miner configuration from a YAML file (the keys of ``MinerConfig``)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read the miner configuration {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    try:
        return MinerConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "(top)"
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None


def _write_parsed(scratch: IO[bytes], output: Path, templates: dict[str, str]) -> None:
    scratch.seek(0)
    try:
        with output.open("wb") as sink:
            for number, cid in enumerate(scratch, start=1):
                tid = cid.rstrip(b"\n").decode()
                sink.write(orjson.dumps({"line": number, "template_id": tid, "template": templates.get(tid, "")}))
                sink.write(b"\n")
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror}") from None


@app.command("templates")
def templates(
    file: Annotated[Path, typer.Argument(help="A log file, one message per line")],
    output: Annotated[Path | None, typer.Option(
        "--out", help="Write one JSON object per input line: line (1-based), template_id, template")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="'raw' (the whole line is the message), 'syslog' (strip 'Mon DD hh:mm:ss host "
                         "prog[pid]: ') or 'loghub:<System>' (strip that loghub system's header)")] = "raw",
    config: Annotated[Path | None, typer.Option(help="Miner configuration (YAML: masking, similarity …)")] = None,
    top: Annotated[int, typer.Option(min=0, help="Templates to list, most frequent first")] = 20,
) -> None:
    """Mine the templates of a log file: a summary (lines, templates, lines/s) and the top templates.

    With --out, each line's object carries the final text of its template (a template generalises as
    lines arrive; its id does not change)."""
    try:
        header = HeaderFormat.parse(fmt)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if not file.is_file():
        raise InputError(f"no such log file: {file}")
    miner = TemplateMiner(load_miner_config(config) if config is not None else None)
    size = file.stat().st_size
    if output is not None and output.parent and not output.parent.is_dir():
        raise InputError(f"cannot write {output}: no such directory {output.parent}")
    # ids go to a scratch file while mining; the output then carries each id's final template
    scratch: IO[bytes] | None = tempfile.TemporaryFile() if output is not None else None  # noqa: SIM115
    last_template: dict[str, str] = {}
    lines = 0
    elapsed = 0.0
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(),
                        console=err, transient=True, disable=size < PROGRESS_BYTES)
    try:
        with file.open("rb") as handle, progress:
            task = progress.add_task(file.name, total=size)
            add, content = miner.add, header.content
            for raw in handle:
                lines += 1
                text = raw.decode("utf-8", errors="replace")
                start = time.perf_counter()
                parsed = add(content(text))
                elapsed += time.perf_counter() - start
                if scratch is not None:
                    if parsed.new:
                        last_template[parsed.template_id] = parsed.template
                    scratch.write(parsed.template_id.encode() + b"\n")
                if lines % 4096 == 0:
                    progress.update(task, completed=handle.tell())
        if scratch is not None and output is not None:
            _write_parsed(scratch, output, last_template)
    finally:
        if scratch is not None:
            scratch.close()
    kept = miner.templates()
    summary = make_table("lines", "templates", "lines/s (mining)")
    rate = f"{lines / elapsed:,.0f}" if elapsed > 0 else "-"
    summary.add_row(f"{lines:,}", f"{len(kept):,}", rate)
    out.print(summary)
    if top and kept:
        table = make_table("id", "count", "template")
        for cid, template, count in kept[:top]:
            table.add_row(cid, f"{count:,}", template)
        out.print(table)
    if output is not None:
        out.print(f"wrote {lines:,} lines to {output}")
