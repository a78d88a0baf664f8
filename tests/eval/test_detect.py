"""``eval detect``: the held-out protocol's figures agree with the scorers, the held-out source is
never looked at, and the command runs end to end on tiny fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from eval.test_nab import make_corpus
from eval.test_smd import make_set
from watchkeeper.eval import detect, nab, smd
from watchkeeper.eval.cli import app
from watchkeeper.eval.detect import THRESHOLDS, Curve

runner = CliRunner()
WIDE = {"COLUMNS": "250"}


@pytest.mark.parametrize("seed", range(5))
def test_nab_curve_equals_the_scorer_at_every_threshold(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 600
    windows = ((200, 240), (400, 409))
    data = nab.DataFile("c/f.csv", np.arange(n) * 60.0, np.zeros(n), windows)
    scores = np.where(rng.random(n) < 0.05, rng.random(n), 0.0)
    p = nab.prepare(data, scores, nab.STANDARD)
    grid = np.linspace(0.01, 0.99, 37)
    curve = detect.nab_raw_curve(p, nab.STANDARD, grid)
    expected = [nab.raw_score(p, float(t), nab.STANDARD) for t in grid]
    assert curve == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(5))
def test_point_adjusted_counts_equal_the_scorer(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = np.zeros(500)
    labels[[*range(50, 60), *range(61, 70), *range(300, 340), 499]] = 1  # adjacent and edge segments
    scores = rng.random(500)
    grid = np.linspace(0.05, 0.995, 20)
    tp, fp, positives = detect.pa_counts(scores, labels, grid)
    assert positives == int(labels.sum())
    for t, a, b in zip(grid, tp, fp, strict=True):
        c = smd.counts(scores, labels, float(t), adjust=True)
        assert (a, b) == (c.tp, c.fp)


def curve(*values: float) -> Curve:
    return Curve(np.array(values))


def test_the_held_out_source_never_steers_its_own_choice() -> None:
    # Candidate "tuned" is perfect on source z only; the others prefer "general".
    curves = {
        "general": {"x": curve(0.7, 0.8), "y": curve(0.6, 0.9), "z": curve(0.1, 0.2)},
        "tuned": {"x": curve(0.5, 0.5), "y": curve(0.4, 0.4), "z": curve(1.0, 1.0)},
    }
    folds = {f.source: f for f in detect.leave_one_source_out(curves)}
    assert (folds["z"].chosen, folds["z"].index, folds["z"].held_out) == ("general", 1, 0.2)
    assert folds["z"].hindsight == 1.0
    # Without x, z's vote wins: on y and z, (0.4 + 1.0) / 2 beats (0.9 + 0.2) / 2; x pays for it.
    assert (folds["x"].chosen, folds["x"].held_out) == ("tuned", 0.5)
    rep = detect.report(curves, {"x": "a", "y": "a", "z": "a"})
    assert rep.worst.source == "z"
    assert rep.in_sample == ("general", float(THRESHOLDS[1]))


def test_ties_take_the_middle_of_the_plateau() -> None:
    name, index, _ = detect.choose({"a": {"x": curve(0.5, 0.5, 0.5, 0.4)}, "b": {"x": curve(0.5, 0.1)}}, ["x"])
    assert (name, index) == ("a", 1)


def test_one_source_is_not_enough() -> None:
    with pytest.raises(ValueError, match="at least two sources"):
        detect.leave_one_source_out({"a": {"x": curve(0.5)}})


def test_the_threshold_grid_is_fixed_and_ordered() -> None:
    assert THRESHOLDS[0] < 0.02 and THRESHOLDS[-1] > 0.99999
    assert bool(np.all(np.diff(THRESHOLDS) > 0))


def fixtures(root: Path) -> tuple[Path, Path]:
    make_corpus(root / "nab")
    make_set(root / "smd_asd" / "smd", "machine-1-1", 1)
    make_set(root / "smd_asd" / "asd", "omi-1", 2)
    return root / "nab", root / "smd_asd"


def test_eval_detect_end_to_end(tmp_path: Path) -> None:
    nab_root, smd_root = fixtures(tmp_path)
    out, cache = tmp_path / "result.json", tmp_path / "cache"
    args = ["detect", "--nab", str(nab_root), "--smd", str(smd_root), "--candidate", "likelihood",
            "--candidate", "robust", "--out", str(out), "--cache", str(cache)]
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    body = json.loads(out.read_text())
    assert [s["source"] for s in body["sources"]] == ["alpha", "beta", "asd", "smd"]
    assert body["candidates"] == ["likelihood", "robust"]
    by_source = {s["source"]: s for s in body["sources"]}
    # One spike per labelled window and one broken metric per entity: every detector finds them.
    assert by_source["asd"]["held_out"] > 90.0 and by_source["smd"]["held_out"] > 90.0
    assert by_source["alpha"]["held_out"] > 80.0
    assert "worst held-out source" in result.output
    cached = sorted(p.name for p in cache.iterdir())
    assert len(cached) == 2 * 5  # 2 candidates × (3 NAB files + 2 entities)
    again = runner.invoke(app, args, env=WIDE)  # from the cache: the same figures
    assert again.exit_code == 0, again.output
    assert json.loads(out.read_text()) == body


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--nab DIR, --smd DIR and/or --lab DIR"),
        (["--nab", "{missing}"], "is not a directory"),
        (["--nab", "{nab}", "--candidate", "nope"], "unknown candidate 'nope'"),
        (["--smd", "{smd}"], "at least two labelled sources"),
    ],
)
def test_bad_usage_exits_2_with_a_sentence(tmp_path: Path, args: list[str], message: str) -> None:
    nab_root, smd_root = fixtures(tmp_path)
    (tmp_path / "smd_asd" / "asd" / "omi-1_test.npy").unlink()  # smd alone: one source
    filled = [a.format(missing=tmp_path / "nope", nab=nab_root, smd=smd_root) for a in args]
    result = runner.invoke(app, ["detect", *filled, "--out", str(tmp_path / "o.json")], env=WIDE)
    assert result.exit_code == 2
    assert message in result.output


def test_hostile_labels_exit_2(tmp_path: Path) -> None:
    nab_root, _ = fixtures(tmp_path)
    (nab_root / "labels" / "combined_windows.json").write_text("{not json")
    result = runner.invoke(app, ["detect", "--nab", str(nab_root), "--out", str(tmp_path / "o.json")], env=WIDE)
    assert result.exit_code == 2
    assert "cannot read the data" in result.output


def test_worst_relative_is_fair_to_every_source_where_the_mean_is_not() -> None:
    """Source x rewards a high threshold strongly; y needs a low one. The mean follows x; the
    worst-relative rule takes the threshold where neither falls far below its own best."""
    n = len(THRESHOLDS)
    grid = np.arange(n) / (n - 1)
    x = Curve(0.2 + 0.8 * grid, None, 0)  # best at the top: 1.0
    y = Curve(np.clip(0.6 - 0.3 * grid, 0.0, None), None, 0)  # best at the bottom: 0.6
    curves = {"only": {"x": x, "y": y}}
    _, i_mean, _ = detect.choose(curves, ["x", "y"], "mean")
    _, i_fair, worst = detect.choose(curves, ["x", "y"], "worst-relative")
    assert i_mean == n - 1
    sx, sy = detect.smoothed(x.figure), detect.smoothed(y.figure)
    ratio = np.minimum(sx / sx.max(), sy / sy.max())
    assert worst == pytest.approx(ratio.max()) and ratio[i_fair] == pytest.approx(ratio.max())
    assert 0.3 * n < i_fair < 0.7 * n  # where the two ratios cross, not at either end
    rep = detect.report(curves, {"x": "a", "y": "a"}, "worst-relative")
    assert rep.rule == "worst-relative" and rep.as_json()["rule"] == "worst-relative"


def test_worst_relative_never_looks_at_the_held_out_source() -> None:
    n = len(THRESHOLDS)
    base = {s: Curve(np.full(n, 0.5), None, 0) for s in ("x", "y")}
    hostile = np.zeros(n)
    hostile[7] = 1.0  # a spike only the held-out source has
    folds_a = detect.leave_one_source_out({"c": {**base, "z": Curve(hostile, None, 0)}}, "worst-relative")
    folds_b = detect.leave_one_source_out({"c": {**base, "z": Curve(np.zeros(n), None, 0)}}, "worst-relative")
    za, zb = (next(f for f in folds if f.source == "z") for folds in (folds_a, folds_b))
    assert za.index == zb.index and za.index != 7


def test_worst_relative_needs_a_source_above_zero() -> None:
    zero = Curve(np.zeros(len(THRESHOLDS)), None, 0)
    with pytest.raises(ValueError, match="above 0"):
        detect.choose({"c": {"x": zero, "y": zero}}, ["x", "y"], "worst-relative")


def test_an_unknown_rule_exits_2(tmp_path: Path) -> None:
    nab_root, _ = fixtures(tmp_path)
    result = runner.invoke(app, ["detect", "--nab", str(nab_root), "--rule", "best-guess",
                                 "--out", str(tmp_path / "o.json")], env=WIDE)
    assert result.exit_code == 2
    assert "unknown rule 'best-guess'" in result.output


def test_ensemble_candidates_are_experimental_and_learn_everything() -> None:
    """The round-3/4 ensembles can be rerun on new sources (``--candidate``) but ship nothing:
    no shipped version, every point learned, as the default learns."""
    from watchkeeper.detect.context import LikelihoodContext
    from watchkeeper.detect.default import SHIPPED

    known = detect.candidates()
    for name, params in detect.ENSEMBLES.items():
        cand = known[name]
        det = cand.build()
        assert isinstance(det, LikelihoodContext)
        assert det.join == params["join"]
        assert (cand.version, cand.max_skip) == ("experimental", 0)
        assert name not in SHIPPED


def test_smoothed_mean_steps_back_from_a_cliff_the_mean_sits_on() -> None:
    """x peaks at one grid point next to a cliff, y is flat: the mean takes the peak, the
    smoothed mean a threshold where x holds over ±0.25 log-odds (away from the cliff)."""
    n = len(THRESHOLDS)
    x = np.full(n, 0.6)
    x[1000:1031] = 0.62
    x[1030] = 0.9  # the peak, the last point before the cliff
    x[1031:] = 0.1
    curves = {"only": {"x": Curve(x, None, 0), "y": Curve(np.full(n, 0.5), None, 0)}}
    _, i_mean, _ = detect.choose(curves, ["x", "y"], "mean")
    _, i_smooth, value = detect.choose(curves, ["x", "y"], "smoothed-mean")
    assert i_mean == 1030
    assert i_smooth < 1030 - 10
    expected = detect.smoothed(np.mean([x, np.full(n, 0.5)], axis=0), detect.SMOOTH_MEAN_POINTS)
    assert value == pytest.approx(float(expected.max()))


def test_smoothed_mean_never_looks_at_the_held_out_source() -> None:
    n = len(THRESHOLDS)
    base = {s: Curve(np.linspace(0.2, 0.8, n), None, 0) for s in ("x", "y")}
    hostile = np.zeros(n)
    hostile[7] = 1.0
    folds_a = detect.leave_one_source_out({"c": {**base, "z": Curve(hostile, None, 0)}}, "smoothed-mean")
    folds_b = detect.leave_one_source_out({"c": {**base, "z": Curve(np.zeros(n), None, 0)}}, "smoothed-mean")
    za, zb = (next(f for f in folds if f.source == "z") for folds in (folds_a, folds_b))
    assert za.index == zb.index and za.index != 7


def test_the_range_candidate_is_experimental_and_learns_everything() -> None:
    """Round 5's candidate can be rerun on new sources but ships nothing."""
    from watchkeeper.detect.default import SHIPPED
    from watchkeeper.detect.spatial import RangeLikelihood

    cand = detect.candidates()["likelihood+range"]
    assert isinstance(cand.build(), RangeLikelihood)
    assert (cand.version, cand.max_skip) == ("experimental", 0)
    assert "likelihood+range" not in SHIPPED


