"""The Mahalanobis out-of-distribution score over a model's embeddings.

Used by the scope guard's OOD flag and by the reference model's own domain check (where its
embeddings of training-like images lie, ``reference-ood.json``).
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.errors import MissingExtraError

__all__ = ["MahalanobisScorer"]


class MahalanobisScorer:
    """Mahalanobis distance to the training embeddings (Lee et al., NeurIPS 2018).

    The covariance is the Ledoit-Wolf shrinkage estimate (J Multivariate Anal 2004), stable
    with fewer samples than dimensions; the threshold is a quantile of the training scores.
    """

    def __init__(
        self, mean: npt.NDArray[np.float64], precision: npt.NDArray[np.float64], threshold: float
    ) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.precision = np.asarray(precision, dtype=np.float64)
        if self.precision.shape != (self.mean.size, self.mean.size):
            raise ValueError(
                f"expected a {self.mean.size} x {self.mean.size} precision matrix, "
                f"got {self.precision.shape}"
            )
        self._threshold = float(threshold)

    @property
    def threshold(self) -> float:
        return self._threshold

    @classmethod
    def fit(cls, embeddings: npt.ArrayLike, *, quantile: float = 0.99) -> MahalanobisScorer:
        """Fit on training embeddings (N x D); the threshold is their ``quantile`` score."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"expected embeddings as N x D with N >= 2, got shape {x.shape}")
        if not 0.5 <= quantile < 1.0:
            raise ValueError(f'Argument "quantile" must be in [0.5, 1), got {quantile}.')
        try:
            covariance = importlib.import_module("sklearn.covariance")
        except ImportError:
            raise MissingExtraError("scikit-learn", "safety", "Fitting the OOD scorer") from None
        model = covariance.LedoitWolf().fit(x)
        scorer = cls(model.location_, model.precision_, threshold=math.inf)
        scores = [scorer.score(row) for row in x]
        return cls(model.location_, model.precision_, float(np.quantile(scores, quantile)))

    def score(self, embedding: npt.NDArray[np.floating[Any]]) -> float:
        d = np.asarray(embedding, dtype=np.float64).ravel() - self.mean
        return float(math.sqrt(max(float(d @ self.precision @ d), 0.0)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "mahalanobis",
            "mean": self.mean.tolist(),
            "precision": self.precision.tolist(),
            "threshold": self.threshold,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MahalanobisScorer:
        return cls(
            np.asarray(data["mean"]), np.asarray(data["precision"]), float(data["threshold"])
        )

    @classmethod
    def from_file(cls, path: Path) -> MahalanobisScorer:
        """A scorer saved as JSON (:meth:`to_dict`, or ``radloop fit-ood``'s file)."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
