"""Image quality checks that need no model: exposure, collimation, symmetry.

Every measure is taken on the image shrunk to 128 x 128 (area averaging, :func:`shrink`)
and is physically motivated, with few thresholds; each only flags. What an image *is*
(frontal, lateral, CT) is the acquisition classifier's job (:mod:`radloop.safety.scope.model`).

- **Clipped highlights** (share of pixels at or above 0.97): overexposed display, a CT display
  window, or large burned-in labels.
- **Mirror symmetry** (best correlation of the image with its mirror image about a vertical
  axis within ±12 % of the centre). A weak proxy for rotation: scoliosis, unilateral disease,
  devices and burned-in text lower it as well.
- **Exposure**: dynamic range (1st to 99th percentile) and clipped shadows.
- **Collimation or padding**: the share of the image in uniform border bands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage

__all__ = [
    "SIDE",
    "ImageCheckThresholds",
    "ImageMeasures",
    "measure_image",
    "measure_small",
    "shrink",
]

FloatArray = npt.NDArray[np.float32]
SIDE = 128


@dataclass(frozen=True)
class ImageCheckThresholds:
    """Thresholds of the model-free image checks (see the module docstring)."""

    clipped_high: float = 0.01
    symmetry_min: float = 0.5
    dynamic_range_min: float = 0.25
    clipped_low_max: float = 0.4
    empty_border_max: float = 0.3


@dataclass(frozen=True)
class ImageMeasures:
    """What the model-free checks measure on one image."""

    clipped_high: float
    clipped_low: float
    dynamic_range: float
    symmetry: float
    empty_border: float

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(getattr(self, k)), 4) for k in self.__dataclass_fields__}


def shrink(pixels: npt.NDArray[np.generic]) -> FloatArray:
    """The ``SIDE``² area-averaged copy every check (and the acquisition classifier) reads."""
    image = PILImage.fromarray(np.ascontiguousarray(pixels, dtype=np.float32), mode="F")
    small = image.resize((SIDE, SIDE), PILImage.Resampling.BOX)
    return np.asarray(small, dtype=np.float32)


def _symmetry(a: FloatArray) -> float:
    """Best mirror correlation about a vertical axis within ±12 % of the centre, on a 64²
    copy (the axis search is the costly part; half the resolution keeps the answer)."""
    a = a.reshape(a.shape[0] // 2, 2, a.shape[1] // 2, 2).mean(axis=(1, 3))
    w = a.shape[1]
    best = -1.0
    for shift in range(-w // 8, w // 8 + 1):
        centre = w // 2 + shift
        half = min(centre, w - centre)
        left = a[:, centre - half : centre]
        right = a[:, centre : centre + half][:, ::-1]
        x, y = left - left.mean(), right - right.mean()
        denominator = float(np.sqrt((x * x).sum() * (y * y).sum()))
        if denominator > 0:
            best = max(best, float((x * y).sum()) / denominator)
    return best


def _empty_border(a: FloatArray) -> float:
    """Share of the image in border rows and columns that are nearly uniform."""
    flat_rows = a.std(axis=1) < 0.02
    flat_columns = a.std(axis=0) < 0.02

    def run(flags: npt.NDArray[np.bool_]) -> int:
        return int(np.argmin(flags)) if not flags.all() else flags.size

    rows = run(flat_rows) + run(flat_rows[::-1])
    columns = run(flat_columns) + run(flat_columns[::-1])
    n = int(a.shape[0])
    empty = min(rows, n) * n + min(columns, n) * n - min(rows, n) * min(columns, n)
    return float(empty) / (n * n)


def measure_small(a: FloatArray) -> ImageMeasures:
    """Every model-free measure of a ``shrink``-ed image."""
    low, high = np.quantile(a, [0.01, 0.99])
    return ImageMeasures(
        clipped_high=float((a >= 0.97).mean()),
        clipped_low=float((a <= 0.03).mean()),
        dynamic_range=float(high - low),
        symmetry=_symmetry(a),
        empty_border=_empty_border(a),
    )


def measure_image(pixels: FloatArray) -> ImageMeasures:
    """Every model-free measure of one image (pixels H x W in [0, 1], higher = brighter)."""
    return measure_small(shrink(pixels))
