"""The monitoring dashboard page: self-contained HTML with inline SVG charts.

Rendered without FastAPI, so ``radloop monitor report`` writes the same page to a folder that
``radloop.monitor.dashboard`` serves in the review app.
"""

from __future__ import annotations

import html
import math
from typing import Any

from radloop.monitor.aggregate import CLAIM_VERDICTS
from radloop.monitor.analysis import CSV_TABLES, NOTICE, Analysis
from radloop.monitor.charts import Band, ForestRow, Series, forest_plot, line_chart

__all__ = ["STYLE", "dashboard_content", "render_dashboard"]

STYLE = """
.monitor{color:#111827;max-width:1100px}
.monitor h1{font-size:1.4rem}.monitor h2{font-size:1.1rem;margin-top:28px}
.monitor .notice{background:#fef3c7;border:1px solid #f59e0b;padding:8px 12px;border-radius:6px}
.monitor .alert{background:#fee2e2;border:1px solid #dc2626;padding:8px 12px;border-radius:6px;
margin:6px 0}
.monitor .ok{background:#dcfce7;border:1px solid #16a34a;padding:8px 12px;border-radius:6px}
.monitor .chart{width:100%;max-width:900px;height:auto;display:block;margin:8px 0}
.monitor .chart .title{font-size:13px;font-weight:600}.monitor .chart .tick{font-size:10px;
fill:#374151}.monitor .chart .grid{stroke:#e5e7eb}
.monitor .chart .band{fill:#1f5fa8;opacity:.18}
.monitor .chart .threshold{stroke:#dc2626;stroke-dasharray:4 3}.monitor .chart .mark{fill:#dc2626}
.monitor table{border-collapse:collapse;font-size:.85rem}
.monitor td,.monitor th{border:1px solid #d1d5db;padding:3px 8px}
.monitor th{background:#f3f4f6}.monitor .figures{display:flex;gap:24px;flex-wrap:wrap}
.monitor .figures div{background:#f9fafb;border:1px solid #e5e7eb;border-radius:6px;
padding:8px 12px}
"""
"""The dashboard's styles, every rule under ``.monitor`` so that the page sits inside the
workstation's layout without restyling it."""

_STANDALONE_STYLE = "body{font-family:system-ui,sans-serif;margin:24px}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _pct(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.1f} %"


def render_dashboard(
    analysis: Analysis, *, export_base: str | None = "monitor/", back: str | None = None
) -> str:
    """The dashboard as a self-contained HTML document (inline styles and SVG, no scripts):
    the file ``radloop monitor report`` writes.

    ``back`` is the address of a "back to the worklist" link. Export links as in
    :func:`dashboard_content`.
    """
    return "\n".join([
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>radloop monitor</title>",
        f"<style>{_STANDALONE_STYLE}{STYLE}</style></head><body>",
        f"<p><a href='{_e(back)}'>← Worklist</a></p>" if back else "",
        dashboard_content(analysis, export_base=export_base, styled=False),
        "</body></html>",
    ])  # fmt: skip


def dashboard_content(
    analysis: Analysis, *, export_base: str | None = "monitor/", styled: bool = True
) -> str:
    """The dashboard's content (a ``<div class="monitor">``, with its ``<style>`` when
    ``styled``), for a page that supplies the document around it: the workstation's layout.

    Export links point at ``{export_base}export.csv?table=…`` and ``{export_base}data.json``
    (the router's routes); with ``export_base=None`` at files ``{table}.csv`` and ``data.json``
    beside the page (``radloop monitor report``).
    """
    summary, drift = analysis.summary, analysis.drift
    sections = [
        f"<style>{STYLE}</style>" if styled else "",
        "<div class='monitor'>",
        "<h1>Monitoring: drafts compared with signed reports</h1>",
        f"<p class='notice'>{_e(NOTICE)}</p>",
        _alerts_html(analysis),
        _figures_html(analysis),
        _not_checked_notice(analysis),
    ]
    if summary.n:
        sections += [
            "<h2>Agreement over time</h2>",
            _agreement_chart(analysis),
            _revision_chart(analysis),
            "<h2>Guard precision: flags the reader acted on</h2>",
            _guard_chart(analysis),
            "<h2>Agreement by subgroup</h2>",
            _forest(analysis),
            "<h2>Claims the safety layer could not check</h2>",
            _not_checked_charts(analysis),
            "<h2>Drafts that failed or that the model declined</h2>",
            _draft_outcomes_table(analysis),
            "<h2>Drift against the reference window</h2>",
            f"<p>Reference: the first {drift.reference[1]} cases. Windows of "
            f"{drift.config.window_size} cases every {drift.config.step}; a window alarms when a "
            f"test's p-value is under α/m (α = {drift.config.alpha:g}, m tests, Bonferroni); an "
            f"alert needs {drift.config.persistence} consecutive alarming windows.</p>",
            *_drift_charts(analysis),
            "<h2>Calibration on newly signed cases</h2>",
            _calibration_chart(analysis),
            "<h2>Cohen's kappa per finding (draft vs signed)</h2>",
            _kappa_table(analysis),
        ]
    sections += [
        "<h2>Export</h2><p>",
        *(f"<a href='{_e(_csv_link(export_base, t))}' download>{t}.csv</a> · " for t in CSV_TABLES),
        f"<a href='{_e(_json_link(export_base))}'>data.json</a></p></div>",
    ]
    return "\n".join(sections)


