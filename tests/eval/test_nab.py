"""The NAB scorer on tiny cases whose scores are known by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from watchkeeper.eval import nab
from watchkeeper.eval.nab import STANDARD, DataFile, Profile

LOW_FN = Profile("reward_low_FN_rate", tp=1.0, fp=0.11, fn=2.0)
LOW_FP = Profile("reward_low_FP_rate", tp=1.0, fp=0.22, fn=1.0)


def sig(y: float) -> float:
    return 2 / (1 + math.exp(5 * y)) - 1


def one_file(n: int = 100, windows: tuple[tuple[int, int], ...] = ((40, 49),)) -> DataFile:
    return DataFile("cat/f.csv", np.arange(n) * 60.0, np.zeros(n), windows)


def with_hits(n: int, *hits: int) -> np.ndarray:
    s = np.zeros(n)
    s[list(hits)] = 1.0
    return s


# One window of width 10 at 40..49 in 100 points (probation: the first 15).
@pytest.mark.parametrize(
    ("hits", "profile", "expected"),
    [
        ((), STANDARD, 0.0),  # null detector
        ((40,), STANDARD, 100.0),  # perfect: detected at the window's first point
        ((40, 41, 45), STANDARD, 100.0),  # only the first detection in a window counts
        ((49,), STANDARD, 100 * (sig(-0.1) / sig(-1.0) + 1) / 2),  # at the window's end: 62.4
        ((45,), STANDARD, 100 * (sig(-0.5) / sig(-1.0) + 1) / 2),  # mid-window
        ((40, 20), STANDARD, 100 * (1 - 0.11 + 1) / 2),  # plus a FP before any window: -fp
        ((40, 20), LOW_FP, 100 * (1 - 0.22 + 1) / 2),
        ((40, 10), STANDARD, 100.0),  # a "FP" inside the probationary period is not scored
        ((40, 50), STANDARD, 100 * (1 + 0.11 * sig(1 / 9) + 1) / 2),  # FP right after the window: cheap
        ((40, 99), STANDARD, 100 * (1 - 0.11 + 1) / 2),  # FP > 3 widths after: full cost
        ((), LOW_FN, 0.0),
        ((49,), LOW_FN, 100 * (sig(-0.1) / sig(-1.0) + 2) / 3),
    ],
)
def test_scores_known_by_hand(hits: tuple[int, ...], profile: Profile, expected: float) -> None:
    data = one_file()
    p = nab.prepare(data, with_hits(100, *hits), profile)
    got = nab.normalised(nab.raw_score(p, 0.5, profile), p.n_windows, profile)
    assert got == pytest.approx(expected)


def test_end_of_window_value() -> None:
    assert 100 * (sig(-0.1) / sig(-1.0) + 1) / 2 == pytest.approx(62.41, abs=0.01)


@pytest.mark.parametrize(("n", "first"), [(100, 15), (1000, 150), (4032, 604), (5000, 750), (20000, 750)])
def test_probation(n: int, first: int) -> None:
    assert nab.probation_length(n) == first


def test_window_in_probation_does_not_count() -> None:
    data = one_file(windows=((2, 8), (40, 49)))
    p = nab.prepare(data, with_hits(100, 40), STANDARD)
    assert p.n_windows == 1
    assert nab.raw_score(p, 0.5, STANDARD) == pytest.approx(1.0)


def test_threshold_sweep_picks_the_best_over_all_files() -> None:
    a, b = one_file(), DataFile("cat/g.csv", np.arange(100) * 60.0, np.zeros(100), ((60, 69),))
    sa = np.zeros(100)
    sa[40] = 0.6  # true detection at a low score
    sa[20] = 0.9  # false positive at a high score
    sb = np.zeros(100)
    sb[60] = 0.7
    result = nab.score_corpus([a, b], [sa, sb], STANDARD)
    # Thresholds 0.9 (FP only: -0.11 - 2), 0.7 (+b: -0.11 + 1 - 1), 0.6 (both: 2 - 0.11): 0.6 wins.
    assert result.threshold == 0.6
    assert result.overall == pytest.approx(100 * (2 - 0.11 + 2) / 4)
    assert result.categories == {"cat": pytest.approx(result.overall)}


def test_sweep_prefers_no_detection_when_everything_is_false() -> None:
    s = np.zeros(100)
    s[20:30] = 1.0
    result = nab.score_corpus([one_file()], [s], STANDARD)
    assert result.threshold == math.inf and result.overall == 0.0


def test_categories_without_windows_have_no_normalised_score() -> None:
    files = [one_file(), DataFile("quiet/q.csv", np.arange(100) * 60.0, np.zeros(100), ())]
    result = nab.score_corpus(files, [with_hits(100, 40), with_hits(100, 50)], STANDARD)
    assert result.categories["quiet"] is None
    assert result.raw["quiet"] == pytest.approx(-0.11)
    assert result.overall == pytest.approx(100 * (1 - 0.11 + 1) / 2)


def make_corpus(root: Path) -> None:
    """A two-category NAB layout with one spike per labelled window."""
    labels: dict[str, list[list[str]]] = {}
    for category, name, spike in (("alpha", "a.csv", 700), ("beta", "b.csv", 800), ("beta", "c.csv", None)):
        (root / "data" / category).mkdir(parents=True, exist_ok=True)
        x = 10 + np.random.default_rng(len(name) + (spike or 0)).normal(0, 1, 1000)
        lines = ["timestamp,value"]
        for i, v in enumerate(x + (np.arange(1000) == spike) * 50):
            lines.append(f"2020-01-01 {i // 60:02d}:{i % 60:02d}:00,{v:.4f}")
        (root / "data" / category / name).write_text("\n".join(lines) + "\n")
        labels[f"{category}/{name}"] = [] if spike is None else [[
            f"2020-01-01 {(spike - 20) // 60:02d}:{(spike - 20) % 60:02d}:00.000000",
            f"2020-01-01 {(spike + 20) // 60:02d}:{(spike + 20) % 60:02d}:00.000000"]]
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels))
    (root / "config").mkdir()
    (root / "config" / "profiles.json").write_text(json.dumps({
        "standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0}},
        "reward_low_FN_rate": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11, "tnWeight": 1.0}},
    }))


def test_load_corpus_maps_windows_to_indices(tmp_path: Path) -> None:
    make_corpus(tmp_path)
    files = nab.load_corpus(tmp_path)
    assert [f.name for f in files] == ["alpha/a.csv", "beta/b.csv", "beta/c.csv"]
    assert files[0].windows == ((680, 720),) and files[2].windows == ()
    assert [p.name for p in Profile.load(tmp_path / "config" / "profiles.json")] == [
        "standard", "reward_low_FN_rate"]
    assert [f.name for f in nab.load_corpus(tmp_path, ["beta"])] == ["beta/b.csv", "beta/c.csv"]


def test_evaluate_with_a_perfect_and_a_null_detector(tmp_path: Path) -> None:
    make_corpus(tmp_path)
    files = nab.load_corpus(tmp_path)

    def perfect(d: DataFile) -> np.ndarray:
        return with_hits(len(d.values), *[a for a, _ in d.windows])

    seen: list[str] = []
    results = nab.evaluate(files, perfect, [STANDARD, LOW_FN], lambda d: seen.append(d.name))
    assert seen == [f.name for f in files]
    assert [r.overall for r in results] == [100.0, 100.0]
    assert nab.evaluate(files, lambda d: np.zeros(len(d.values)), [STANDARD])[0].overall == 0.0


def test_leave_one_category_out_uses_nothing_of_the_held_out_category() -> None:
    a = DataFile("a/f.csv", np.arange(100) * 60.0, np.zeros(100), ((40, 49),))
    b = DataFile("b/f.csv", np.arange(100) * 60.0, np.zeros(100), ((60, 69),))
    # "for_a" finds a's anomaly and raises a false alarm in b; "for_b" the other way round.
    for_a, for_b = [with_hits(100, 40), with_hits(100, 20)], [with_hits(100, 20), with_hits(100, 60)]
    held = nab.leave_one_category_out([a, b], {"for_a": for_a, "for_b": for_b}, STANDARD)
    assert [(h.category, h.chosen) for h in held] == [("a", "for_b"), ("b", "for_a")]
    # Each held-out category gets the other's choice: a false alarm and a missed window.
    assert [h.score for h in held] == [pytest.approx(100 * (-0.11 - 1 + 1) / 2)] * 2
    assert all(h.threshold == 1.0 for h in held)


def test_leave_one_category_out_needs_candidates() -> None:
    with pytest.raises(ValueError, match="candidates"):
        nab.leave_one_category_out([one_file()], {}, STANDARD)
