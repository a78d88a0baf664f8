"""What the ranking could not rule out caps the top cause's confidence, never its place
(watchkeeper.rca.doubt): a near tie, a callee not seen yet, a change below the top."""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import pytest

from watchkeeper.rca import Change, Evidence, MetricSpec, Params, rank
from watchkeeper.rca.doubt import tie_cap

ONSET = 3600.0
SPECS = {"error_ratio": MetricSpec(side=1, floor=0.02)}
# a calibration under which every ranking here would be trusted (a big top is right, whatever the margin):
# the lab's own fit is of that shape (w_margin small against w_top)
TRUSTING = {"model": "logistic(log1p(top), log(top/second))", "intercept": -2.0, "w_top": 2.0, "w_margin": 0.0}


def scraped(level: float, after: float, start: float, until: float, step: float = 2.0) -> tuple[Any, Any]:
    """``level`` sampled every ``step`` seconds from an hour before ONSET to ``until``, ``after`` from ``start``."""
    t = np.arange(0.0, until + 1e-9, step)
    v = level * (1.0 + 0.05 * np.random.default_rng(int(until)).standard_normal(len(t)))
    v[t >= start] = after
    return t, v


def frontend_fails(catalog: tuple[Any, Any], changes: tuple[Change, ...] = ()) -> Evidence:
    """The demo's reopened incident: the frontend's error ratio is up from ONSET, catalog (its callee) as given."""
    return Evidence(nx.DiGraph([("frontend", "catalog")]),
                    {"frontend": {"error_ratio": scraped(0.01, 0.5, ONSET, ONSET + 2.0)}, "catalog": {"error_ratio": catalog}},
                    ONSET, changes=changes, specs=SPECS)


def test_a_callee_not_seen_through_its_slack_caps_the_caller_until_it_is() -> None:
    """Ranked one scrape after the frontend's errors began: catalog's last sample is the frontend's first
    anomalous one, so catalog could still turn out to explain it (one step of slack). The frontend ranks
    first but is not trusted; once catalog is seen flat a step later, the calibrated confidence stands."""
    early = rank(None, frontend_fails(scraped(0.01, 0.01, ONSET, ONSET)), calibration=TRUSTING)
    assert early[0].component == "frontend"
    doubt = early[0].evidence["doubts"]
    assert doubt["callees_not_seen_yet"] == ["catalog"]
    assert early[0].confidence == pytest.approx(0.5) and doubt["calibrated"] > 0.95
    later = rank(None, frontend_fails(scraped(0.01, 0.01, ONSET, ONSET + 2.0)), calibration=TRUSTING)
    assert later[0].component == "frontend" and "doubts" not in later[0].evidence
    assert later[0].confidence > 0.95


def test_a_callee_that_never_had_data_is_not_waited_for() -> None:
    """A dependency nobody monitors will never be seen: the ranking cannot wait for it."""
    ev = Evidence(nx.DiGraph([("frontend", "catalog")]),
                  {"frontend": {"error_ratio": scraped(0.01, 0.5, ONSET, ONSET + 2.0)}}, ONSET, specs=SPECS)
    causes = rank(None, ev, calibration=TRUSTING)
    assert causes[0].component == "frontend" and "doubts" not in causes[0].evidence


def test_a_callee_gone_silent_since_the_onset_is_not_seen() -> None:
    """catalog's scrapes stopped before the onset (it is down): nothing rules it out."""
    causes = rank(None, frontend_fails(scraped(0.01, 0.01, ONSET, ONSET - 30.0)), calibration=TRUSTING)
    assert causes[0].evidence["doubts"]["callees_not_seen_yet"] == ["catalog"]
    assert causes[0].confidence <= 0.5


@pytest.mark.parametrize(("changed", "at", "doubted"), [
    ("catalog", ONSET - 5.0, True),  # deployed 5 s before the frontend failed: not ruled out
    ("catalog", ONSET - 1200.0, False),  # twenty minutes before: a suspect change, too long ago to doubt the top
    ("frontend", ONSET - 5.0, False),  # the top changed itself: its own change explains it
], ids=["callee-just-changed", "callee-changed-long-ago", "top-changed"])
def test_a_change_below_the_top_caps_it(changed: str, at: float, doubted: bool) -> None:
    """The demo's bad deploy on checkout, ranked before checkout's own series moved: its caller is the top."""
    seen = scraped(0.01, 0.01, ONSET, ONSET + 2.0)
    causes = rank(None, frontend_fails(seen, (Change(at, changed, "deploy v1→v2"),)), calibration=TRUSTING)
    assert causes[0].component == "frontend"
    if doubted:
        assert causes[0].evidence["doubts"]["changed_below"] == [
            {"service": "catalog", "at": at, "description": "deploy v1→v2"}]
        assert causes[0].confidence == pytest.approx(0.5)
    else:
        assert "doubts" not in causes[0].evidence and causes[0].confidence > 0.95


def test_a_near_tie_is_a_coin_flip_and_a_clear_margin_is_not_capped() -> None:
    """Two unrelated services with the same errors: whichever ranks first is not trusted."""
    both = Evidence(nx.DiGraph(), {s: {"error_ratio": scraped(0.01, 0.5 + d, ONSET, ONSET + 60.0)}
                                   for s, d in (("a", 0.0), ("b", 0.01))}, ONSET, specs=SPECS)
    causes = rank(None, both, calibration=TRUSTING)
    assert causes[0].component == "b" and causes[0].evidence["doubts"]["near_tie_with"] == "a"
    assert causes[0].confidence < 0.52
    assert tie_cap(43.1, 42.0, Params()) < 0.52  # the demo's frontend 43.1 against catalog 42.0
    assert tie_cap(100.0, 50.0, Params()) == 1.0 and tie_cap(75.0, 50.0, Params()) == pytest.approx(0.79, abs=0.01)
    assert tie_cap(43.1, 42.0, Params(tie_margin=1.0)) == 1.0  # off


def test_doubts_never_move_a_cause() -> None:
    """The same evidence with every doubt off ranks the same services in the same order with the same scores."""
    ev = frontend_fails(scraped(0.01, 0.01, ONSET, ONSET), (Change(ONSET - 5.0, "catalog", "deploy"),))
    off = Params(tie_margin=1.0, await_callees=False, doubt_changes_below=False)
    on, plain = rank(None, ev, calibration=TRUSTING), rank(None, ev, params=off, calibration=TRUSTING)
    assert [(c.component, c.score) for c in on] == [(c.component, c.score) for c in plain]
    assert on[0].confidence < plain[0].confidence
