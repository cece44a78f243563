"""Small numpy metrics shared by training (validation) and the benchmark."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["auroc", "best_threshold"]

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
