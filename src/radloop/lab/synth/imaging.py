"""From line integrals to a processed radiograph: exposure, scatter, blur, noise, tone, labels.

Transmitted intensity is exp(-∫μ) (Beer–Lambert), optionally shaded by the anode heel effect.
Scatter adds a broad blur of the primary, reduced by an anti-scatter grid when the site has
one; the detector blurs with a Gaussian line-spread (or, for ``dr``, a Gaussian plus a glare
tail); quantum noise is Poisson in the detected quanta (approximated as Gaussian with variance
equal to the mean), plus electronic noise. Processing then takes the log, auto-ranges on the
exposed field like CR/DR readers, adds unsharp-mask edge enhancement (one band, or two for
multiscale processing) and applies a tone curve (sigmoid, linear, filmic or equalised).
Collimated borders and burned-in text come last, as on a real workstation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from radloop.errors import InputError
from radloop.lab.synth import _deps
from radloop.lab.synth.projector import View
from radloop.lab.synth.variation import SiteProfile

__all__ = [
    "DETECTORS",
    "LUTS",
    "Exposure",
    "detect",
    "expose",
    "grid_transmission",
    "heel_ramp",
    "tone",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

LUTS = ("sigmoid", "linear", "filmic", "equalised")
DETECTORS = ("gaussian", "dr")
_GLARE = (0.07, 4.0)  # dr detector: fraction of the signal in the glare tail, its sigma (mm)
_FILMIC_TOE = 0.5  # exponent of the generalised logistic: < 1 gives a toe longer than the shoulder
_EQUALISE = 0.5  # equalised LUT: weight of the equalised map against the linear window
_DETAIL_MM = 2.0  # radius of the fine (multiscale) unsharp-mask band


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


def heel_ramp(rows: int, heel: float) -> F64:
    """Relative intensity per row under the anode heel effect.

    The drop is exponential in position (linear in the log), from 1 at the cathode end to
    ``1 - |heel|`` at the anode end. Positive ``heel`` puts the anode at the top (the head),
    negative at the bottom.
    """
    if not -1.0 < heel < 1.0:
        raise InputError("a heel drop between -1 and 1 (exclusive)", repr(heel))
    t = np.linspace(1.0, 0.0, rows) if heel > 0 else np.linspace(0.0, 1.0, rows)
    return np.asarray(np.exp(np.log1p(-abs(heel)) * t), dtype=np.float64)


def grid_transmission(ratio: float) -> tuple[float, float]:
    """Primary and scatter transmission of a focused lead anti-scatter grid of ``ratio``.

    Primary T_p = 0.75 - 0.005 r and scatter T_s = 1 / (1 + r / 1.5): a 10:1 grid passes
    about 70 % of the primary and 13 % of the scatter, 6:1 about 72 % and 20 %, 16:1 about
    67 % and 9 %. The model is chosen to lie within the published ranges for diagnostic grids
    (primary 0.55-0.75, scatter 0.05-0.2 at chest energies; Bushberg et al., *The Essential
    Physics of Medical Imaging*, 3rd ed., 2012, ch. 7; Chan, Higashida and Doi, *Med Phys*
    12:449, 1985). ``ratio`` 0 means no grid.
    """
    if ratio < 0:
        raise InputError("a grid ratio of 0 (no grid) or more", repr(ratio))
    if ratio == 0:
        return 1.0, 1.0
    return 0.75 - 0.005 * ratio, 1.0 / (1.0 + ratio / 1.5)


def _check(site: SiteProfile) -> None:
    if site.lut not in LUTS:
        raise InputError(f"a LUT family, one of {', '.join(LUTS)}", repr(site.lut))
    if site.detector not in DETECTORS:
        raise InputError(f"a detector, one of {', '.join(DETECTORS)}", repr(site.detector))
    if site.multiscale < 0:
        raise InputError("a multiscale gain of 0 or more", repr(site.multiscale))
    if site.grid_ratio < 0:
        raise InputError("a grid ratio of 0 (no grid) or more", repr(site.grid_ratio))
    if not -1.0 < site.heel < 1.0:
        raise InputError("a heel drop between -1 and 1 (exclusive)", repr(site.heel))


def detect(
    line_integral: F32, site: SiteProfile, rng: np.random.Generator, *, pixel_mm: float
) -> F64:
    """Detected intensity (unattenuated primary = 1), noise included, before the log.

    With a grid, automatic exposure control is assumed to raise the exposure so that the
    detector sees the same primary fluence: the primary keeps its level and the scatter is
    scaled by T_s / T_p. The site's ``scatter`` is the scatter-to-primary weight before the grid.
    """
    ndimage = _deps.ndimage()
    _check(site)
    shape = (int(line_integral.shape[0]), int(line_integral.shape[1]))
    primary = np.exp(-line_integral.astype(np.float64))
    if site.heel:
        primary = primary * heel_ramp(shape[0], site.heel)[:, None]
    if site.scatter > 0:
        # Scatter is smooth: blur a coarse copy (8 mm pixels) and bring it back.
        step = max(1, round(8.0 / pixel_mm))
        coarse = primary[::step, ::step]
        broad = ndimage.gaussian_filter(coarse, 60.0 / (pixel_mm * step), mode="nearest")
        broad = ndimage.zoom(broad, (shape[0] / broad.shape[0], shape[1] / broad.shape[1]), order=1)
        weight = site.scatter
        if site.grid_ratio > 0:
            t_primary, t_scatter = grid_transmission(site.grid_ratio)
            weight = site.scatter * t_scatter / t_primary
        primary = primary + weight * broad[: shape[0], : shape[1]]
    blurred = ndimage.gaussian_filter(primary, site.blur_mm / pixel_mm, mode="nearest")
    if site.detector == "dr":
        # Light spreading in the scintillator: a low-amplitude, broad tail (glare).
        share, sigma_mm = _GLARE
        glare = ndimage.gaussian_filter(primary, sigma_mm / pixel_mm, mode="nearest")
        blurred = (1.0 - share) * blurred + share * glare
    quanta = site.photons * pixel_mm**2
    noisy = blurred + rng.standard_normal(shape) * np.sqrt(np.maximum(blurred, 0) / quanta)
    noisy += rng.standard_normal(shape) * site.electronic_noise
    return np.asarray(noisy, dtype=np.float64)


def tone(x: F64, site: SiteProfile, inside: F64 | None = None) -> F64:
    """The site's tone curve (LUT) and gamma: auto-ranged log exposure ``x`` to [0, 1].

    ``sigmoid``: a logistic of slope ``contrast`` about 0.5, rescaled so 0 and 1 map to 0 and
    1. ``linear``: the window alone. ``filmic``: a generalised logistic (1 + e^-z)^-ν with
    ν = 0.5, an H&D-like curve whose toe is longer than its shoulder. ``equalised``: half the
    histogram-equalised map of ``inside`` (by default ``x``) plus half the window, like a
    vendor's tissue equalisation. Every family is monotone non-decreasing in ``x``.
    """
    if site.lut == "sigmoid":
        y = 1.0 / (1.0 + np.exp(-site.contrast * (x - 0.5)))
        y0 = 1.0 / (1.0 + np.exp(site.contrast * 0.5))
        return np.asarray(np.clip((y - y0) / (1.0 - 2 * y0), 0.0, 1.0) ** site.gamma)
    window = np.clip(x, 0.0, 1.0)
    if site.lut == "linear":
        y = window
    elif site.lut == "filmic":
        curve = (1.0 + np.exp(-site.contrast * (window - 0.5))) ** -_FILMIC_TOE
        ends = (1.0 + np.exp(site.contrast * np.array([0.5, -0.5]))) ** -_FILMIC_TOE
        y = np.clip((curve - ends[0]) / (ends[1] - ends[0]), 0.0, 1.0)
    elif site.lut == "equalised":
        bins = 256
        sample = np.clip(x if inside is None else inside, 0.0, 1.0)
        index = np.minimum((sample * bins).astype(np.intp), bins - 1)
        counts = np.bincount(index.ravel(), minlength=bins)
        cdf = np.concatenate(([0.0], np.cumsum(counts) / max(int(counts.sum()), 1)))
        q = window * bins
        i = np.minimum(q.astype(np.intp), bins - 1)
        equalised = cdf[i] + (q - i) * (cdf[i + 1] - cdf[i])
        y = (1.0 - _EQUALISE) * window + _EQUALISE * equalised
    else:
        raise InputError(f"a LUT family, one of {', '.join(LUTS)}", repr(site.lut))
    return np.asarray(y**site.gamma)


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
    noisy = detect(line_integral, site, rng, pixel_mm=pixel_mm)
    log = -np.log(np.clip(noisy, 1e-5, None))
    field = _field(rng, limits or (0, 0, shape[0], shape[1]), site.collimation)
    r0, c0, r1, c1 = field
    inside = log[r0:r1, c0:c1]
    low, high = np.percentile(inside, [1.0, 99.5])
    x = (log - low) / max(float(high - low), 1e-6)
    base = x
    if site.edge_gain > 0:
        x = x + site.edge_gain * (
            base - ndimage.gaussian_filter(base, site.edge_radius_mm / pixel_mm)
        )
    if site.multiscale > 0:
        x = x + site.multiscale * (base - ndimage.gaussian_filter(base, _DETAIL_MM / pixel_mm))
    y = tone(x, site, x[r0:r1, c0:c1] if site.lut == "equalised" else None)
    display = np.full(shape, 0.96, dtype=np.float32)
    display[r0:r1, c0:c1] = y[r0:r1, c0:c1]
    if burn_in:
        display = _burn_in(display, site, view, field)
    top = (1 << site.bits_stored) - 1
    levels = np.round(display * top).astype(np.uint16)
    stored = (top - levels).astype(np.uint16) if site.photometric == "MONOCHROME1" else levels
    return Exposure(display=(levels / top).astype(np.float32), stored=stored, field=field)
