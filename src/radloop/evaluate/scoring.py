"""Scorers: from :class:`~radloop.evaluate.arrays.EvalArrays` to the run's ``MetricTable``.

Pure numpy over per-case arrays (no images, no model), so a 10,000-case run is scored in
seconds. Every figure comes with a 95 % case-bootstrap interval (:mod:`.bootstrap`); each is
given twice where the safety layer changes it: ``draft`` (the model alone) and ``safety`` (the
draft as the safety layer hands it to the reviewer; definitions in :mod:`.arrays`).

Calibration: ECE with 15 equal-width bins (Guo et al., ICML 2017; as ``radloop bench safety``)
and Brier score over every (case, labelled code) pair. Rare findings: prevalence < 5 % among
the labelled cases. Fairness: every summary figure per subgroup (sex, age band, site, view)
through Fairlearn's ``MetricFrame``; the gap is between the best and the worst group of at
least ``min_group`` cases, with its own bootstrap interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.evaluate.arrays import VERDICTS, ZONES, EvalArrays
from radloop.evaluate.bootstrap import (
    FloatArray,
    bootstrap_weights,
    divide,
    interval,
    ratio,
    weighted_auroc,
)
from radloop.evaluate.summary import (
    ECE_BINS,
    LOWER_IS_BETTER,
    SUMMARY_METRICS,
    arm_outputs,
    auroc_rows,
    code_aurocs,
    per_code_counts,
    summary_metrics,
)

__all__ = [
    "ECE_BINS",
    "METRICS_SCHEMA",
    "RARE_PREVALENCE",
    "SUMMARY_METRICS",
    "ScoringOptions",
    "score_arrays",
    "summary_metrics",
]

METRICS_SCHEMA = "radloop.evaluate/metrics-v1"
RARE_PREVALENCE = 0.05
SIZE_BINS_MM = (0.0, 10.0, 20.0, 30.0, np.inf)
CONTRAST_BINS = (0.0, 3.0, 10.0, np.inf)  # percent of the display range
CONTRAST_LABELS = ("faint (<3 %)", "moderate (3–10 %)", "conspicuous (≥10 %)")
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ScoringOptions:
    """How intervals are drawn: ``resamples`` case resamples from ``seed`` for the headline
    figures (summary, per finding, calibration, spatial), the first ``subgroup_resamples`` of
    them for the breakdowns (subgroups, sites, zones, lesion bins)."""

    resamples: int = 1000
    subgroup_resamples: int = 200
    seed: int = 0
    min_group: int = 10


def _intervals(values: Mapping[str, FloatArray]) -> dict[str, dict[str, Any]]:
    return {k: interval(v) for k, v in values.items()}


def _per_finding(
    a: EvalArrays,
    views: Mapping[str, tuple[FloatArray, IntArray]],
    aurocs: Mapping[str, list[FloatArray]],
) -> dict[str, Any]:
    """Per code: counts, prevalence and, per variant (its weights and cases), the figures."""
    out: dict[str, Any] = {}
    y = a.y[views["draft"][1]]
    sums = {}
    for variant, safe in (("draft", False), ("safety", True)):
        wv, iv = views[variant]
        counts = per_code_counts(a, iv, safe)
        stacked = wv @ np.hstack([counts[k] for k in ("tp", "fn", "fp", "tn")])
        k = len(a.codes)
        sums[variant] = {
            name: stacked[:, i * k : (i + 1) * k] for i, name in enumerate(("tp", "fn", "fp", "tn"))
        }
    for j, code in enumerate(a.codes):
        known = ~np.isnan(y[:, j])
        n_pos = int(np.sum(y[known, j] == 1))
        n_neg = int(np.sum(y[known, j] == 0))
        entry: dict[str, Any] = {
            "n_labelled": int(known.sum()),
            "n_positive": n_pos,
            "n_negative": n_neg,
            "prevalence": float(n_pos / known.sum()) if known.any() else None,
            "scored_by_model": bool(a.scored[j]),
            "n_claimed": int(a.claimed[views["draft"][1], j].sum()),
        }
        prevalence = entry["prevalence"]
        entry["rare"] = bool(prevalence is not None and 0 < prevalence < RARE_PREVALENCE)
        for variant in ("draft", "safety"):
            tp, fn, fp, tn = (sums[variant][k][:, j] for k in ("tp", "fn", "fp", "tn"))
            figures = {
                "auroc": aurocs[variant][j],
                "sensitivity": divide(tp, tp + fn),
                "specificity": divide(tn, tn + fp),
                "f1": divide(2 * tp, 2 * tp + fp + fn),
            }
            entry[variant] = _intervals(figures)
        out[code] = entry
    return out


def reliability_bins(a: EvalArrays, idx: IntArray, safe: bool) -> list[dict[str, float | int]]:
    """Per equal-width bin: count, mean predicted probability, observed frequency."""
    _, scores = arm_outputs(a, safe)
    y, s = a.y[idx], scores[idx]
    known = ~np.isnan(y)
    p, t = s[known], y[known]
    bins = np.clip((p * ECE_BINS).astype(int), 0, ECE_BINS - 1)
    out: list[dict[str, float | int]] = []
    for b in range(ECE_BINS):
        m = bins == b
        if m.any():
            out.append(
                {
                    "low": b / ECE_BINS,
                    "high": (b + 1) / ECE_BINS,
                    "n": int(m.sum()),
                    "mean_probability": float(p[m].mean()),
                    "observed": float(t[m].mean()),
                }
            )
    return out


def roc_points(y: FloatArray, s: FloatArray, max_points: int = 200) -> dict[str, list[float]]:
    """The ROC curve (false and true positive rates at each threshold), thinned for plots."""
    known = ~np.isnan(y)
    yk, sk = y[known] == 1, s[known]
    if not yk.any() or yk.all():
        return {"fpr": [], "tpr": []}
    order = np.argsort(-sk, kind="mergesort")
    ys, ss = yk[order], sk[order]
    last = np.r_[np.flatnonzero(ss[1:] != ss[:-1]), ys.size - 1]
    tpr = np.r_[0.0, np.cumsum(ys)[last] / ys.sum()]
    fpr = np.r_[0.0, np.cumsum(~ys)[last] / (~ys).sum()]
    if tpr.size > max_points:
        keep = np.unique(np.linspace(0, tpr.size - 1, max_points).astype(int))
        tpr, fpr = tpr[keep], fpr[keep]
    return {"fpr": [round(float(v), 5) for v in fpr], "tpr": [round(float(v), 5) for v in tpr]}


def _spatial(a: EvalArrays, w: FloatArray, idx: IntArray) -> dict[str, Any]:
    sp = {k: v[idx] for k, v in a.spatial.items()}
    figures = {
        "side_accuracy": (sp["side_ok"], sp["side_n"]),
        "zone_exact_accuracy": (sp["zone_ok"], sp["zone_n"]),
        "zone_jaccard": (sp["zone_jaccard"], sp["zone_n"]),
        "lobe_accuracy": (sp["lobe_ok"], sp["lobe_n"]),
        "vertebral_level_accuracy": (sp["level_ok"], sp["level_n"]),
        "vertebral_level_within_one": (sp["level_within1"], sp["level_n"]),
        "size_mae_mm": (sp["size_abs_error_mm"], sp["size_n"]),
    }
    out: dict[str, Any] = {}
    for name, (num, den) in figures.items():
        out[name] = {**interval(ratio(w, num, den)), "n": int(den.sum())}
    return out


def _zones(a: EvalArrays, w: FloatArray, idx: IntArray) -> dict[str, Any]:
    """Zone-level AUROC per code, pooled over the six zones (cluster bootstrap by case); per
    zone the figure alone."""
    out: dict[str, Any] = {}
    wz = w
    for code, (zy, zs) in a.zone.items():
        y, s = zy[idx], zs[idx]
        known = ~np.isnan(y)
        if not known.any():
            continue
        rows, cols = np.nonzero(known)
        pooled = weighted_auroc(wz[:, rows], y[rows, cols], s[rows, cols])
        per_zone = {
            zone: interval(auroc_rows(wz[:1], y[:, k], s[:, k]))["value"]
            for k, zone in enumerate(ZONES)
        }
        out[code] = {
            "auroc": interval(pooled),
            "per_zone": per_zone,
            "n_cases": int(known.any(axis=1).sum()),
            "n_positive_zones": int(np.sum(y[known] == 1)),
        }
    return out


def _bin_index(values: FloatArray, edges: Sequence[float]) -> IntArray:
    return np.asarray(np.digitize(values, edges[1:-1]), dtype=np.int64)


def _subtle(a: EvalArrays, w: FloatArray, idx: IntArray) -> dict[str, Any]:
    """Lesion sensitivity by size and contrast bin (synthetic lab: exact per-lesion truth)."""
    lesions = a.lesions
    codes = list(lesions.get("code", []))
    if not codes:
        return {}
    keep = np.isin(np.asarray(lesions["case"], dtype=np.int64), idx)
    position = {int(c): k for k, c in enumerate(idx)}
    case = np.asarray(lesions["case"], dtype=np.int64)
    size = np.asarray(lesions["size_mm"])
    contrast = np.asarray(lesions["contrast"])
    out: dict[str, Any] = {}
    size_labels = ["<10 mm", "10–20 mm", "20–30 mm", "≥30 mm"]
    for code in sorted(set(codes)):
        mine = keep & (np.asarray(codes) == code)
        entry: dict[str, Any] = {"n": int(mine.sum())}
        for axis, values, edges, labels in (
            ("by_size", size, SIZE_BINS_MM, size_labels),
            ("by_contrast", contrast, CONTRAST_BINS, list(CONTRAST_LABELS)),
        ):
            rows = []
            b = _bin_index(values, edges)
            for k, label in enumerate(labels):
                sel = mine & (b == k) & ~np.isnan(values)
                if not sel.any():
                    continue
                cols = np.asarray([position[int(c)] for c in case[sel]])
                row: dict[str, Any] = {"bin": label, "n": int(sel.sum())}
                for variant, key in (("draft", "detected"), ("safety", "detected_safe")):
                    num = np.bincount(
                        cols, weights=np.asarray(lesions[key])[sel], minlength=len(idx)
                    )
                    den = np.bincount(cols, minlength=len(idx)).astype(float)
                    row[variant] = interval(ratio(w, num, den))
                rows.append(row)
            entry[axis] = rows
        out[code] = entry
    return out


def _groups(labels: Sequence[str], idx: IntArray, min_group: int) -> dict[str, IntArray]:
    values = np.asarray(labels, dtype=object)[idx]
    out = {}
    for g in sorted(set(values.tolist())):
        members = idx[values == g]
        if len(members) >= min_group and g != "unknown":
            out[str(g)] = members
    return out


def _metric_frame(
    a: EvalArrays, groups: Mapping[str, IntArray], feature: str, safe: bool
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Group figures and between-group differences through Fairlearn's MetricFrame."""
    try:
        from fairlearn.metrics import MetricFrame  # type: ignore[import-untyped]
    except ImportError:
        from radloop.errors import MissingExtraError

        raise MissingExtraError("fairlearn", "evaluate", "Subgroup figures") from None
    members = np.concatenate(list(groups.values()))
    sensitive = np.asarray(a.attributes[feature], dtype=object)[members]
    points: dict[bytes, dict[str, FloatArray]] = {}

    def point(name: str) -> Callable[[Any, Any], float]:
        def metric(y_true: Any, y_pred: Any) -> float:
            # MetricFrame hands each group's cases; their figures are computed once (all
            # names at a time) from the cases alone, without the bootstrap.
            cases = np.sort(np.asarray(y_true, dtype=np.int64))
            key = cases.tobytes()
            if key not in points:
                points[key] = summary_metrics(a, np.ones((1, len(cases))), cases, safe)
            return float(points[key][name][0])

        return metric

    frame = MetricFrame(
        metrics={name: point(name) for name in SUMMARY_METRICS},
        y_true=members,
        y_pred=members,
        sensitive_features=sensitive,
    )
    by_group = {
        str(g): {name: float(frame.by_group.loc[g, name]) for name in SUMMARY_METRICS}
        for g in groups
    }
    difference = frame.difference(method="between_groups")
    return by_group, {name: float(difference[name]) for name in SUMMARY_METRICS}


