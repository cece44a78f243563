"""The run's report: one self-contained HTML file (plots inlined as base64 PNG) and its JSON.

Plots come from :mod:`radloop.evaluate.plots`. A model-card section
states intended use and known limits; when another run is given (``--compare``), a section
sets the two side by side and states the gap in words (for the reference model: its figures
on real images next to its synthetic ones).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from radloop.evaluate.cost import cost_html
from radloop.evaluate.plots import NAMES as _NAMES
from radloop.evaluate.plots import draw_plots, fmt
from radloop.evaluate.report_sections import gap_groups, scope_html, site_words, with_contents

__all__ = ["compare_runs", "render_html", "write_report"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
td,th{border:1px solid #ccc;padding:.25em .55em;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}
.notice{background:#fff4e5;border-left:5px solid #e8a33d;padding:.6em 1em}
.gap{background:#fdecea;border-left:5px solid #d9534f;padding:.6em 1em}
.muted{color:#595959;font-size:.9em}img{max-width:100%}
nav ol{columns:2;margin:.4em 0}a{color:#0b57a4}
"""


_fmt = fmt
_CONTENTS = "<!-- contents -->"


FINDING_COLUMNS = ["finding", "pos", "neg", "prevalence", "AUROC", "sensitivity", "specificity",
                   "F1", "sens. w/ safety", "spec. w/ safety"]  # fmt: skip


def _ci(entry: Mapping[str, Any] | None, digits: int = 3) -> str:
    if not entry or entry.get("value") is None:
        return "–"
    text = _fmt(entry["value"], digits)
    if entry.get("low") is not None:
        text += (
            f" <span class=muted>[{_fmt(entry['low'], digits)}, "
            f"{_fmt(entry['high'], digits)}]</span>"
        )
    return text


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th scope=col>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _model_card(run: Mapping[str, Any], table: Mapping[str, Any]) -> str:
    model = str(run.get("model", ""))
    notice = run.get("model_notice") or ""
    builtin = model.startswith("builtin") or "reference" in str(run.get("model_id", ""))
    limits = []
    if builtin:
        limits.append(
            "The reference model is trained only on synthetic radiographs rendered "
            "from one CT. Figures on synthetic studies say nothing about real "
            "patients; its real-image figures are what they are, stated below."
        )
    unscored = [c for c, e in table["per_finding"].items() if not e["scored_by_model"]]
    if unscored:
        limits.append(f"Never scores: {', '.join(unscored)} (its figures there are blank).")
    never = [
        c
        for c, e in table["per_finding"].items()
        if e["scored_by_model"] and e["n_claimed"] == 0 and e["n_positive"] > 0
    ]
    if never:
        limits.append(
            f"Never claims {', '.join(never)} in this dataset although they are "
            "present: its sensitivity there is 0 whatever its AUROC."
        )
    rare = table.get("rare_findings", [])
    if rare:
        limits.append(
            f"Rare in this dataset (prevalence < 5 %): {', '.join(rare)}; their intervals are wide."
        )
    sites = table["shift"]["sites"]
    total = sum(e["n"] for e in sites.values())
    flagged_n = sum(round(e["ood_flagged_share"] * e["n"]) for e in sites.values())
    if total and flagged_n / total > 0.5:
        worst = [s for s, e in sites.items() if e["ood_flagged_share"] > 0.5]
        where = "at every site" if len(worst) == len(sites) else f"at {', '.join(worst[:8])}"
        limits.append(
            f"{flagged_n} of {total} images ({flagged_n / total:.0%}) are flagged out "
            f"of the model's distribution, {where}."
        )
    if table["n_errors"]:
        limits.append(f"{table['n_errors']} case(s) could not be read and are left out.")
    checks = table.get("claim_checks")
    if checks and checks["claims"]:
        unchecked = checks["verdicts"]["not_checked"]["n"]
        if unchecked:
            limits.append(
                f"{unchecked} of {checks['claims']} claims ({unchecked / checks['claims']:.0%}) "
                "were not checked by the safety layer (no evidence valid for the film): the "
                "figures with safety carry them as the model wrote them."
            )
    if checks:
        failed, abstained = checks["drafts"]["failed"], checks["drafts"]["abstained"]
        if failed or abstained:
            limits.append(
                f"{failed} draft(s) failed and {abstained} abstained: they state nothing, "
                "so their present findings count as missed and their absent ones are not "
                "counted as correctly normal."
            )
    items = "".join(f"<li>{html.escape(x)}</li>" for x in limits)
    return (
        "<h2>Model card</h2>"
        f"<p><b>Model:</b> {html.escape(model)} ({html.escape(str(run.get('model_id', '')))})"
        f"<br><b>Notice:</b> {html.escape(str(notice)) or '–'}</p>"
        "<p><b>Intended use:</b> drafting chest X-ray reports of adult frontal (PA/AP) "
        "radiographs for a qualified reader, who reviews, edits and signs them; every positive "
        "claim is checked by the safety layer. Not for unsupervised use; not a diagnosis.</p>"
        f"<p><b>Known limits:</b></p><ul>{items or '<li>none stated</li>'}</ul>"
    )


