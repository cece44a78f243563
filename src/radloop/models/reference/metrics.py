"""The F1 threshold that training (validation) picks per finding.

AUROC and shares with their Wilson intervals live in :mod:`radloop.stats`; ``auroc``,
``counted_share`` and ``wilson_interval`` are re-exported here for one version.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from radloop.stats import auroc, counted_share, wilson_interval

__all__ = ["auroc", "best_threshold", "counted_share", "wilson_interval"]


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