def _fairness(
    a: EvalArrays, w: FloatArray, idx: IntArray, min_group: int, safe: bool, features: Sequence[str]
) -> dict[str, Any]:
    """Every summary figure per subgroup, and the largest gap with its interval.

    The draft's group figures come from Fairlearn's ``MetricFrame`` (its ``by_group`` and
    ``difference``); the figures with the safety layer are the same computation without it,
    which halves the time on 10,000 cases (both are checked against Fairlearn in the tests).
    """
    position = np.full(a.n, -1, dtype=np.int64)
    position[idx] = np.arange(len(idx))
    out: dict[str, Any] = {}
    for feature in features:
        groups = _groups(a.attributes[feature], idx, min_group)
        if len(groups) < 2:
            out[feature] = {
                "groups": {},
                "gaps": {},
                "note": f"fewer than two groups of ≥ {min_group} cases",
            }
            continue
        rows = {g: summary_metrics(a, w[:, position[m]], m, safe) for g, m in groups.items()}
        if safe:
            by_group = {g: {n: float(r[n][0]) for n in SUMMARY_METRICS} for g, r in rows.items()}
            differences = None
        else:
            by_group, differences = _metric_frame(a, groups, feature, safe)
        table: dict[str, Any] = {
            g: {
                "n": len(groups[g]),
                **{name: interval(rows[g][name]) for name in SUMMARY_METRICS},
            }
            for g in groups
        }
        gaps: dict[str, Any] = {}
        for name in SUMMARY_METRICS:
            group_values = {g: by_group[g][name] for g in groups}
            finite = {g: v for g, v in group_values.items() if not np.isnan(v)}
            if len(finite) < 2:
                continue
            # Two distinct groups even when every group has the same value (a stable sort).
            ordered = sorted(finite, key=lambda g: finite[g])
            lo, hi = ordered[0], ordered[-1]
            gap = interval(rows[hi][name] - rows[lo][name])
            excludes = bool(gap["low"] is not None and gap["low"] > 0)
            better, worse = (lo, hi) if name in LOWER_IS_BETTER else (hi, lo)
            gaps[name] = {
                "highest": hi,
                "lowest": lo,
                "better_group": better,
                "worse_group": worse,
                "gap": gap,
                "interval_excludes_zero": excludes,
                "tied": bool(finite[hi] == finite[lo]),
                "fairlearn_difference": None if differences is None else differences[name],
            }
        out[feature] = {"groups": table, "gaps": gaps}
    return out