def _alerts_html(analysis: Analysis) -> str:
    calibration = analysis.calibration
    active: list[Any] = [*analysis.drift.active, *(calibration.active if calibration else [])]
    if not active:
        ended = len(analysis.drift.alerts) + (len(calibration.alerts) if calibration else 0)
        suffix = f" ({ended} earlier alert{'s' * (ended != 1)} ended)" if ended else ""
        return f"<p class='ok' id='alerts'>No active drift alert{suffix}.</p>"
    items = "".join(f"<div class='alert'>{_e(a.message)}</div>" for a in active)
    return f"<div id='alerts'><h2>Active alerts</h2>{items}</div>"


def _figures_html(analysis: Analysis) -> str:
    overall = analysis.summary.overall
    if overall is None:
        return "<p id='figures'>No signed cases yet.</p>"
    low, high = overall.f1_ci
    items = [
        ("signed cases", f"{overall.n}"),
        ("mean F1 (draft vs signed)", f"{overall.f1:.3f} [{low:.3f}, {high:.3f}]"),
        ("significantly revised", f"{_pct(overall.revised_rate)}"),
        ("signed unchanged", _pct(overall.unchanged_rate)),
        ("text edit rate", f"{overall.edit_rate:.3f}"),
        ("flags", f"{overall.flags}"),
        ("guard precision (flag right)", _pct(overall.guard_precision)),
        ("draft claims not checked",
         f"{_pct(overall.not_checked_rate)} "
         f"({overall.claims.get('not_checked', 0)} of {overall.n_claims})"),
        ("drafts failed / model abstained",
         f"{overall.failed_drafts} / {overall.abstained_drafts}"),
    ]  # fmt: skip
    cells = "".join(f"<div><b>{_e(v)}</b><br>{_e(k)}</div>" for k, v in items)
    return f"<div class='figures' id='figures'>{cells}</div>"


def _not_checked_notice(analysis: Analysis) -> str:
    overall = analysis.summary.overall
    if overall is None or not overall.claims.get("not_checked"):
        return ""
    k, n = overall.claims["not_checked"], overall.n_claims
    return (
        f"<p class='notice' id='not-checked'>{k} of {n} draft claims were not checked: no "
        "evidence valid for the film (a verifier inside its validated domain, for a finding "
        "type it was validated for) spoke about them, so they reached the reader as the model "
        "wrote them. They are counted apart, never as supported.</p>"
    )


def _not_checked_charts(analysis: Analysis) -> str:
    """The not-checked share of the drafts' claims per window, per subgroup, and each
    verdict's count per window."""
    summary = analysis.summary
    windows = summary.windows
    if not any(w.n_claims for w in windows):
        return "<p>No draft claims stored with the signed cases.</p>"
    chart = line_chart(
        f"Share of draft claims not checked per {summary.window_days}-day window, 95 % Wilson CI",
        [w.label for w in windows],
        [Series("not checked", [w.not_checked_rate for w in windows])],
        band=Band([w.not_checked_ci[0] for w in windows], [w.not_checked_ci[1] for w in windows]),
        y_range=(0.0, 1.0),
        css_id="chart-not-checked",
    )
    rows = [
        ForestRow(group, g.label, g.not_checked_rate, g.not_checked_ci[0] or 0.0,
                  g.not_checked_ci[1] or 1.0, g.n_claims)
        for group, levels in summary.subgroups.items()
        for g in levels
        if g.not_checked_rate is not None
    ]  # fmt: skip
    overall = summary.overall
    forest = forest_plot(
        "Share of draft claims not checked by subgroup (95 % Wilson CI; dashed: all cases)",
        rows,
        reference=None if overall is None else overall.not_checked_rate,
        css_id="chart-subgroups-not-checked",
    )
    head = "".join(f"<th>{_e(v.replace('_', ' '))}</th>" for v in CLAIM_VERDICTS)
    body = "".join(
        f"<tr><td>{_e(w.label)}</td><td>{w.n_claims}</td>"
        + "".join(f"<td>{w.claims.get(v, 0)}</td>" for v in CLAIM_VERDICTS)
        + f"<td>{_pct(w.not_checked_rate)}</td></tr>"
        for w in windows
    )
    table = (
        "<table id='claim-verdicts'><tr><th>window</th><th>claims</th>"
        f"{head}<th>not checked</th></tr>{body}</table>"
    )
    return chart + forest + table