def _summary_rows(table: Mapping[str, Any]) -> list[list[str]]:
    s = table["summary"]
    keys = [*s["draft"], *(k for k in s["safety"] if k not in s["draft"])]
    return [[_NAMES.get(k, k), _ci(s["draft"].get(k)), _ci(s["safety"].get(k))] for k in keys]


VERDICT_TEXT = {
    "supported": "supported",
    "unsupported": "unsupported (flagged)",
    "contradicted": "contradicted (flagged)",
    "unverifiable": "unverifiable (a valid verifier looked, undecided)",
    "not_checked": "not checked (no evidence valid for the film)",
}


def _claim_checks_html(table: Mapping[str, Any]) -> str:
    """Each verdict's count and share of the claims; not checked is its own category."""
    block = table.get("claim_checks")
    if not block:
        return ""
    rows = [
        [
            html.escape(VERDICT_TEXT.get(v, v)),
            str(e["n"]),
            _ci(e["share"]),
            str(e["n_positive"]),
            _ci(e["share_positive"]),
        ]
        for v, e in block["verdicts"].items()
    ]
    drafts = block["drafts"]
    unchecked = block["verdicts"].get("not_checked", {"n": 0})
    notice = ""
    if block["claims"] and unchecked["n"]:
        whole = unchecked["n"] == block["claims"]
        notice = (
            f"<p class={'gap' if whole else 'notice'}><b>{unchecked['n']} of "
            f"{block['claims']} claims were not checked</b>"
            f"{' — none of the claims could be checked' if whole else ''}: no evidence valid "
            "for these films (a verifier inside its validated domain, for a finding type it was "
            "validated for) spoke about them. They reach the reader as the model wrote them, "
            "marked not checked; none is counted as supported, and the “with safety” figures "
            "carry them unchanged from the draft.</p>"
        )
    return (
        "<h2>Claim checks: what the safety layer could check</h2>"
        + notice
        + f"<p>{block['n_cases']} studies handed to the reader; {block['claims']} claims "
        f"({block['positive_claims']} positive), {block['flagged_positive']} positive claims "
        f"flagged, {block['invalid_output']} stated invalidly by the model. Drafts failed "
        f"(degenerate output, nothing read from them): {drafts['failed']}; abstained (the film "
        f"is outside the model's validated domain): {drafts['abstained']}; drafts whose claims "
        f"were all not checked: {drafts['all_claims_not_checked']}; studies outside the "
        f"verifier's validated domain: {drafts['verifier_out_of_domain']}.</p>"
        + _table(
            ["verdict", "claims", "share [95 % CI]", "positive claims", "share [95 % CI]"],
            rows,
        )
    )


