"""The statistics every part of radloop reports with, written once.

- AUROC: the Mann–Whitney U statistic with ties counted one half, plain or weighted per
  bootstrap resample (:func:`auroc`, :func:`weighted_auroc`).
- Proportions with their Wilson score interval (Wilson 1927; the interval Brown, Cai and
  DasGupta 2001 recommend for small n): :func:`wilson_interval`, :func:`wilson_intervals`,
  and :func:`counted_share`, how a benchmark reports a share.
- The case bootstrap as weights: a resample is a row of draw counts, so a figure that is a
  weighted sum costs one matrix product for every resample; intervals are percentile
  intervals (Efron and Tibshirani 1993, ch. 13). The draws are
  ``numpy.random.default_rng(seed).integers(0, n, size=(B, n))``, so anyone can redraw them.
- The logistic function (:func:`sigmoid`).
- Calibration: ECE over 15 equal-width bins (Guo et al., "On calibration of modern neural
  networks", ICML 2017) and the Brier score (Brier, Monthly Weather Review 1950).

Numpy only, beside ``radloop.errors`` at the bottom of the layers: the product and the lab
compute each figure the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt

__all__ = [
    "ECE_BINS",
    "Z95",
    "FloatArray",
    "ReliabilityBin",
    "auroc",
    "bootstrap_interval",
    "bootstrap_weights",
    "brier_score",
    "counted_share",
    "expected_calibration_error",
    "reliability_bins",
    "sigmoid",
    "weighted_auroc",
    "wilson_interval",
    "wilson_intervals",
]

FloatArray = npt.NDArray[np.float64]

Z95 = 1.959963984540054
"""The standard normal's 97.5th percentile: the z of a two-sided 95 % interval."""

_BENCHMARK_Z = 1.959964
"""Z95 to six places, with which the benchmarks' published intervals were computed; their
shares keep it so that those figures reproduce to the last digit."""

ECE_BINS = 15
"""Equal-width bins of the expected calibration error (Guo et al. 2017)."""


# --- the logistic function -------------------------------------------------------------------


@overload
def sigmoid(x: FloatArray, *, limit: float | None = ...) -> FloatArray: ...
@overload
def sigmoid(x: npt.ArrayLike, *, limit: float | None = ...) -> npt.NDArray[np.floating[Any]]: ...
def sigmoid(x: npt.ArrayLike, *, limit: float | None = 60.0) -> npt.NDArray[np.floating[Any]]:
    """``1 / (1 + exp(-x))`` in the input's floating type.

    Logits are first clipped to ``±limit`` so that ``exp`` never overflows (float32 does past
    88); ``limit=None`` clips nothing.
    """
    z = np.asarray(x)
    if limit is not None:
        z = np.clip(z, -limit, limit)
    out: npt.NDArray[np.floating[Any]] = 1.0 / (1.0 + np.exp(-z))
    return out


# --- AUROC -----------------------------------------------------------------------------------


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


def auroc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the ROC curve (Mann–Whitney U with ties counted half); NaN if one class."""
    y = np.asarray(labels, dtype=bool)
    # Unit weights: every count is a whole or half number, so the figure is exact.
    return float(weighted_auroc(np.ones((1, y.size)), y, scores)[0])


# --- proportions -----------------------------------------------------------------------------


def wilson_intervals(
    successes: npt.ArrayLike, totals: npt.ArrayLike, z: float = Z95
) -> tuple[FloatArray, FloatArray]:
    """The Wilson score interval of each proportion ``successes / totals`` (95 % by default).

    Exact at the ends (0 of n includes 0, n of n includes 1), where rounding would not be;
    NaN where the total is 0.
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(totals, dtype=np.float64)
    if np.any((k < 0) | (k > n)):
        raise ValueError(f"expected 0 <= hits <= n, got hits={successes!r}, n={totals!r}")
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = np.where(k == 0, 0.0, np.maximum(0.0, centre - half))
    high = np.where(k == n, 1.0, np.minimum(1.0, centre + half))
    empty = n == 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def wilson_interval(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of one proportion ``hits / n``; ``(nan, nan)`` for n = 0."""
    low, high = wilson_intervals(hits, n, z)
    return float(low), float(high)


def counted_share(hits: int, n: int) -> dict[str, Any]:
    """How a benchmark reports a share: the count, the total and the 95 % Wilson interval."""
    low, high = wilson_interval(hits, n, _BENCHMARK_Z)
    return {"hits": hits, "n": n, "ci95": [round(low, 4), round(high, 4)]}


# --- the case bootstrap ----------------------------------------------------------------------


def bootstrap_weights(n: int, resamples: int, seed: int) -> FloatArray:
    """(1 + B) x n draw counts: row 0 all ones (the point estimate), then B resamples."""
    rows = np.ones((1 + resamples, n), dtype=np.float64)
    if resamples == 0 or n == 0:
        return rows
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    flat = draws + (np.arange(resamples) * n)[:, None]
    rows[1:] = np.bincount(flat.ravel(), minlength=resamples * n).reshape(resamples, n)
    return rows


def bootstrap_interval(values: FloatArray) -> dict[str, Any]:
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


# --- calibration -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """One probability bin: its range, count, mean probability and observed frequency."""

    low: float
    high: float
    count: int
    confidence: float
    frequency: float


def _probabilities_and_labels(
    probabilities: Sequence[float] | FloatArray, labels: Sequence[int] | FloatArray
) -> tuple[FloatArray, FloatArray]:
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if p.shape != y.shape or p.ndim != 1:
        raise ValueError(
            f"expected probabilities and labels of one equal length, got shapes "
            f"{p.shape} and {y.shape}"
        )
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError("expected probabilities in [0, 1]")
    return p, y


def reliability_bins(
    probabilities: Sequence[float] | FloatArray,
    labels: Sequence[int] | FloatArray,
    bins: int = ECE_BINS,
) -> list[ReliabilityBin]:
    """Equal-width bins over [0, 1]; the last bin includes 1.0. Empty bins are kept."""
    p, y = _probabilities_and_labels(probabilities, labels)
    index = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        out.append(
            ReliabilityBin(
                low=b / bins,
                high=(b + 1) / bins,
                count=count,
                confidence=float(p[mask].mean()) if count else 0.0,
                frequency=float(y[mask].mean()) if count else 0.0,
            )
        )
    return out


def expected_calibration_error(
    probabilities: Sequence[float] | FloatArray,
    labels: Sequence[int] | FloatArray,
    bins: int = ECE_BINS,
) -> float:
    """ECE: the count-weighted mean gap between mean probability and frequency per bin."""
    found = reliability_bins(probabilities, labels, bins)
    total = sum(b.count for b in found)
    if total == 0:
        return 0.0
    return sum(b.count * abs(b.confidence - b.frequency) for b in found) / total


def brier_score(
    probabilities: Sequence[float] | FloatArray, labels: Sequence[int] | FloatArray
) -> float:
    """Mean squared difference between probability and outcome (0 is perfect)."""
    p, y = _probabilities_and_labels(probabilities, labels)
    return float(np.mean((p - y) ** 2)) if p.size else 0.0