def _site_auroc(a: EvalArrays, w: FloatArray, labelled: IntArray) -> dict[str, Any]:
    """The draft's macro AUROC over the labelled cases of one site, or why it is undefined.

    ``w`` holds the weights of every case (R x n). AUROC needs a positive and a negative
    case of a finding the model scores; a site where no finding has both has no value.
    """
    y = a.y[labelled]
    positives = int(np.nansum(y[:, a.scored] == 1))
    negatives = int(np.nansum(y[:, a.scored] == 0))
    both = [
        j
        for j in range(len(a.codes))
        if a.scored[j] and (y[:, j] == 1).any() and (y[:, j] == 0).any()
    ]
    out: dict[str, Any] = {"n_labelled": len(labelled), "findings_with_both_classes": len(both)}
    if not both:
        why = (
            "no labelled case"
            if not len(labelled)
            else (
                "no finding has both a positive and a negative case "
                f"({positives} positive and {negatives} negative labels)"
            )
        )
        return {**out, "value": None, "low": None, "high": None, "undefined_because": why}
    aurocs = code_aurocs(a, w[:, labelled], labelled, False)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            macro = np.nanmean(np.vstack([aurocs[j] for j in both]), axis=0)
    return {**out, **interval(macro), "undefined_because": None}


def _shift(a: EvalArrays, idx: IntArray, w: FloatArray, labelled: IntArray) -> dict[str, Any]:
    """Out-of-distribution score and the draft's macro AUROC per site (every site, however
    small; the other figures per site are under fairness → site, for sites of min_group)."""
    sites: dict[str, Any] = {}
    labels = np.asarray(a.attributes["site"], dtype=object)
    for site in sorted(set(labels[idx].tolist())):
        members = idx[labels[idx] == site]
        scores = a.ood[members]
        scores = scores[~np.isnan(scores)]
        sites[str(site)] = {
            "n": len(members),
            "ood_mean": float(scores.mean()) if scores.size else None,
            "ood_median": float(np.median(scores)) if scores.size else None,
            "ood_flagged_share": float(a.ood_flagged[members].mean()),
            "macro_auroc": _site_auroc(a, w, labelled[labels[labelled] == site]),
        }
    return {"sites": sites}


