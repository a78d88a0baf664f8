"""``watchkeeper eval loghub``: our template miner and drain3, in the same process, on loghub data.

A data set is ``DIR/<System>/<System>_2k.log`` with its ground truth
``<System>_2k.log_structured.csv`` (``--corrected``: ``DIR/corrected_2k/<System>/
<System>_2k.log_structured_corrected.csv``, or the same names under DIR itself). The header of each
line is parsed with the system's loghub ``log_format`` (:mod:`watchkeeper.logs.formats`) and the
message fed to the parser, one line at a time, in file order.

Metrics, as the loghub-2.0 evaluator defines them:

* **GA** (grouping accuracy): the share of messages whose predicted group holds exactly the messages
  of one ground-truth group (ground-truth groups are the distinct ground-truth templates);
* **PA** (parsing accuracy): the share of messages whose predicted template equals the ground truth
  after normalising both (runs of ``<*>`` and blanks collapse; drain3's ``<NUM>``-style masks count
  as ``<*>``);
* **FGA**: the F1 of group precision (correct groups / predicted groups) and recall (correct groups /
  ground-truth groups).

Held out: everything tuned in the miner (masking, similarity) was chosen looking only at the
``TUNED_ON`` systems; the others are reported first and apart.
"""

from __future__ import annotations

import csv
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from watchkeeper.logs.formats import LOGHUB_FORMATS, HeaderFormat
from watchkeeper.logs.miner import MinerConfig, TemplateMiner

#: The systems the miner's configuration was tuned on; every other system is held out.
TUNED_ON: tuple[str, ...] = ("BGL", "HDFS", "Hadoop", "OpenSSH", "Windows")

#: drain3's usual benchmark settings: similarity 0.4, depth 4, and the masking of drain3's example config.
DRAIN3_SIM_TH = 0.4
DRAIN3_DEPTH = 4
DRAIN3_MASKING: tuple[tuple[str, str], ...] = (
    (r"((?<=[^A-Za-z0-9])|^)(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))((?=[^A-Za-z0-9])|$)", "ID"),
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9a-f]{6,} ?){3,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9A-F]{4} ?){4,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
    (r"(?<=executed cmd )(\".+?\")", "CMD"),
)

_NAMED_MASK = re.compile(r"<[A-Z]+>")
_WILDCARDS = re.compile(r"(?:<\*>)+")
_BLANKS = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Dataset:
    system: str
    contents: list[str]
    truth: list[str]


@dataclass(frozen=True, slots=True)
class Score:
    ga: float
    pa: float
    fga: float
    groups: int
    truth_groups: int
    lines_per_s: float


@dataclass(frozen=True, slots=True)
class SystemResult:
    system: str
    lines: int
    held_out: bool
    miner: Score
    drain3: Score


# -- data ---------------------------------------------------------------------------------------------


def _truth_file(root: Path, system: str, corrected: bool) -> Path | None:
    if not corrected:
        candidates = [root / system / f"{system}_2k.log_structured.csv"]
    else:
        name = f"{system}_2k.log_structured_corrected.csv"
        candidates = [root / "corrected_2k" / system / name, root / system / name]
    return next((p for p in candidates if p.is_file()), None)


def systems_in(root: Path, corrected: bool = False) -> list[str]:
    """The systems under ``root`` that have both a log and (the chosen) ground truth."""
    found = []
    for log in sorted(root.glob("*/*_2k.log")):
        system = log.parent.name
        if log.name == f"{system}_2k.log" and _truth_file(root, system, corrected) is not None:
            found.append(system)
    return found


