"""Image checks that need no model: exposure, collimation, symmetry, CT-like and lateral-like.

Every measure is taken on the image shrunk to 128 x 128 (area averaging) and is physically
motivated, with few thresholds:

- **Clipped highlights** (share of pixels at or above 0.97). CT is displayed through a window
  (lung window: soft tissue and bone clip to white), while radiograph processing keeps the
  body inside the display range.
- **Edge sharpness** (99th over 50th percentile of the gradient magnitude). A CT slice has
  sharp lung–chest-wall edges; a projection radiograph blurs every edge with everything in
  front of and behind it. CT-like = clipped highlights > 1 % *and* sharpness > 8.
- **Midline contrast**. On a frontal chest radiograph the spine and mediastinum form a bright
  column between two darker lung fields: across the body (columns between its outer edges, in
  the middle rows), the brightest column near the centre stands above the darkest column on
  *each* side. A lateral shows one lung field between the anterior chest wall and the spine,
  so the centre is dark. The contrast is the smaller of the two rises over the profile's
  standard deviation; lateral-like = contrast < 1.0, view uncertain = contrast < 1.5.
- **Mirror symmetry** (best correlation of the image with its mirror image about a vertical
  axis within ±12 % of the centre). A weak proxy for rotation: scoliosis, unilateral disease,
  devices and burned-in text lower it as well, so it only flags.
- **Exposure**: dynamic range (1st to 99th percentile) and clipped shadows.
- **Collimation or padding**: the share of the image in uniform border bands.

These are weak heuristics measured on real radiographs (docs/safety.md): they are the fallback
when DICOM tags are missing and until the reference model's view head is available.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage

__all__ = ["ImageCheckThresholds", "ImageMeasures", "measure_image"]

FloatArray = npt.NDArray[np.float32]
_SIDE = 128


@dataclass(frozen=True)
class ImageCheckThresholds:
    """Thresholds of the model-free image checks (see the module docstring)."""

    clipped_high: float = 0.01
    ct_edge_sharpness: float = 8.0
    lateral_midline_contrast: float = 1.0
    uncertain_midline_contrast: float = 1.5
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
    edge_sharpness: float
    midline_contrast: float
    symmetry: float
    empty_border: float

    def to_json(self) -> dict[str, float]:
        return {k: round(float(getattr(self, k)), 4) for k in self.__dataclass_fields__}


def _small(pixels: FloatArray) -> FloatArray:
    image = PILImage.fromarray(np.asarray(pixels, dtype=np.float32), mode="F")
    small = image.resize((_SIDE, _SIDE), PILImage.Resampling.BOX)
    return np.asarray(small, dtype=np.float32)


def _edge_sharpness(a: FloatArray) -> float:
    gy, gx = np.gradient(a)
    g = np.hypot(gx, gy)
    return float(np.quantile(g, 0.99) / (np.quantile(g, 0.5) + 1e-3))


def _midline_contrast(a: FloatArray) -> float:
    h, w = a.shape
    band = a[int(0.2 * h) : int(0.75 * h)]
    profile = np.convolve(band.mean(axis=0), np.ones(5) / 5, mode="same")
    level = profile.min() + 0.5 * (profile.max() - profile.min())
    inside = np.nonzero(profile > level)[0]
    first, last = (int(inside[0]), int(inside[-1])) if inside.size else (0, w - 1)
    if last - first < 0.3 * w:  # no clear body outline: use the whole width
        first, last = 0, w - 1
    body = profile[first : last + 1]
    n = body.size - 1

    def at(f: float) -> int:
        return int(f * n)

    centre = body[at(0.35) : at(0.65) + 1].max()
    right_lung = body[at(0.1) : at(0.45) + 1].min()
    left_lung = body[at(0.55) : at(0.9) + 1].min()
    return float(min(centre - right_lung, centre - left_lung)) / (float(body.std()) + 1e-3)


def _symmetry(a: FloatArray) -> float:
    w = a.shape[1]
    best = -1.0
    for shift in range(-w // 8, w // 8 + 1):
        centre = w // 2 + shift
        half = min(centre, w - centre)
        if half < w // 4:
            continue
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


def measure_image(pixels: FloatArray) -> ImageMeasures:
    """Every model-free measure of one image (pixels H x W in [0, 1], higher = brighter)."""
    a = _small(pixels)
    low, high = np.quantile(a, [0.01, 0.99])
    return ImageMeasures(
        clipped_high=float((a >= 0.97).mean()),
        clipped_low=float((a <= 0.03).mean()),
        dynamic_range=float(high - low),
        edge_sharpness=_edge_sharpness(a),
        midline_contrast=_midline_contrast(a),
        symmetry=_symmetry(a),
        empty_border=_empty_border(a),
    )