def _draft_outcomes_table(analysis: Analysis) -> str:
    """Signed cases whose draft failed (no usable reply) or whose model abstained (a film
    outside its validated domain), per window and per site: the reader wrote these alone."""
    summary = analysis.summary
    groups = [("window", w) for w in summary.windows]
    groups += [("site", g) for g in summary.subgroups.get("site", [])]
    body = "".join(
        f"<tr><td>{_e(kind)}</td><td>{_e(g.label)}</td><td>{g.n}</td><td>{g.failed_drafts}</td>"
        f"<td>{g.abstained_drafts}</td><td>{_pct((g.failed_drafts + g.abstained_drafts) / g.n)}"
        "</td></tr>"
        for kind, g in groups
        if g.n
    )
    return (
        "<p>Signed cases the reader reported without a draft: the draft failed (the model gave "
        "no usable reply) or the model abstained (the film lies outside its validated domain)."
        f" Windows of {summary.window_days} days.</p><table id='draft-outcomes'><tr><th>by</th>"
        "<th>group</th><th>signed cases</th><th>drafts failed</th><th>model abstained</th>"
        f"<th>share without a draft</th></tr>{body}</table>"
    )


def _agreement_chart(analysis: Analysis) -> str:
    windows = analysis.summary.windows
    return line_chart(
        f"Mean F1 per {analysis.summary.window_days}-day window, 95 % CI",
        [w.label for w in windows],
        [Series("mean F1", [w.f1 for w in windows])],
        band=Band([w.f1_ci[0] for w in windows], [w.f1_ci[1] for w in windows]),
        y_range=(0.0, 1.0),
        threshold=analysis.summary.f1_threshold,
        threshold_label=f"revision threshold F1 {analysis.summary.f1_threshold:g}",
        css_id="chart-agreement",
    )


def _revision_chart(analysis: Analysis) -> str:
    windows = analysis.summary.windows
    return line_chart(
        f"Significantly revised share per {analysis.summary.window_days}-day window, "
        "95 % Wilson CI",
        [w.label for w in windows],
        [Series("significantly revised", [w.revised_rate for w in windows])],
        band=Band([w.revised_ci[0] for w in windows], [w.revised_ci[1] for w in windows]),
        y_range=(0.0, 1.0),
        y_label="share of signed cases",
        css_id="chart-revised",
    )


def _guard_chart(analysis: Analysis) -> str:
    """Guard precision per window on a chart of its own: a share of the flags, not of the
    signed cases, so it never shares an axis with the revised share."""
    windows = analysis.summary.windows
    if not any(w.flags for w in windows):
        return "<p id='chart-guard'>No flagged claims yet: guard precision is not measured.</p>"
    return line_chart(
        f"Guard precision per {analysis.summary.window_days}-day window: flags the reader "
        "rejected or edited, 95 % Wilson CI",
        [w.label for w in windows],
        [Series("guard precision", [w.guard_precision for w in windows])],
        band=Band([w.guard_ci[0] for w in windows], [w.guard_ci[1] for w in windows]),
        y_range=(0.0, 1.0),
        y_label="share of flags",
        css_id="chart-guard",
    )