def _scope(a: EvalArrays) -> dict[str, Any]:
    outcomes: dict[str, int] = {}
    for s in a.scope:
        outcomes[s] = outcomes.get(s, 0) + 1
    expected = [(e, s) for e, s in zip(a.expected_scope, a.scope, strict=True) if e]
    refused_expected = [s for e, s in expected if e == "refused"]
    accepted_expected = [s for e, s in expected if e == "accepted"]
    unavailable = [s for s in a.scope_problems if s]
    return {
        "unavailable": len(unavailable),
        "unavailable_reason": unavailable[0] if unavailable else None,
        "outcomes": outcomes,
        "expected_refused": len(refused_expected),
        "refused_when_expected": sum(s == "refused" for s in refused_expected),
        "expected_in_scope": len(accepted_expected),
        "refused_when_in_scope": sum(s == "refused" for s in accepted_expected),
    }


def _claim_checks(a: EvalArrays, w: FloatArray, idx: IntArray) -> dict[str, Any]:
    """What the safety layer said about the drafts' claims, over every study it handed on
    (valid and not refused, labelled or not): each verdict's count and share of the claims and
    of the positive claims. ``not_checked`` is a category of its own: a claim no evidence valid
    for the film spoke about, shown to the reader as the model wrote it, never as supported.
    Failed and abstained drafts (which state nothing) are counted beside."""
    every = a.verdicts[idx] if a.verdicts.size else np.zeros((len(idx), len(VERDICTS)))
    positive = a.verdicts_positive[idx] if a.verdicts_positive.size else np.zeros_like(every)
    total, total_pos = every.sum(axis=1), positive.sum(axis=1)
    verdicts: dict[str, Any] = {}
    for v, verdict in enumerate(VERDICTS):
        verdicts[verdict] = {
            "n": int(every[:, v].sum()),
            "share": interval(ratio(w, every[:, v], total)),
            "n_positive": int(positive[:, v].sum()),
            "share_positive": interval(ratio(w, positive[:, v], total_pos)),
        }
    failed = a.failed[idx] if a.failed.size else np.zeros(len(idx), dtype=bool)
    abstained = a.abstained[idx] if a.abstained.size else np.zeros(len(idx), dtype=bool)
    outside = (
        a.verifier_out_of_domain[idx]
        if a.verifier_out_of_domain.size
        else np.zeros(len(idx), dtype=bool)
    )
    not_checked = VERDICTS.index("not_checked")
    unchecked_drafts = (total > 0) & (every[:, not_checked] == total)
    ones = np.ones(len(idx))
    flagged = a.flagged_positive[idx] if a.flagged_positive.size else np.zeros(len(idx))
    invalid = a.invalid_claims[idx] if a.invalid_claims.size else np.zeros(len(idx))
    return {
        "n_cases": len(idx),
        "claims": int(total.sum()),
        "positive_claims": int(total_pos.sum()),
        "verdicts": verdicts,
        "flagged_positive": int(flagged.sum()),
        "invalid_output": int(invalid.sum()),
        "drafts": {
            "failed": int(failed.sum()),
            "failed_share": interval(ratio(w, failed, ones)),
            "abstained": int(abstained.sum()),
            "abstained_share": interval(ratio(w, abstained, ones)),
            "all_claims_not_checked": int(unchecked_drafts.sum()),
            "verifier_out_of_domain": int(outside.sum()),
        },
    }


