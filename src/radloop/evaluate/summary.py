"""The summary figures of one arm of an evaluation, per bootstrap row of case weights:
AUROC, sensitivity, specificity, F1, calibration and the error rates (metrics.json "summary").
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from radloop.evaluate.arrays import ERROR_TYPES, VERDICTS, EvalArrays
from radloop.evaluate.bootstrap import FloatArray, divide, weighted_auroc

__all__ = [
    "ECE_BINS",
    "LOWER_IS_BETTER",
    "SUMMARY_METRICS",
    "arm_outputs",
    "auroc_rows",
    "code_aurocs",
    "per_code_counts",
    "summary_metrics",
]

ECE_BINS = 15
SUMMARY_METRICS = (
    "macro_auroc",
    "sensitivity",
    "specificity",
    "f1",
    "ece",
    "brier",
    "hallucination_rate",
    "reports_with_hallucination",
    "omission_rate",
    "reports_with_omission",
    "critical_miss_rate",
)
LOWER_IS_BETTER = frozenset(
    {
        "ece",
        "brier",
        "hallucination_rate",
        "reports_with_hallucination",
        "omission_rate",
        "reports_with_omission",
        "critical_miss_rate",
    }
)
IntArray = npt.NDArray[np.int64]


def auroc_rows(w: FloatArray, y: FloatArray, s: FloatArray) -> FloatArray:
    known = ~np.isnan(y)
    return weighted_auroc(w[:, known], y[known], s[known])


def arm_outputs(a: EvalArrays, safe: bool) -> tuple[npt.NDArray[np.bool_], FloatArray]:
    return (a.claimed_safe, a.score_safe) if safe else (a.claimed, a.score)


def per_code_counts(a: EvalArrays, idx: IntArray, safe: bool) -> dict[str, FloatArray]:
    """n x K indicator arrays of true/false positives/negatives."""
    claimed, _ = arm_outputs(a, safe)
    y = a.y[idx]
    c = claimed[idx]
    pos, neg = y == 1, y == 0
    # A failed or abstained draft states nothing: never read as normal (no true negatives).
    stated = a.stated[idx][:, None]
    return {
        "tp": (c & pos).astype(float),
        "fn": (~c & pos).astype(float),
        "fp": (c & neg).astype(float),
        "tn": (~c & neg & stated).astype(float),
    }


def code_aurocs(a: EvalArrays, w: FloatArray, idx: IntArray, safe: bool) -> list[FloatArray]:
    """Per labelled code, AUROC per row of ``w`` (NaN rows for codes the model never scores)."""
    _, scores = arm_outputs(a, safe)
    y, s = a.y[idx], scores[idx]
    return [
        auroc_rows(w, y[:, j], s[:, j]) if a.scored[j] else np.full(len(w), np.nan)
        for j in range(len(a.codes))
    ]


def summary_metrics(
    a: EvalArrays,
    w: FloatArray,
    idx: IntArray,
    safe: bool,
    aurocs: list[FloatArray] | None = None,
) -> dict[str, FloatArray]:
    """Every summary figure per row of ``w`` (R x len(idx), the weights of cases ``idx``)."""
    _, scores = arm_outputs(a, safe)
    y, s = a.y[idx], scores[idx]
    counts = per_code_counts(a, idx, safe)
    tp, fn, fp, tn = (counts[k].sum(axis=1) for k in ("tp", "fn", "fp", "tn"))
    if aurocs is None:
        aurocs = code_aurocs(a, w, idx, safe)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            macro = np.nanmean(np.vstack(aurocs), axis=0) if aurocs else np.full(len(w), np.nan)
    known = ~np.isnan(y)
    p = np.where(known, s, 0.0)
    t = np.where(known, y, 0.0)
    bins = np.clip((p * ECE_BINS).astype(int), 0, ECE_BINS - 1)
    errors = (a.errors_unflagged if safe else a.errors)[idx]
    missed = (a.critical_missed_safe if safe else a.critical_missed)[idx]
    # Every case-additive statistic as one column: one pass over the weights for all.
    columns = {
        "tp": tp,
        "fn": fn,
        "fp": fp,
        "tn": tn,
        "labelled": known.sum(axis=1).astype(float),
        "squared_error": np.where(known, (p - t) ** 2, 0.0).sum(axis=1),
        "claims": a.claims[idx],
        "critical": a.critical[idx],
        "critical_missed": missed,
        "any_hallucination": (errors[:, 0] > 0).astype(float),
        "one": np.ones(len(idx)),
        "any_omission": (fn > 0).astype(float),
        "any_present": ((tp + fn) > 0).astype(float),
        "failed": a.failed[idx].astype(float) if a.failed.size else np.zeros(len(idx)),
        "abstained": a.abstained[idx].astype(float) if a.abstained.size else np.zeros(len(idx)),
    }
    for e, kind in enumerate(ERROR_TYPES):
        columns[kind] = errors[:, e]
    if safe and a.verdicts_positive.size:
        # What the safety layer could check, over the positive claims (never "not checked"
        # counted as supported), and the false findings that reached the reader unchecked.
        columns["positive_claims"] = a.verdicts_positive[idx].sum(axis=1)
        for v, verdict in enumerate(VERDICTS):
            columns[f"verdict_{verdict}"] = a.verdicts_positive[idx, v]
        columns["false_not_checked"] = a.errors_not_checked[idx, 0]
    for b in range(ECE_BINS):
        columns[f"gap{b}"] = np.where(known & (bins == b), p - t, 0.0).sum(axis=1)
    names = list(columns)
    sums = w @ np.column_stack([columns[k] for k in names])
    c = {k: sums[:, i] for i, k in enumerate(names)}
    gaps = np.abs(np.column_stack([c[f"gap{b}"] for b in range(ECE_BINS)])).sum(axis=1)
    out = {
        "macro_auroc": macro,
        "sensitivity": divide(c["tp"], c["tp"] + c["fn"]),
        "specificity": divide(c["tn"], c["tn"] + c["fp"]),
        "f1": divide(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"]),
        "ece": divide(gaps, c["labelled"]),
        "brier": divide(c["squared_error"], c["labelled"]),
        "hallucination_rate": divide(c["false_finding"], c["claims"]),
        "reports_with_hallucination": divide(c["any_hallucination"], c["one"]),
        "omission_rate": divide(c["fn"], c["tp"] + c["fn"]),
        "reports_with_omission": divide(c["any_omission"], c["any_present"]),
        "critical_miss_rate": divide(c["critical_missed"], c["critical"]),
    }
    for kind in ERROR_TYPES:
        out[f"error_rate_{kind}"] = divide(c[kind], c["claims"])
    out["drafts_failed"] = divide(c["failed"], c["one"])
    out["drafts_abstained"] = divide(c["abstained"], c["one"])
    if "positive_claims" in c:
        for verdict in VERDICTS:
            out[f"claims_{verdict}"] = divide(c[f"verdict_{verdict}"], c["positive_claims"])
        out["hallucination_rate_not_checked"] = divide(c["false_not_checked"], c["claims"])
    return out
