"""Figures as ratios of weighted sums, for the vectorised case bootstrap.

A resample of the cases is a row of counts ``W[r, i]`` (how often case ``i`` was drawn; row 0
is all ones, the figure itself; :func:`radloop.stats.bootstrap_weights`). A figure that is a
ratio of sums over cases (sensitivity, a hallucination rate, ECE's bin sums) is then
``W @ numerator / W @ denominator``, so B resamples cost B weighted sums, not B
recomputations. The draws, the weighted AUROC and the percentile intervals live in
:mod:`radloop.stats`; ``bootstrap_weights``, ``weighted_auroc`` and ``interval`` are
re-exported here for one version.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from radloop.stats import FloatArray, bootstrap_weights, weighted_auroc
from radloop.stats import bootstrap_interval as interval

__all__ = [
    "FloatArray",
    "bootstrap_weights",
    "divide",
    "interval",
    "ratio",
    "weighted_auroc",
]


def ratio(weights: FloatArray, numerator: npt.ArrayLike, denominator: npt.ArrayLike) -> FloatArray:
    """``Σ w·num / Σ w·den`` per row; NaN where the denominator is 0."""
    num = weights @ np.asarray(numerator, dtype=np.float64)
    den = weights @ np.asarray(denominator, dtype=np.float64)
    return divide(num, den)


def divide(num: FloatArray, den: FloatArray) -> FloatArray:
    """``num / den`` with NaN where ``den`` is 0 (weighted sums already taken)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
