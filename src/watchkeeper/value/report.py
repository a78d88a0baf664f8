"""The executive report as one self-contained HTML page (inline SVG charts, print CSS with a
page per section), pure: it takes the figures and returns text. ``watchkeeper report`` writes it
and prints it to PDF with headless Chromium.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from watchkeeper.value.roi import Baseline, Roi, Sensitivity

NAMES = {
    "incidents_per_month": "Incidents per month", "major_incidents_per_month": "Major incidents per month",
    "baseline_mttr_minutes": "Baseline MTTR", "major_baseline_mttr_minutes": "Baseline MTTR, major incidents",
    "current_mttr_minutes": "Current MTTR", "alerts_per_month": "Alerts per month",
    "noise_reduction": "Noise reduction", "addressable_share": "Share of incidents addressed",
    "hands_on_share": "Hands-on share of resolving", "responders_per_incident": "Responders per incident",
    "triage_minutes_per_alert": "Triage minutes per alert", "hourly_cost": "Engineer hour (loaded)",
    "downtime_share": "Customer-facing share (major)", "downtime_cost_per_minute": "Downtime per minute",
    "platform_cost_per_month": "Platform cost per month", "people_cost_per_month": "People cost per month",
    "one_time_cost": "One-time cost",
}


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def money(value: float | None, currency: str) -> str:
    """
    >>> money(1234567.8, "USD"), money(-950, "EUR"), money(None, "USD")
    ('USD 1.23M', 'EUR -950', '-')
    """
    if value is None:
        return "-"
    size = abs(value)
    text = f"{value / 1e6:.2f}M" if size >= 1e6 else f"{value / 1e3:.1f}k" if size >= 1e4 else f"{value:,.0f}"
    return f"{currency} {text}"


def duration(minutes: float | None) -> str:
    """
    >>> duration(45), duration(3206), duration(None)
    ('45 min', '2.2 d', '-')
    """
    if minutes is None:
        return "-"
    if minutes < 120:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} d"


def shown(name: str, value: float, unit: str) -> str:
    if unit == "share":
        return f"{value:.0%}"
    if unit == "minutes":
        return duration(value)
    if unit in ("incidents", "alerts", "people"):
        return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    return money(value, unit)


# -- charts (SVG) -------------------------------------------------------------------------------
def bars(items: Sequence[tuple[str, float]], *, width: int = 640, unit: str = "", color: str = "#2f6f9f") -> str:
    """A horizontal bar chart.

    >>> "<svg" in bars([("a", 1.0), ("b", 2.0)]) and "<rect" in bars([("a", 1.0)])
    True
    """
    if not items:
        return "<p class=note>no data</p>"
    row, label_w = 26, 200
    top = max((v for _, v in items), default=0.0) or 1.0
    height = row * len(items) + 10
    parts = [f'<svg class=chart viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             'xmlns="http://www.w3.org/2000/svg" role="img">']
    for n, (label, value) in enumerate(items):
        y = 5 + n * row
        w = max((width - label_w - 110) * max(value, 0) / top, 1)
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" font-size="12">{esc(label)}</text>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{color}"/>'
                     f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" font-size="12">'
                     f'{esc(unit)}{esc(_short(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def line(values: Sequence[float], *, width: int = 640, height: int = 220, label: str = "") -> str:
    """A line chart of a monthly series with a zero line (the cumulative net position)."""
    if not values:
        return "<p class=note>no data</p>"
    pad_l, pad_b, pad_t = 70, 28, 12
    lo, hi = min(min(values), 0.0), max(max(values), 0.0)
    span = (hi - lo) or 1.0

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad_l + (width - pad_l - 10) * (i / max(len(values) - 1, 1))
        y = pad_t + (height - pad_t - pad_b) * (1 - (v - lo) / span)
        return x, y

    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(values)))
    _, zero = xy(0, 0.0)
    parts = [f'<svg class=chart viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             'xmlns="http://www.w3.org/2000/svg" role="img">',
             f'<line x1="{pad_l}" x2="{width - 10}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="#999" '
             'stroke-dasharray="4 3"/>',
             f'<polyline points="{points}" fill="none" stroke="#2f6f9f" stroke-width="2.5"/>',
             f'<text x="{pad_l - 6}" y="{pad_t + 10}" text-anchor="end" font-size="11">{esc(_short(hi))}</text>',
             f'<text x="{pad_l - 6}" y="{height - pad_b}" text-anchor="end" font-size="11">{esc(_short(lo))}</text>',
             f'<text x="{pad_l}" y="{height - 8}" font-size="11">month 1</text>',
             f'<text x="{width - 10}" y="{height - 8}" text-anchor="end" font-size="11">month {len(values)}</text>',
             f'<text x="{width / 2:.0f}" y="{height - 8}" text-anchor="middle" font-size="11">{esc(label)}</text>',
             "</svg>"]
    return "".join(parts)


def tornado(rows: Sequence[Sensitivity], base: float | None, *, width: int = 640) -> str:
    """ROI at the low and high value of each questioned input around the base ROI."""
    if not rows or base is None:
        return "<p class=note>no data</p>"
    row, label_w = 26, 250
    values = [v for r in rows for v in (r.roi_low, r.roi_high) if v is not None] + [base]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    inner = width - label_w - 20

    def x(v: float) -> float:
        return label_w + inner * (v - lo) / span

    height = row * len(rows) + 24
    parts = [f'<svg class=chart viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             'xmlns="http://www.w3.org/2000/svg" role="img">']
    for n, r in enumerate(rows):
        y = 4 + n * row
        a, b = r.roi_low if r.roi_low is not None else base, r.roi_high if r.roi_high is not None else base
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" font-size="12">'
                     f'{esc(NAMES.get(r.name, r.name))}</text>')
        for end in (a, b):
            left, right = sorted((x(base), x(end)))
            color = "#4f9a5a" if end > base else "#c0504d"  # green: a better ROI, red: a worse one
            parts.append(f'<rect x="{left:.1f}" y="{y + 3}" width="{max(right - left, 1):.1f}" height="{row - 8}" '
                         f'fill="{color}" opacity="0.85"/>')
    parts.append(f'<line x1="{x(base):.1f}" x2="{x(base):.1f}" y1="0" y2="{height - 18}" stroke="#333"/>'
                 f'<text x="{x(base):.1f}" y="{height - 4}" text-anchor="middle" font-size="11">'
                 f'base ROI {base:.1f}x</text></svg>')
    return "".join(parts)


def _short(value: float) -> str:
    size = abs(value)
    return f"{value / 1e6:.2f}M" if size >= 1e6 else f"{value / 1e3:.1f}k" if size >= 1e3 else f"{value:.0f}"


# -- the page -----------------------------------------------------------------------------------
CSS = """
@page { size: A4; margin: 16mm 14mm; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #1d2733; font-size: 11pt; }
h1 { font-size: 20pt; margin: 0 0 4pt; } h2 { font-size: 14pt; border-bottom: 2px solid #2f6f9f; padding-bottom: 2pt; }
h3 { font-size: 12pt; margin-bottom: 4pt; }
section { page-break-after: always; } section:last-child { page-break-after: auto; }
table { border-collapse: collapse; width: 100%; margin: 6pt 0 10pt; font-size: 9.5pt; }
th, td { border-bottom: 1px solid #d5dbe1; padding: 3pt 5pt; text-align: left; vertical-align: top; }
th { background: #eef2f6; } td.num { text-align: right; white-space: nowrap; }
.kpis { display: flex; gap: 10pt; margin: 8pt 0 12pt; } .kpi { flex: 1; background: #eef2f6; padding: 8pt; }
.kpi b { display: block; font-size: 16pt; color: #2f6f9f; } .note { color: #5b6773; font-size: 9pt; }
.met { color: #2e7d32; } .failed { color: #c62828; } .unknown { color: #8a6d00; }
svg.chart { max-width: 100%; height: auto; }
"""


def _inputs_table(roi: Roi) -> str:
    rows = "".join(f"<tr><td>{esc(NAMES.get(i.name, i.name))}</td><td class=num>{esc(shown(i.name, i.value, i.unit))}"
                   f"</td><td>{esc(i.source)}</td></tr>" for i in roi.inputs)
    return f"<table><tr><th>input</th><th>value</th><th>where it came from</th></tr>{rows}</table>"


def _sensitivity_table(rows: Sequence[Sensitivity], units: Mapping[str, str], currency: str) -> str:
    body = "".join(
        f"<tr><td>{esc(NAMES.get(r.name, r.name))}</td><td class=num>{esc(shown(r.name, r.low, units.get(r.name, '')))}"
        f" / {esc(shown(r.name, r.high, units.get(r.name, '')))}</td>"
        f"<td class=num>{_x(r.roi_low)} / {_x(r.roi_high)}</td>"
        f"<td class=num>{_months(r.payback_low)} / {_months(r.payback_high)}</td></tr>" for r in rows)
    return ("<table><tr><th>assumption</th><th>low / high</th><th>ROI at low / high</th>"
            f"<th>payback at low / high</th></tr>{body}</table>")


def _x(roi: float | None) -> str:
    return "-" if roi is None else f"{roi:.1f}x"


def _months(months: float | None) -> str:
    """
    >>> _months(None), _months(0.01), _months(0.04), _months(0.2), _months(14.25)
    ('never', 'under a day', '1 day', '6 days', '14.2 months')
    """
    if months is None:
        return "never"
    days = months * 30.4375
    if days < 1:
        return "under a day"
    if months >= 1:
        return f"{months:.1f} months"
    return "1 day" if round(days) == 1 else f"{days:.0f} days"


def _roi_section(title: str, roi: Roi, rows: Sequence[Sensitivity], currency: str, intro: str) -> str:
    units = {i.name: i.unit for i in roi.inputs}
    lines = [(k, v) for k, v in roi.benefit_lines.items()]
    return f"""<section><h2>{esc(title)}</h2><p>{intro}</p>
<div class=kpis><div class=kpi>ROI over {roi.horizon_months} months<b>{_x(roi.roi)}</b></div>
<div class=kpi>Payback<b>{_months(roi.payback_months)}</b></div>
<div class=kpi>Net benefit per month<b>{esc(money(roi.monthly_benefit - roi.monthly_cost, currency))}</b></div></div>
<h3>Benefit per month, by source</h3>{bars(lines, unit=currency + ' ')}
<h3>Cumulative net position</h3>{line(roi.cumulative, label=currency + ', after the one-time cost')}
<h3>Every input and where it came from</h3>{_inputs_table(roi)}
<h3>Sensitivity: the assumptions a CFO will question (each at -50 % / +50 %)</h3>
{tornado(rows, roi.roi)}{_sensitivity_table(rows, units, currency)}</section>"""


def render(*, generated_at: datetime, base: Baseline, roi: Roi, rows: Sequence[Sensitivity], currency: str,
           portfolio: Sequence[Mapping[str, Any]], cases: Sequence[Mapping[str, Any]],
           skipped: Mapping[str, int], itsm_rows: int) -> str:
    """The whole report. ``portfolio``: the ranked use cases (priorities); ``cases``: per use case
    its document, stage, gate evaluation and ROI (``roi``, ``sensitivity``)."""
    skipped_text = "; ".join(f"{n} {why}" for why, n in skipped.items()) or "none"
    by_day = bars(sorted(base.by_day.items()), unit="")
    priorities = [(p, float(d["incidents"] or 0)) for p, d in base.by_priority.items()]
    prio_rows = "".join(
        f"<tr><td>{esc(p)}</td><td class=num>{d['incidents']}</td>"
        f"<td class=num>{duration(d['median_mtta_minutes'])}</td>"
        f"<td class=num>{duration(d['median_mttr_minutes'])}</td><td>{'yes' if d['major'] else ''}</td></tr>"
        for p, d in base.by_priority.items())
    ranked = "".join(
        f"<tr><td>{esc(s['id'])}</td><td>{esc(s['title'])}</td><td>{esc(s['stage'])}</td>"
        f"<td>{esc(s['category'].replace('_', ' '))}</td><td class=num>{s['score']:.0f}</td>"
        f"<td>{esc(s['data_readiness'].get('level') or '-')} ({esc(s['data_readiness'].get('source', ''))})</td></tr>"
        for s in portfolio) or "<tr><td colspan=6>no use cases yet</td></tr>"
    sections = [f"""<section><h1>Watchkeeper: the value of the AIOps programme</h1>
<p class=note>Generated {esc(generated_at.strftime('%Y-%m-%d %H:%M UTC'))} from Watchkeeper's own data and the ITSM
export {esc(base.source)}. Every figure names its source; assumptions are marked as such.</p>
<div class=kpis><div class=kpi>ROI over {roi.horizon_months} months<b>{_x(roi.roi)}</b></div>
<div class=kpi>Payback<b>{_months(roi.payback_months)}</b></div>
<div class=kpi>Benefit per month<b>{esc(money(roi.monthly_benefit, currency))}</b></div>
<div class=kpi>Cost per month<b>{esc(money(roi.monthly_cost, currency))}</b></div></div>
<h2>Portfolio</h2><table><tr><th>use case</th><th>title</th><th>stage</th><th>category</th><th>score</th>
<th>data readiness</th></tr>{ranked}</table>
<h2>Baseline from the ITSM export</h2>
<p>{base.incidents} incidents ({itsm_rows} rows) opened between {esc(_day(base.start))} and {esc(_day(base.end))}:
{base.per_month:,.0f} per month at that rate. Median time to acknowledge {duration(base.median_mtta_minutes)},
to resolve {duration(base.median_mttr_minutes)} (mean {duration(base.mttr_minutes)}: a few tickets open for weeks
pull the mean up, so the model uses medians). Left out: {esc(skipped_text)}.</p>
<h3>Incidents per priority</h3>{bars(priorities)}
<table><tr><th>priority</th><th>incidents</th><th>median MTTA</th><th>median MTTR</th><th>major</th></tr>
{prio_rows}</table>
<h3>Incidents opened per day</h3>{by_day}</section>""",
                _roi_section("ROI of the portfolio", roi, rows, currency,
                             "All use cases together, against the ITSM baseline.")]
    for case in cases:
        doc = case["doc"]
        crit = "".join(
            f"<tr><td>{esc(c['text'])}</td><td class=num>{_value(c['value'])}</td><td class=num>{c['samples']}</td>"
            f"<td class={esc(c['result'])}>{esc(c['result'])}</td></tr>" for c in case["evaluation"]["criteria"])
        owners = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in (doc.get("owners") or {}).items() if v) or "none"
        intro = (f"<b>{esc(doc['title'])}</b> — stage <b>{esc(case['stage'])}</b>; owners {esc(owners)}; "
                 f"runbooks {esc(', '.join(doc.get('runbooks') or []) or 'none')}; services "
                 f"{esc(', '.join(doc.get('services') or []) or 'all')}. Gate: {esc(case['evaluation']['move'])} "
                 f"({esc(case['evaluation']['text'])}).</p><table><tr><th>success criterion</th><th>measured</th>"
                 f"<th>samples</th><th>result</th></tr>{crit}</table><p>Its levers only: "
                 f"{esc(case['levers'])}.")
        sections.append(_roi_section(f"Use case: {doc['id']}", case["roi"], case["sensitivity"], currency, intro))
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Watchkeeper value report</title>"
            f"<style>{CSS}</style></head><body>{''.join(sections)}</body></html>")


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _day(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"
