"""Vectorised case bootstrap: every figure for every resample in a few matrix products.

A resample of the cases is a row of counts ``W[r, i]`` (how often case ``i`` was drawn); row 0
is all ones, the figure itself. A figure that is a ratio of sums over cases (sensitivity, a
hallucination rate, ECE's bin sums) is then ``W @ numerator / W @ denominator``; AUROC is the
Mann–Whitney statistic with those counts as weights. So B resamples cost B weighted sums, not
B recomputations. Intervals are percentile intervals (Efron and Tibshirani 1993, ch. 13).

The draws are ``numpy.random.default_rng(seed).integers(0, n, size=(B, n))``: anyone can
redraw the same resamples and recompute the intervals with their own code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "FloatArray",
    "bootstrap_weights",
    "divide",
    "interval",
    "ratio",
    "weighted_auroc",
]

FloatArray = npt.NDArray[np.float64]


def bootstrap_weights(n: int, resamples: int, seed: int) -> FloatArray:
    """(1 + B) x n draw counts: row 0 all ones (the point estimate), then B resamples."""
    rows = np.ones((1 + resamples, n), dtype=np.float64)
    if resamples == 0 or n == 0:
        return rows
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    flat = draws + (np.arange(resamples) * n)[:, None]
    rows[1:] = np.bincount(flat.ravel(), minlength=resamples * n).reshape(resamples, n)
    return rows


def ratio(weights: FloatArray, numerator: npt.ArrayLike, denominator: npt.ArrayLike) -> FloatArray:
    """``Σ w·num / Σ w·den`` per row; NaN where the denominator is 0."""
    num = weights @ np.asarray(numerator, dtype=np.float64)
    den = weights @ np.asarray(denominator, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def divide(num: FloatArray, den: FloatArray) -> FloatArray:
    """``num / den`` with NaN where ``den`` is 0 (weighted sums already taken)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def weighted_auroc(
    weights: FloatArray, labels: npt.ArrayLike, scores: npt.ArrayLike, *, chunk: int = 128
) -> FloatArray:
    """AUROC per row of ``weights`` (R x m, one weight per element), ties counted one half.

    ``labels`` are 0/1 and ``scores`` real, one per element. Rows without both classes are NaN.
    For each positive, the weight of negatives scored below it is read from the cumulative
    weight of the sorted negatives (the Mann–Whitney U statistic, weighted).
    """
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    out = np.full(weights.shape[0], np.nan)
    if not y.any() or y.all():
        return out
    neg_order = np.flatnonzero(~y)[np.argsort(s[~y], kind="mergesort")]
    pos_index = np.flatnonzero(y)
    neg_sorted = s[neg_order]
    below = np.searchsorted(neg_sorted, s[pos_index], side="left")
    upto = np.searchsorted(neg_sorted, s[pos_index], side="right")
    ties = bool(np.any(upto != below))
    for lo in range(0, weights.shape[0], chunk):
        block = weights[lo : lo + chunk]
        cum = np.zeros((block.shape[0], neg_order.size + 1))
        np.cumsum(block[:, neg_order], axis=1, out=cum[:, 1:])
        w_pos = block[:, pos_index]
        credit = cum[:, below]
        if ties:
            credit = 0.5 * (credit + cum[:, upto])
        num = np.einsum("ij,ij->i", w_pos, credit)
        den = w_pos.sum(axis=1) * cum[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[lo : lo + chunk] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out


def interval(values: FloatArray) -> dict[str, Any]:
    """The figure (row 0) and its 95 % percentile interval (rows 1..), NaN-free as None."""
    point = float(values[0])
    rest = values[1:]
    rest = rest[~np.isnan(rest)]
    if np.isnan(point):
        return {"value": None, "low": None, "high": None}
    if rest.size == 0:
        return {"value": point, "low": None, "high": None}
    low, high = np.percentile(rest, [2.5, 97.5])
    return {"value": point, "low": float(low), "high": float(high)}
