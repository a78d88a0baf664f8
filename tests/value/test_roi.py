"""ROI: the ITSM baseline read from both CSV shapes, the model's arithmetic, sensitivity."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from watchkeeper.errors import InputError
from watchkeeper.value.roi import Assumptions, Input, baseline, compute, inputs_for, read_itsm_csv, sensitivity

FIXTURES = Path(__file__).parents[1] / "fixtures" / "value"


def test_a_servicenow_event_log() -> None:
    got = read_itsm_csv((FIXTURES / "servicenow_sample.csv").read_text())
    assert got.format == "servicenow_event_log" and got.rows == 9
    assert got.skipped == {"resolved before opened": 1}  # INC0000004
    one, two, three = got.incidents
    assert (one.id, one.priority) == ("INC0000001", "1 - Critical")
    assert one.acknowledged_at == datetime(2016, 3, 1, 8, 10, tzinfo=UTC)  # first change away from New
    assert one.resolved_at == datetime(2016, 3, 1, 10, 0, tzinfo=UTC)  # resolved_at, not the closing
    assert two.acknowledged_at == datetime(2016, 3, 2, 12, 0, tzinfo=UTC)
    assert two.resolved_at == datetime(2016, 3, 3, 9, 0, tzinfo=UTC)  # no resolved_at: the Resolved change
    assert three.acknowledged_at is None and three.resolved_at is None
    base = baseline(got.incidents, "sample")
    assert base.incidents == 3 and base.median_mttr_minutes == pytest.approx((120 + 1440) / 2)
    assert base.major_per_month == pytest.approx(1 / (2.0833 / 30.4375), rel=1e-3)  # one P1 over 2.08 days
    assert base.by_day == {"2016-03-01": 1, "2016-03-02": 1, "2016-03-03": 1}


def test_one_row_per_incident() -> None:
    got = read_itsm_csv((FIXTURES / "incidents.csv").read_text())
    assert got.format == "incidents" and [i.id for i in got.incidents] == ["A-1", "A-2", "A-3"]
    base = baseline(got.incidents, "incidents.csv")
    assert base.mtta_minutes == pytest.approx(12.5) and base.median_mttr_minutes == pytest.approx(90)
    assert base.per_month == pytest.approx(3 / (30 / 30.4375))


@pytest.mark.parametrize(("text", "words"), [
    ("a,b\n1,2\n", "neither a ServiceNow incident event log"),
    ("id,opened_at,resolved_at\nx,yesterday,\n", "line 2: 'yesterday' is not a time"),
    ("id,opened_at,resolved_at\nx,,\n", "line 2: opened_at is empty"),
    ("number,incident_state,opened_at,sys_updated_at\n,New,01-03-2016 08:00,01-03-2016 08:00\n", "no incident number"),
    ("", "neither"),
])
def test_bad_exports_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(InputError, match=words):
        read_itsm_csv(text)


def named(**values: float) -> list[Input]:
    defaults = {"incidents_per_month": 100, "major_incidents_per_month": 10, "baseline_mttr_minutes": 120,
                "major_baseline_mttr_minutes": 60, "current_mttr_minutes": 90, "addressable_share": 1,
                "hands_on_share": 1, "responders_per_incident": 2, "hourly_cost": 60, "alerts_per_month": 1000,
                "noise_reduction": 0.5, "triage_minutes_per_alert": 6, "downtime_share": 1,
                "downtime_cost_per_minute": 10, "platform_cost_per_month": 1000, "people_cost_per_month": 0,
                "one_time_cost": 12000}
    return [Input(k, float(v), "share" if k.endswith("share") or k == "noise_reduction" else "", "test")
            for k, v in {**defaults, **values}.items()]


@pytest.mark.parametrize(("overrides", "benefit", "payback", "roi"), [
    ({}, 10500.0, 1.26, 4.25),
    ({"current_mttr_minutes": 120}, 3000.0, 6.0, 0.5),  # no MTTR gain: triage only
    ({"current_mttr_minutes": 150}, 3000.0, 6.0, 0.5),  # a worse MTTR saves nothing (never negative)
    ({"noise_reduction": 0, "current_mttr_minutes": 120}, 0.0, None, -1.0),  # nothing gained: all spent is lost
    ({"platform_cost_per_month": 20000}, 10500.0, None, -0.5),  # never pays back
    ({"one_time_cost": 0, "platform_cost_per_month": 0}, 10500.0, 0.0, None),  # nothing spent: no ratio
])
def test_the_model(overrides: dict[str, float], benefit: float, payback: float | None, roi: float | None) -> None:
    got = compute(named(**overrides), 12)
    assert got.monthly_benefit == pytest.approx(benefit)
    assert got.payback_months == (None if payback is None else pytest.approx(payback, abs=0.01))
    assert got.roi == (None if roi is None else pytest.approx(roi, abs=1e-3))
    assert len(got.cumulative) == 12 and got.cumulative[0] == pytest.approx(-got.one_time_cost + benefit
                                                                              - got.monthly_cost)


def test_every_input_names_its_source() -> None:
    base = baseline(read_itsm_csv((FIXTURES / "incidents.csv").read_text()).incidents, "incidents.csv")
    assumed = inputs_for(base, Assumptions())
    sources = {i.name: i.source for i in assumed}
    assert sources["incidents_per_month"].startswith("ITSM export: incidents.csv (3 incidents")
    assert sources["current_mttr_minutes"] == "assumption: baseline MTTR -30% (not measured yet)"
    assert sources["alerts_per_month"].startswith("assumption: 8 alerts per addressable incident")
    assert sources["hourly_cost"] == "assumption"
    measured = {i.name: i for i in inputs_for(base, Assumptions(), current_mttr_minutes=45,
                                              current_source="measured: Watchkeeper")}
    assert measured["current_mttr_minutes"].value == 45 and measured["current_mttr_minutes"].source.startswith("measured")
    with pytest.raises(InputError, match="no resolved incident"):
        inputs_for(baseline([], "empty"), Assumptions())


def test_sensitivity_orders_by_swing_and_keeps_shares_in_range() -> None:
    rows = sensitivity(named(), 12)
    assert [r.swing for r in rows] == sorted((r.swing for r in rows), reverse=True)
    shares = {r.name: r for r in rows}
    assert shares["addressable_share"].high == 1.0 and shares["noise_reduction"].high == 0.75
    mttr = shares["current_mttr_minutes"]
    assert (mttr.low, mttr.high) == (105.0, 75.0)  # half the gain, one and a half times the gain
    assert mttr.roi_low is not None and mttr.roi_high is not None and mttr.roi_low < mttr.roi_high