def _latency(a: EvalArrays) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, values in a.latency.items():
        v = values[~np.isnan(values)]
        if v.size:
            out[key] = {
                "p50_ms": float(np.median(v) * 1000),
                "p95_ms": float(np.percentile(v, 95) * 1000),
            }
    return out


def score_arrays(a: EvalArrays, options: ScoringOptions | None = None) -> dict[str, Any]:
    """The MetricTable of a run: every figure with its interval (see the module docstring)."""
    options = options or ScoringOptions()
    started = time.perf_counter()
    idx_draft = np.flatnonzero(a.valid & ~np.all(np.isnan(a.y), axis=1))
    idx_safe = np.flatnonzero(a.valid & a.in_scope & ~np.all(np.isnan(a.y), axis=1))
    idx_out = np.flatnonzero(a.valid & a.in_scope)
    w_all = bootstrap_weights(a.n, options.resamples, options.seed)
    w_draft, w_safe = w_all[:, idx_draft], w_all[:, idx_safe]
    sub = min(options.subgroup_resamples, options.resamples) + 1
    aurocs = {
        "draft": code_aurocs(a, w_draft, idx_draft, False),
        "safety": code_aurocs(a, w_safe, idx_safe, True),
    }
    summary = {
        "draft": _intervals(summary_metrics(a, w_draft, idx_draft, False, aurocs["draft"])),
        "safety": _intervals(summary_metrics(a, w_safe, idx_safe, True, aurocs["safety"])),
    }
    views = {"draft": (w_draft, idx_draft), "safety": (w_safe, idx_safe)}
    per_finding = _per_finding(a, views, aurocs)
    features = ("sex", "age_band", "site", "view")
    table: dict[str, Any] = {
        "schema": METRICS_SCHEMA,
        "n_cases": a.n,
        "n_errors": int((~a.valid).sum()),
        "first_error": next((e for e in a.error_messages if e), None),
        "n_labelled": len(idx_draft),
        "n_labelled_in_scope": len(idx_safe),
        "codes": list(a.codes),
        "bootstrap": {
            "resamples": options.resamples,
            "subgroup_resamples": sub - 1,
            "seed": options.seed,
            "draws": "numpy.random.default_rng(seed).integers(0, n, size=(B, n))",
        },
        "summary": summary,
        "per_finding": per_finding,
        "rare_findings": [c for c, e in per_finding.items() if e["rare"]],
        "roc": {
            code: roc_points(a.y[idx_draft, j], a.score[idx_draft, j])
            for j, code in enumerate(a.codes)
            if a.scored[j]
        },
        "calibration": {
            "bins": ECE_BINS,
            "draft": reliability_bins(a, idx_draft, False),
            "safety": reliability_bins(a, idx_safe, True),
        },
        "spatial": _spatial(a, w_draft, idx_draft),
        "zones": _zones(a, w_draft[:sub], idx_draft),
        "subtle": _subtle(a, w_draft[:sub], idx_draft),
        "fairness": {
            "min_group": options.min_group,
            "draft": _fairness(a, w_draft[:sub], idx_draft, options.min_group, False, features),
            "safety": _fairness(a, w_safe[:sub], idx_safe, options.min_group, True, features),
        },
        "shift": _shift(a, np.flatnonzero(a.valid), w_all[:sub], idx_draft),
        "scope": _scope(a),
        "claim_checks": _claim_checks(a, w_all[:, idx_out], idx_out),
        "latency": _latency(a),
    }
    table["scoring_seconds"] = round(time.perf_counter() - started, 3)
    return table
