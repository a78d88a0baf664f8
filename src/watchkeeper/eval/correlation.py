"""Correlation quality: incidents from ``watchkeeper replay --out`` against ground-truth groups.

Formats
-------
* **Incidents**: the JSONL ``watchkeeper replay --out`` writes, one incident per line:
  ``{"id": 1, "alerts": [{"fingerprint": "...", "reason": "...", "detail": "..."}], ...}``.
* **Ground truth**: either JSONL with one ``{"fingerprint": "...", "group": "..."}`` per line, or one
  JSON object ``{"<fingerprint>": "<group>", ...}``. A group is any string (or number) naming the
  incident the alert really belongs to. Fingerprints absent from the ground truth are *unlabelled*:
  by default each is its own group (so grouping it with anything counts as a false pair);
  ``unlabelled="drop"`` leaves them out of every measure.

Counting
--------
The unit is the **membership**: one (incident, fingerprint) pair, repeats within an incident counted
once. ``alerts`` is the number of memberships, ``compression = 1 - incidents / alerts``. An alert that
joined two incidents is two memberships; the pair they form is a true pair (same fingerprint, same
group) that the grouping missed, so splitting an alert costs recall. Pairwise precision is
``same incident ∧ same group / same incident``, recall ``… / same group`` over unordered pairs of
memberships. Purity: each incident counts its largest group, divided by memberships; inverse purity:
each group counts its largest incident.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from typing import Any

import orjson

from watchkeeper.correlate.pipeline_config import PipelineConfig
from watchkeeper.errors import InputError
from watchkeeper.replay import incident_records, parse_line, replay
from watchkeeper.sources import Source

#: A grouping: clusters of fingerprints (an incident, an Alertmanager group, ...).
Clusters = Sequence[Iterable[str]]


@dataclass(frozen=True, slots=True)
class Scores:
    """Correlation quality of one grouping (``None`` where a ratio has no denominator)."""

    name: str
    alerts: int
    incidents: int
    compression: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    purity: float | None
    inverse_purity: float | None
    pairs_predicted: int
    pairs_true: int
    pairs_correct: int
    unlabelled: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


def score(name: str, clusters: Clusters, truth: Mapping[str, Hashable], *, unlabelled: str = "singleton") -> Scores:
    """Pairwise precision/recall/F1, purity, inverse purity and compression of ``clusters``.

    >>> truth = {"a": 1, "b": 1, "c": 2, "d": 2}
    >>> s = score("x", [["a", "b", "c"], ["d"]], truth)
    >>> (s.alerts, s.incidents, s.compression, s.precision, s.recall, s.purity, s.inverse_purity)
    (4, 2, 0.5, 0.3333333333333333, 0.5, 0.75, 0.75)
    """
    if unlabelled not in ("singleton", "drop"):
        raise ValueError("unlabelled must be 'singleton' or 'drop'")
    members: list[list[Hashable]] = []
    missing: set[str] = set()
    for cluster in clusters:
        labels: list[Hashable] = []
        for fp in dict.fromkeys(cluster):
            if fp in truth:
                labels.append(("group", truth[fp]))
            else:
                missing.add(fp)
                if unlabelled == "singleton":
                    labels.append(("alone", fp))
        if labels:
            members.append(labels)
    alerts = sum(len(m) for m in members)
    by_group: Counter[Hashable] = Counter(label for m in members for label in m)
    predicted = sum(_pairs(len(m)) for m in members)
    true = sum(_pairs(n) for n in by_group.values())
    correct = sum(_pairs(n) for m in members for n in Counter(m).values())
    precision, recall = _ratio(correct, predicted), _ratio(correct, true)
    f1 = None if precision is None or recall is None or precision + recall == 0 else (
        2 * precision * recall / (precision + recall))
    purity = _ratio(sum(max(Counter(m).values()) for m in members), alerts)
    best: dict[Hashable, int] = {}
    for m in members:
        for label, n in Counter(m).items():
            best[label] = max(best.get(label, 0), n)
    inverse = _ratio(sum(best.values()), alerts)
    compression = None if alerts == 0 else 1 - len(members) / alerts
    return Scores(name, alerts, len(members), compression, precision, recall, f1, purity, inverse,
                  predicted, true, correct, len(missing))


@dataclass(frozen=True, slots=True)
class Contribution:
    """The joins one reason (strategy) made: how many, and how many put the alert with the ground-truth
    group of its incident's first alert (``right``); ``None`` where nothing was labelled."""

    reason: str
    joins: int
    right: int
    labelled: int

    @property
    def precision(self) -> float | None:
        return _ratio(self.right, self.labelled)


def contributions(records: Iterable[Mapping[str, Any]], truth: Mapping[str, Hashable]) -> list[Contribution]:
    """Per join reason, from ``watchkeeper replay --out`` records (each alert after an incident's first).

    >>> records = [{"alerts": [{"fingerprint": "a", "reason": "new_incident"},
    ...                        {"fingerprint": "b", "reason": "topology"}, {"fingerprint": "c", "reason": "topology"}]}]
    >>> [(c.reason, c.joins, c.right, c.labelled) for c in contributions(records, {"a": 1, "b": 1, "c": 2})]
    [('topology', 2, 1, 2)]
    """
    joins: Counter[str] = Counter()
    right: Counter[str] = Counter()
    labelled: Counter[str] = Counter()
    for record in records:
        alerts = record.get("alerts") or []
        if not alerts:
            continue
        first = truth.get(str(alerts[0]["fingerprint"]))
        for alert in alerts[1:]:
            reason = str(alert.get("reason", "unknown"))
            joins[reason] += 1
            group = truth.get(str(alert["fingerprint"]))
            if first is not None and group is not None:
                labelled[reason] += 1
                right[reason] += group == first
    return [Contribution(r, n, right[r], labelled[r]) for r, n in sorted(joins.items())]