def test_familywise_vectors_score_one_metric_alike_and_many_lower() -> None:
    """Round 10's candidate: one scored metric, the same scores as the plain maximum; twenty, never
    higher, and lower where the plain maximum is only moderately anomalous."""
    rng = np.random.default_rng(10)
    cands = detect.candidates()
    plain, family = cands["likelihood max"], cands["likelihood familywise"]
    assert family.vector == "familywise" and plain.vector == "max" and family.key() != plain.key()
    assert cands["likelihood"].vector == "familywise"  # what ships since round 10 (likelihood-v3)

    def entity(d: int) -> smd.Entity:
        train = rng.normal(0.0, 1.0, (600, d))
        test = rng.normal(0.0, 1.0, (300, d))
        test[150, 0] += 12.0  # one clear anomaly
        return smd.Entity("x/e", train, test, np.zeros(300, dtype=bool))

    one = detect.PaSource("s", (entity(1),), 60.0)
    np.testing.assert_allclose(one.run(family, 0), one.run(plain, 0))
    many = detect.PaSource("s", (entity(20),), 60.0)
    a, b = many.run(plain, 0), many.run(family, 0)
    assert (b <= a + 1e-12).all()
    calm = np.r_[0:140, 170:300]
    assert b[calm].mean() < a[calm].mean()
    assert b[150:160].max() > 0.9  # a clear anomaly stays clear