def compare_runs(this: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    """Headline figures of two runs side by side, with the gap (this − other)."""

    def headline(t: Mapping[str, Any]) -> dict[str, float | None]:
        out = {
            k: t["summary"]["draft"][k]["value"]
            for k in (
                "macro_auroc",
                "sensitivity",
                "specificity",
                "ece",
                "brier",
                "hallucination_rate",
                "omission_rate",
            )
        }
        for code, z in t.get("zones", {}).items():
            out[f"zone_auroc_{code}"] = z["auroc"]["value"]
        ood = [e["ood_mean"] for e in t["shift"]["sites"].values() if e["ood_mean"] is not None]
        out["ood_mean"] = sum(ood) / len(ood) if ood else None
        flagged = [e["ood_flagged_share"] * e["n"] for e in t["shift"]["sites"].values()]
        total = sum(e["n"] for e in t["shift"]["sites"].values())
        out["ood_flagged_share"] = sum(flagged) / total if total else None
        return out

    a, b = headline(this), headline(other)
    keys = [k for k in a if k in b] + [k for k in a if k not in b] + [k for k in b if k not in a]
    rows = {
        k: {"this": a.get(k), "other": b.get(k), "gap": _difference(a.get(k), b.get(k))}
        for k in keys
    }
    return {"this": this["run"]["dataset"], "other": other["run"]["dataset"], "figures": rows}


def _difference(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def _zone_pair(comparison: Mapping[str, Any]) -> tuple[str, str] | None:
    """The opacity zone figure of each run: real Brixia opacity vs synthetic consolidation."""
    figures = comparison["figures"]
    mine = [k for k in figures if k.startswith("zone_auroc_") and figures[k]["this"] is not None]
    theirs = [k for k in figures if k.startswith("zone_auroc_") and figures[k]["other"] is not None]
    for left in ("zone_auroc_lung_opacity", "zone_auroc_consolidation"):
        for right in ("zone_auroc_lung_opacity", "zone_auroc_consolidation"):
            if left in mine and right in theirs:
                return left, right
    return None


def _comparison_html(comparison: Mapping[str, Any]) -> str:
    figures = comparison["figures"]
    rows = [
        [html.escape(k.replace("_", " ")), _fmt(v["this"]), _fmt(v["other"]), _fmt(v["gap"])]
        for k, v in figures.items()
    ]
    this_name, other_name = comparison["this"], comparison["other"]
    this_real = not str(this_name).startswith("synth:")
    other_real = not str(other_name).startswith("synth:")
    statement = ""
    pair = _zone_pair(comparison)
    parts = []
    m = figures.get("macro_auroc", {})
    if m.get("this") is not None and m.get("other") is not None:
        parts.append(
            f"macro AUROC {m['this']:.3f} on {this_name} against {m['other']:.3f} on "
            f"{other_name} (a difference of {m['this'] - m['other']:+.3f})"
        )
    if pair:
        left, right = figures[pair[0]]["this"], figures[pair[1]]["other"]
        parts.append(
            f"zone-level opacity AUROC {left:.3f} ({pair[0][11:]}) against "
            f"{right:.3f} ({pair[1][11:]})"
        )
    if this_real != other_real:
        real, synth = (this_name, other_name) if this_real else (other_name, this_name)
        statement = (
            f"<div class=gap><b>Synthetic-to-real gap.</b> The model scores "
            f"{'; '.join(parts)}. Figures on synthetic studies ({html.escape(str(synth))}) do "
            f"not carry over to real radiographs ({html.escape(str(real))}): judge the model "
            "by its real-image figures. A model trained only on synthetic images is not fit "
            "for real patients on this evidence.</div>"
        )
    elif parts:
        statement = f"<p>{html.escape('; '.join(parts))}.</p>"
    return (
        "<h2>Comparison with another run</h2>"
        + statement
        + _table(["figure", f"this: {this_name}", f"other: {other_name}", "this − other"], rows)
    )


def render_html(table: Mapping[str, Any], comparison: Mapping[str, Any] | None = None) -> str:
    """The report as one HTML page (see the module docstring)."""
    run = table["run"]
    plots = draw_plots(table)
    pf = table["per_finding"]
    finding_rows = [
        [
            html.escape(c),
            str(e["n_positive"]),
            str(e["n_negative"]),
            _fmt(e["prevalence"]),
            _ci(e["draft"]["auroc"]),
            _ci(e["draft"]["sensitivity"]),
            _ci(e["draft"]["specificity"]),
            _ci(e["draft"]["f1"]),
            _ci(e["safety"]["sensitivity"]),
            _ci(e["safety"]["specificity"]),
        ]
        for c, e in pf.items()
    ]
    rare = [r for r in finding_rows if pf[r[0]]["rare"]]
    spatial_rows = [[k.replace("_", " "), _ci(v), str(v["n"])] for k, v in table["spatial"].items()]
    zone_rows = [
        [
            html.escape(c),
            _ci(z["auroc"]),
            str(z["n_cases"]),
            str(z["n_positive_zones"]),
            " ".join(f"{k.replace('_', ' ')} {_fmt(v, 2)}" for k, v in z["per_zone"].items()),
        ]
        for c, z in table["zones"].items()
    ]
    subtle_html = ""
    for code, entry in table["subtle"].items():
        for axis in ("by_size", "by_contrast"):
            rows = [
                [html.escape(r["bin"]), str(r["n"]), _ci(r["draft"]), _ci(r["safety"])]
                for r in entry.get(axis, [])
            ]
            if rows:
                subtle_html += (
                    f"<h3>{html.escape(code)} — sensitivity {axis.replace('_', ' ')}</h3>"
                )
                subtle_html += _table(["bin", "lesions", "draft", "with safety"], rows)
    gap_rows = []
    for variant in ("draft", "safety"):
        for feature, block in table["fairness"][variant].items():
            if feature == "min_group":
                continue
            for metric, g in block.get("gaps", {}).items():
                gap_rows.append(
                    [
                        f"{variant}: {feature}",
                        _NAMES.get(metric, metric),
                        gap_groups(g),
                        _ci(g["gap"]),
                        "<b>yes</b>" if g["interval_excludes_zero"] else "no",
                    ]
                )
    group_rows = []
    for feature, block in table["fairness"]["draft"].items():
        if feature == "min_group":
            continue
        for group, f in block.get("groups", {}).items():
            group_rows.append(
                [
                    html.escape(f"{feature}: {group}"),
                    str(f["n"]),
                    _ci(f["macro_auroc"]),
                    _ci(f["sensitivity"]),
                    _ci(f["specificity"]),
                    _ci(f["ece"]),
                    _ci(f["hallucination_rate"]),
                    _ci(f["critical_miss_rate"]),
                ]
            )
    site_rows = [
        [
            html.escape(s),
            str(e["n"]),
            _fmt(e["ood_mean"], 2),
            _fmt(e["ood_median"], 2),
            _fmt(e["ood_flagged_share"]),
            _ci(e.get("macro_auroc")),
        ]
        for s, e in table["shift"]["sites"].items()
    ]
    latency_rows = [
        [k, _fmt(v["p50_ms"], 1), _fmt(v["p95_ms"], 1)] for k, v in table["latency"].items()
    ]
    builtin_line = ""
    if str(run.get("model", "")).startswith("builtin"):
        builtin_line = (
            "<p class=notice><b>The reference model (builtin) is trained only on "
            "synthetic radiographs rendered from one CT.</b> It is also the default "
            "verifier of the safety layer, so “with safety” here checks the model "
            "against itself.</p>"
        )
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>radloop eval — {html.escape(str(run['model']))} on "
        f"{html.escape(str(run['dataset']))}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>radloop evaluation: {html.escape(str(run['model']))} on "
        f"{html.escape(str(run['dataset']))}</h1>",
        "<p class=notice>Assistant output for review by a qualified reader; not a diagnosis. "
        "Figures are estimates on this dataset with 95 % case-bootstrap intervals "
        f"({table['bootstrap']['resamples']} resamples; breakdowns "
        f"{table['bootstrap']['subgroup_resamples']}).</p>",
        builtin_line,
        f"<p>{html.escape(str(run.get('description') or ''))}. {table['n_cases']} cases, "
        f"{table['n_labelled']} with labels ({table['n_labelled_in_scope']} not refused by the "
        f"scope guard); verifier {html.escape(str(run.get('verifier')))}; calibration "
        f"{html.escape(str(run.get('calibration') or 'none (verifier probability as is)'))}; "
        f"created {html.escape(str(run.get('created', '')))}.</p>",
        _CONTENTS,
        _comparison_html(comparison) if comparison else "",
        _model_card(run, table),
        "<h2>Summary: the model alone and with the safety layer</h2>",
        "<p class=muted>With safety: claims the safety layer flags count as withdrawn, "
        "flagged possible omissions as found, refused studies are left out; a claim that was "
        "not checked stays as the model wrote it (it is not counted as supported); "
        "hallucinations with safety are the ones that reach the reader unflagged. A failed or "
        "abstained draft states nothing: never read as normal.</p>",
        _table(["figure", "draft", "with safety"], _summary_rows(table)),
        _claim_checks_html(table),
        "<h2>Per finding</h2>",
        _table(
            FINDING_COLUMNS,
            finding_rows,
        ),
        plots.get("roc", ""),
        "<h2>Rare findings (prevalence < 5 %)</h2>",
        _table(
            FINDING_COLUMNS,
            rare,
        )
        if rare
        else "<p>None in this dataset.</p>",
        "<h2>Calibration</h2>",
        plots["reliability"],
        "<h2>Hallucinations and omissions</h2>",
        plots["hallucinations"],
        "<h2>Spatial accuracy (true-positive claims)</h2>",
        _table(["figure", "value [95 % CI]", "claims"], spatial_rows),
        "<h2>Zone-level AUROC</h2>",
        _table(
            ["finding", "AUROC (pooled zones)", "cases", "positive zones", "per zone"], zone_rows
        )
        if zone_rows
        else "<p>No zone labels in this dataset.</p>",
        "<h2>Subtle findings: sensitivity by lesion size and contrast</h2>",
        subtle_html or "<p>No per-lesion truth in this dataset (synthetic lab only).</p>",
        "<h2>Fairness: every figure per subgroup</h2>",
        plots.get("forest", ""),
        _table(
            [
                "subgroup",
                "n",
                "macro AUROC",
                "sensitivity",
                "specificity",
                "ECE",
                "hallucination",
                "critical miss",
            ],
            group_rows,
        ),
        "<h3>Largest gap per figure (interval of best − worst group; each figure's best group "
        "is the reference)</h3>",
        _table(
            [
                "subgroups",
                "figure",
                "worst group against the best",
                "gap [95 % CI]",
                "excludes zero",
            ],
            gap_rows,
        ),
        "<h2>Shift across sites</h2>",
        plots.get("sites", ""),
        site_words(table),
        _table(
            ["site", "cases", "OOD mean", "OOD median", "flagged OOD", "draft macro AUROC"],
            site_rows,
        ),
        "<h2>Scope guard</h2>",
        scope_html(table),
        "<h2>Latency per case</h2>",
        _table(["stage", "p50 ms", "p95 ms"], latency_rows),
        cost_html(table.get("cost")),
        f"<p class=muted>Scored in {table['scoring_seconds']} s. Every number is in "
        "metrics.json beside this file.</p></main></body></html>",
    ]
    top, sections = "\n".join(parts).split(_CONTENTS)
    nav, sections = with_contents(sections)
    return top + nav + sections


def write_report(
    out: Path, table: Mapping[str, Any], comparison: Mapping[str, Any] | None = None
) -> tuple[Path, Path]:
    """Write ``metrics.json`` and ``report.html`` into ``out``; their paths."""
    payload = dict(table)
    if comparison is not None:
        payload["comparison"] = comparison
    json_path, html_path = out / "metrics.json", out / "report.html"
    json_path.write_text(
        json.dumps(_clean(payload), indent=1, default=str, allow_nan=False), encoding="utf-8"
    )
    html_path.write_text(render_html(table, comparison), encoding="utf-8")
    return json_path, html_path


def _clean(value: Any) -> Any:
    """NaN and infinities as null: JSON has no NaN."""
    import math

    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
