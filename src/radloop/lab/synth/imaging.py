"""From line integrals to a processed radiograph: exposure, scatter, blur, noise, tone, labels.

Transmitted intensity is exp(-∫μ) (Beer–Lambert). Scatter adds a broad blur of the primary;
the detector blurs with a Gaussian line-spread; quantum noise is Poisson in the detected
quanta (approximated as Gaussian with variance equal to the mean), plus electronic noise.
Processing then takes the log, auto-ranges on the exposed field like CR/DR readers, adds
unsharp-mask edge enhancement and applies a sigmoid tone curve. Collimated borders and
burned-in text come last, as on a real workstation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from radloop.lab.synth import _deps
from radloop.lab.synth.projector import View
from radloop.lab.synth.variation import SiteProfile

__all__ = ["Exposure", "expose"]

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class Exposure:
    """A processed radiograph.

    ``display`` is H x W float32 in [0, 1], bright = attenuating (as MONOCHROME2 shows it);
    ``stored`` is what the DICOM file holds (inverted for MONOCHROME1); ``field`` the
    collimated (exposed) area as (row0, col0, row1, col1), end-exclusive.
    """

    display: F32
    stored: npt.NDArray[np.uint16]
    field: tuple[int, int, int, int]


def _field(
    rng: np.random.Generator,
    limits: tuple[int, int, int, int],
    margins: tuple[float, float, float, float],
) -> tuple[int, int, int, int]:
    """Collimated field: the site's margins, varied per exposure, inside ``limits``."""
    r0, c0, r1, c1 = limits
    rows, cols = r1 - r0, c1 - c0
    top, bottom, left, right = (max(0.0, m * rng.uniform(0.5, 1.5)) for m in margins)
    return (
        r0 + round(top * rows),
        c0 + round(left * cols),
        r1 - round(bottom * rows),
        c1 - round(right * cols),
    )


def _burn_in(image: F32, site: SiteProfile, view: View, field: tuple[int, int, int, int]) -> F32:
    """Draw the side marker and the site's labels in white, as modalities burn them in."""
    rows, cols = image.shape
    canvas = Image.fromarray(np.zeros((rows, cols), dtype=np.uint8))
    draw = ImageDraw.Draw(canvas)
    size = max(10, rows // 24)
    try:
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.load_default(size)
    except (TypeError, OSError):  # pragma: no cover - Pillow without FreeType
        font = ImageFont.load_default()
    r0, c0, r1, c1 = field
    pad = max(4, rows // 64)
    if view.frontal:
        # The marker names the side of the patient it lies on: R sits on the image's left.
        marker_col = c0 + pad if site.marker == "R" else c1 - pad - size
        draw.text((marker_col, r0 + pad), site.marker, fill=255, font=font)
    else:
        draw.text((c1 - pad - size, r0 + pad), "L", fill=255, font=font)
    for i, line in enumerate(site.burned_text):
        draw.text((c0 + pad, r1 - pad - (len(site.burned_text) - i) * (size + 2)), line,
                  fill=255, font=font)  # fmt: skip
    text = np.asarray(canvas, dtype=np.float32) / 255.0
    return np.asarray(np.maximum(image, text * 0.98), dtype=np.float32)


def expose(
    line_integral: F32,
    site: SiteProfile,
    rng: np.random.Generator,
    *,
    pixel_mm: float,
    view: View,
    limits: tuple[int, int, int, int] | None = None,
    burn_in: bool = True,
) -> Exposure:
    """Turn a line-integral image into a processed, quantised radiograph.

    ``limits`` bounds the collimated field (rows, cols, end-exclusive); by default the image.
    """
    ndimage = _deps.ndimage()

    shape = (int(line_integral.shape[0]), int(line_integral.shape[1]))
    primary = np.exp(-line_integral.astype(np.float64))
    if site.scatter > 0:
        # Scatter is smooth: blur a coarse copy (8 mm pixels) and bring it back.
        step = max(1, round(8.0 / pixel_mm))
        coarse = primary[::step, ::step]
        broad = ndimage.gaussian_filter(coarse, 60.0 / (pixel_mm * step), mode="nearest")
        broad = ndimage.zoom(broad, (shape[0] / broad.shape[0], shape[1] / broad.shape[1]), order=1)
        primary = primary + site.scatter * broad[: shape[0], : shape[1]]
    blurred = ndimage.gaussian_filter(primary, site.blur_mm / pixel_mm, mode="nearest")
    quanta = site.photons * pixel_mm**2
    noisy = blurred + rng.standard_normal(shape) * np.sqrt(np.maximum(blurred, 0) / quanta)
    noisy += rng.standard_normal(shape) * site.electronic_noise
    log = -np.log(np.clip(noisy, 1e-5, None))
    field = _field(rng, limits or (0, 0, shape[0], shape[1]), site.collimation)
    r0, c0, r1, c1 = field
    inside = log[r0:r1, c0:c1]
    low, high = np.percentile(inside, [1.0, 99.5])
    x = (log - low) / max(float(high - low), 1e-6)
    if site.edge_gain > 0:
        x = x + site.edge_gain * (x - ndimage.gaussian_filter(x, site.edge_radius_mm / pixel_mm))
    y = 1.0 / (1.0 + np.exp(-site.contrast * (x - 0.5)))
    y0 = 1.0 / (1.0 + np.exp(site.contrast * 0.5))
    y = np.clip((y - y0) / (1.0 - 2 * y0), 0.0, 1.0) ** site.gamma
    display = np.full(shape, 0.96, dtype=np.float32)
    display[r0:r1, c0:c1] = y[r0:r1, c0:c1]
    if burn_in:
        display = _burn_in(display, site, view, field)
    top = (1 << site.bits_stored) - 1
    levels = np.round(display * top).astype(np.uint16)
    stored = (top - levels).astype(np.uint16) if site.photometric == "MONOCHROME1" else levels
    return Exposure(display=(levels / top).astype(np.float32), stored=stored, field=field)