def _forest(analysis: Analysis) -> str:
    rows = [
        ForestRow(group, g.label, g.revised_rate, g.revised_ci[0], g.revised_ci[1], g.n)
        for group, levels in analysis.summary.subgroups.items()
        for g in levels
    ]
    overall = analysis.summary.overall
    f1_rows = [
        ForestRow(group, g.label, g.f1, g.f1_ci[0], g.f1_ci[1], g.n)
        for group, levels in analysis.summary.subgroups.items()
        for g in levels
    ]
    return forest_plot(
        "Significantly revised share by subgroup (95 % Wilson CI; dashed: all cases)",
        rows,
        reference=None if overall is None else overall.revised_rate,
        css_id="chart-subgroups",
    ) + forest_plot(
        "Mean F1 by subgroup (95 % t CI; dashed: all cases)",
        f1_rows,
        reference=None if overall is None else overall.f1,
        css_id="chart-subgroups-f1",
    )


def _drift_charts(analysis: Analysis) -> list[str]:
    windows = analysis.drift.windows
    if not windows:
        return ["<p>Not enough cases after the reference window for a drift test yet.</p>"]
    labels = [str(w.end) for w in windows]
    marks = [w.alarm for w in windows]
    out = []
    for kind, title in (("input", "Input drift (KS)"), ("output", "Output drift (finding rates)"),
                        ("agreement", "Agreement drift")):  # fmt: skip
        names = list(dict.fromkeys(t.name for w in windows for t in w.tests if t.kind == kind))
        if not names:
            continue
        series = [Series(name, [_log_p(w, name) for w in windows]) for name in names[:10]]
        threshold = -math.log10(min(w.threshold for w in windows))
        out.append(
            line_chart(
                f"{title}: −log10 p per window (x: last case of the window; "
                "capped at twice the threshold)",
                labels,
                series,
                threshold=threshold,
                threshold_label="Bonferroni threshold",
                marks=marks,
                y_range=(0.0, max(threshold * 2, 1.0)),
                y_label="−log10 p",
                css_id=f"chart-drift-{kind}",
            )
        )
    return out


def _calibration_chart(analysis: Analysis) -> str:
    report = analysis.calibration
    series = report.series() if report is not None else {}
    if report is None or not series:
        return "<p id='chart-calibration'>Not enough signed claims with probabilities yet.</p>"
    ends = sorted({w.end for w in report.windows})
    position = {end: i for i, end in enumerate(ends)}
    lines = []
    for code, windows in list(series.items())[:10]:
        values: list[float | None] = [None] * len(ends)
        for w in windows:
            values[position[w.end]] = w.ece
        lines.append(Series(code, values, dashed=code != "all"))
    alarms = {w.end for w in report.windows if w.alarm}
    config = report.config
    note = (
        f"<p>Windows of {config.window_size} signed cases every {config.step}; ECE over 15 "
        f"bins per finding type with at least {config.min_claims} claims. A window alarms when "
        f"its ECE is above {config.threshold:g} and above what perfectly calibrated "
        "probabilities show on as many claims (95th percentile); an alert needs "
        f"{config.persistence} consecutive alarming windows.</p>"
    )
    return note + line_chart(
        "ECE of the drafts' probabilities per window (x: last case of the window)",
        [str(end) for end in ends],
        lines,
        threshold=config.threshold,
        threshold_label=f"alert threshold {config.threshold:g}",
        marks=[end in alarms for end in ends],
        y_range=(0.0, max(0.2, *(w.ece for w in report.windows))),
        y_label="ECE",
        css_id="chart-calibration",
    )


def _log_p(window: Any, name: str) -> float | None:
    for test in window.tests:
        if test.name == name:
            return 50.0 if test.p_value <= 0 else min(50.0, -math.log10(test.p_value))
    return None


def _kappa_table(analysis: Analysis) -> str:
    rows = "".join(
        f"<tr><td>{_e(k.code)}</td><td>{k.draft_positive}</td><td>{k.signed_positive}</td>"
        f"<td>{'–' if k.kappa is None else f'{k.kappa:.3f}'}</td><td>"
        + ("–" if k.kappa_ci[0] is None or k.kappa_ci[1] is None
           else f"[{k.kappa_ci[0]:.3f}, {k.kappa_ci[1]:.3f}]")
        + "</td></tr>"
        for k in analysis.summary.kappas
    )  # fmt: skip
    return (
        "<table id='kappa'><tr><th>finding</th><th>draft positive</th><th>signed positive</th>"
        f"<th>kappa</th><th>95 % CI</th></tr>{rows}</table>"
    )


def _csv_link(export_base: str | None, table: str) -> str:
    return f"{table}.csv" if export_base is None else f"{export_base}export.csv?table={table}"


def _json_link(export_base: str | None) -> str:
    return "data.json" if export_base is None else f"{export_base}data.json"