def one_per_alert(clusters: Clusters) -> list[list[str]]:
    """The "no correlation" baseline: every distinct fingerprint alone.

    >>> one_per_alert([["a", "b"], ["b"]])
    [['a'], ['b']]
    """
    return [[fp] for fp in dict.fromkeys(fp for c in clusters for fp in c)]


def incident_clusters(lines: Iterable[bytes]) -> list[list[str]]:
    """Fingerprints per incident from ``watchkeeper replay --out`` JSONL.

    >>> incident_clusters([b'{"id": 1, "alerts": [{"fingerprint": "a"}, {"fingerprint": "b"}]}', b""])
    [['a', 'b']]
    """
    clusters: list[list[str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
            clusters.append([str(a["fingerprint"]) for a in record["alerts"]])
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"incidents line {number}: not a replay incident record ({exc})") from exc
    return clusters


def read_truth(data: bytes) -> dict[str, Hashable]:
    """Ground truth from a JSON object ``{fingerprint: group}`` or JSONL ``{fingerprint, group}`` lines.

    >>> read_truth(b'{"a": "g1", "b": "g1"}')
    {'a': 'g1', 'b': 'g1'}
    >>> read_truth(b'{"fingerprint": "a", "group": 3}\\n{"fingerprint": "b", "group": 3}\\n')
    {'a': 3, 'b': 3}
    """
    text = data.strip()
    try:
        whole = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and not ({"fingerprint", "group"} <= whole.keys()):
        return {str(k): _label(v) for k, v in whole.items()}
    truth: dict[str, Hashable] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
            truth[str(row["fingerprint"])] = _label(row["group"])
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"ground truth line {number}: expected {{fingerprint, group}} ({exc})") from exc
    return truth


def _label(value: Any) -> Hashable:
    if isinstance(value, str | int | float | bool):
        return value
    raise InputError(f"a ground-truth group must be a string or a number, not {value!r}")


def groupkey_clusters(lines: Iterable[bytes], sources: Mapping[str, Source]) -> list[list[str]] | None:
    """The Alertmanager baseline: one incident per ``groupKey``, from the replay input JSONL.

    Each line is normalized as replay does (so fingerprints match); lines without a ``groupKey``
    (other sources) and unreadable lines are skipped. ``None`` when no line has a ``groupKey``.

    >>> from watchkeeper.sources import registry
    >>> body = b'{"groupKey": "g", "status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": "A"}, '
    >>> body += b'"startsAt": "2026-01-01T00:00:00Z", "fingerprint": "fa"}]}'
    >>> groupkey_clusters([body, body.replace(b'"fa"', b'"fb"')], registry(plugins=False))
    [['fa', 'fb']]
    """
    groups: dict[str, dict[str, None]] = {}
    for line in lines:
        if not line.strip():
            continue
        try:
            payload = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(payload, dict) or not isinstance(payload.get("groupKey"), str):
            continue
        try:
            events = parse_line(line, dict(sources))
        except InputError:
            continue
        members = groups.setdefault(payload["groupKey"], {})
        for event in events:
            members.setdefault(event.fingerprint, None)
    return [list(m) for m in groups.values() if m] if groups else None


def ablation(payloads: Sequence[bytes], make: Callable[[], PipelineConfig], truth: Mapping[str, Hashable],
             sources: Mapping[str, Source], *, unlabelled: str = "singleton") -> list[Scores]:
    """Each strategy's and each part of the join score's contribution: the configuration as it is, then
    without each of its strategies, without onset times (the lag), without onset order (the lead),
    without learned lags, without golden signals and without splits. ``make`` builds a fresh configuration each time
    (strategies learn as they go: a host's services, labelled edges), so no run sees another's state.

    >>> from watchkeeper.sources import registry
    >>> body = (b'{"status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": "A", '
    ...         b'"service": "db"}, "startsAt": "2026-01-01T00:00:00Z", "fingerprint": "fa"}]}')
    >>> [s.name for s in ablation([body], PipelineConfig, {"fa": 1}, registry(plugins=False))]
    ['this configuration', 'without labels', 'without mentions', 'without host', 'without onset times (lag)', \
'without onset order (lead)', 'without learned lags', 'without golden signals', 'without splits']
    """
    def run(name: str, config: PipelineConfig) -> Scores:
        result = replay(payloads, dict(sources), config)
        clusters = [[a["fingerprint"] for a in r["alerts"]] for r in incident_records(result)]
        return score(name, clusters, truth, unlabelled=unlabelled)

    base = make()
    rows = [run("this configuration", base)]
    if len(base.strategies) > 1:
        for index, strategy in enumerate(base.strategies):
            fresh = make()
            rows.append(run(f"without {strategy.name}",
                            replace(fresh, strategies=fresh.strategies[:index] + fresh.strategies[index + 1:])))
    fresh = make()
    rows.append(run("without onset times (lag)", replace(fresh, join=replace(fresh.join, lag=timedelta(0)))))
    fresh = make()
    rows.append(run("without onset order (lead)", replace(fresh, join=replace(fresh.join, lead=timedelta(days=1)))))
    fresh = make()
    rows.append(run("without learned lags", replace(fresh, join=replace(fresh.join, learn_lag=False))))
    fresh = make()
    rows.append(run("without golden signals", replace(fresh, join=replace(fresh.join, signals=False))))
    fresh = make()
    rows.append(run("without splits", replace(fresh, splits=False)))
    return rows
