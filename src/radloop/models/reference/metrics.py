"""Small metrics shared by training (validation) and the benchmarks (the reference model's and
the scope guard's): AUROC, thresholds, and shares with their Wilson intervals."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["auroc", "best_threshold", "counted_share", "wilson_interval"]

F = npt.NDArray[np.floating]


def auroc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the ROC curve (Mann–Whitney U with ties counted half); NaN if one class."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def best_threshold(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """The probability threshold with the highest F1 on a validation set (0.5 if undefined)."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.sum() == 0:
        return 0.5
    best, best_f1 = 0.5, -1.0
    for t in np.unique(np.clip(s, 0.02, 0.98)):
        pred = s >= t
        tp = float((pred & y).sum())
        f1 = 2 * tp / (float(pred.sum()) + float(y.sum()))
        if f1 > best_f1:
            best, best_f1 = float(t), f1
    return best


def wilson_interval(hits: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval for a proportion ``hits / n`` (95 % by default; Wilson 1927,
    the interval Brown, Cai & DasGupta 2001 recommend for small n). ``(nan, nan)`` for n = 0."""
    if not 0 <= hits <= n:
        raise ValueError(f"expected 0 <= hits <= n, got hits={hits}, n={n}")
    if n == 0:
        return float("nan"), float("nan")
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # Exact at the ends (0 of n includes 0, n of n includes 1), where rounding would not be.
    low = 0.0 if hits == 0 else max(0.0, centre - half)
    return low, 1.0 if hits == n else min(1.0, centre + half)


def counted_share(hits: int, n: int) -> dict[str, Any]:
    """How a benchmark reports a share: the count, the total and the 95 % Wilson interval."""
    low, high = wilson_interval(hits, n)
    return {"hits": hits, "n": n, "ci95": [round(low, 4), round(high, 4)]}