def load(root: Path, system: str, corrected: bool = False) -> Dataset:
    """One system's messages (headers parsed with its loghub format) and ground-truth templates."""
    truth_path = _truth_file(root, system, corrected)
    if truth_path is None:
        raise FileNotFoundError(f"no ground truth for {system} under {root}")
    with truth_path.open(newline="", encoding="utf-8", errors="replace") as handle:
        rows = list(csv.DictReader(handle))
    header = HeaderFormat.loghub(system) if system in LOGHUB_FORMATS else HeaderFormat.raw()
    log_path = root / system / f"{system}_2k.log"
    lines = [ln for ln in log_path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    if len(lines) != len(rows):
        raise ValueError(f"{log_path} has {len(lines)} lines but {truth_path} has {len(rows)} rows")
    return Dataset(system, [header.content(ln) for ln in lines], [row["EventTemplate"] for row in rows])


# -- metrics ------------------------------------------------------------------------------------------


def normalise(template: str) -> str:
    """Templates compared for PA: named masks are wildcards, runs of wildcards and blanks collapse."""
    template = _NAMED_MASK.sub("<*>", template)
    template = _WILDCARDS.sub("<*>", template)
    return _BLANKS.sub(" ", template).strip()


def grouping(truth: Sequence[str], predicted: Sequence[str]) -> tuple[float, float, int, int]:
    """``(GA, FGA, predicted groups, ground-truth groups)``."""
    truth_sizes = Counter(truth)
    members: dict[str, list[int]] = defaultdict(list)
    for i, group in enumerate(predicted):
        members[group].append(i)
    correct_messages = correct_groups = 0
    for indices in members.values():
        labels = {truth[i] for i in indices}
        if len(labels) == 1 and truth_sizes[next(iter(labels))] == len(indices):
            correct_messages += len(indices)
            correct_groups += 1
    ga = correct_messages / len(truth) if truth else 0.0
    precision = correct_groups / len(members) if members else 0.0
    recall = correct_groups / len(truth_sizes) if truth_sizes else 0.0
    fga = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ga, fga, len(members), len(truth_sizes)


def parsing_accuracy(truth: Sequence[str], templates: Sequence[str]) -> float:
    if not truth:
        return 0.0
    same = sum(normalise(t) == normalise(p) for t, p in zip(truth, templates, strict=True))
    return same / len(truth)


# -- parsers ------------------------------------------------------------------------------------------

#: A parser run: messages in, (group id, template) per message out — templates as they stand at the end.
Parser = Callable[[Sequence[str]], tuple[list[str], list[str], float]]


def run_miner(contents: Sequence[str], config: MinerConfig | None = None) -> tuple[list[str], list[str], float]:
    """Our miner; returns group ids, final templates and the seconds spent mining."""
    miner = TemplateMiner(config)
    add = miner.add
    start = time.process_time()
    ids = [add(line).template_id for line in contents]
    elapsed = time.process_time() - start
    final = {cid: template for cid, template, _ in miner.templates()}
    return ids, [final.get(i, "") for i in ids], elapsed


def run_drain3(contents: Sequence[str]) -> tuple[list[str], list[str], float]:
    """drain3 (PyPI) with its usual benchmark settings."""
    from drain3 import TemplateMiner as Drain3Miner  # type: ignore[import-untyped]
    from drain3.masking import MaskingInstruction  # type: ignore[import-untyped]
    from drain3.template_miner_config import TemplateMinerConfig  # type: ignore[import-untyped]

    config = TemplateMinerConfig()
    config.drain_sim_th = DRAIN3_SIM_TH
    config.drain_depth = DRAIN3_DEPTH
    config.masking_instructions = [MaskingInstruction(p, m) for p, m in DRAIN3_MASKING]
    config.profiling_enabled = False
    miner = Drain3Miner(config=config)
    add = miner.add_log_message
    start = time.process_time()
    ids = [str(add(line)["cluster_id"]) for line in contents]
    elapsed = time.process_time() - start
    final = {str(c.cluster_id): c.get_template() for c in miner.drain.clusters}
    return ids, [final.get(i, "") for i in ids], elapsed


#: Each parser runs this many times on each file, from scratch; lines/s is from the fastest run. Time is
#: the process's CPU time (``time.process_time``): on a shared machine wall time measures the neighbours.
REPEATS = 3


def score(data: Dataset, parser: Parser, repeats: int = REPEATS) -> Score:
    ids, templates, elapsed = parser(data.contents)
    for _ in range(repeats - 1):
        elapsed = min(elapsed, parser(data.contents)[2])
    ga, fga, groups, truth_groups = grouping(data.truth, ids)
    pa = parsing_accuracy(data.truth, templates)
    return Score(ga, pa, fga, groups, truth_groups, len(data.contents) / elapsed if elapsed > 0 else float("inf"))


def evaluate(root: Path, systems: Iterable[str], corrected: bool = False,
             config: MinerConfig | None = None, progress: Callable[[str], None] | None = None,
             repeats: int = REPEATS) -> list[SystemResult]:
    results = []
    for system in systems:
        data = load(root, system, corrected)
        mine: Parser = lambda contents: run_miner(contents, config)  # noqa: E731
        results.append(SystemResult(system, len(data.contents), system not in TUNED_ON,
                                    score(data, mine, repeats), score(data, run_drain3, repeats)))
        if progress is not None:
            progress(system)
    return results


#: The miner's one free number that ``leave_one_system_out`` chooses on the other systems.
SIMILARITY_GRID: tuple[float, ...] = (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)


@dataclass(frozen=True, slots=True)
class HeldOut:
    system: str
    similarity: float  # chosen on the other systems
    ga: float          # on this system, with that choice


def leave_one_system_out(datasets: Sequence[Dataset],
                         grid: Sequence[float] = SIMILARITY_GRID) -> list[HeldOut]:
    """For each system, the ``similarity`` with the best mean GA on the *other* systems, scored on it."""
    table = {(d.system, sim): grouping(d.truth, run_miner(d.contents, MinerConfig(similarity=sim))[0])[0]
             for d in datasets for sim in grid}
    out = []
    for d in datasets:
        others = [o.system for o in datasets if o.system != d.system]
        chosen = max(grid, key=lambda sim: (mean(table[(o, sim)] for o in others), -abs(sim - 0.75)))
        out.append(HeldOut(d.system, chosen, table[(d.system, chosen)]))
    return out


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")
