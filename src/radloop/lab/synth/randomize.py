"""Strong domain randomisation of the imaging chain and of the finished image.

SyntheX (Gao et al., "SyntheX: Scaling Up Learning-based X-ray Image Analysis Through In
Silico Experiments", arXiv:2206.06127, 2022; published as "Synthetic data accelerates the
development of generalizable learning-based algorithms for X-ray image analysis", Nature
Machine Intelligence 5:294-308, 2023) found that models trained on simulated radiographs
transfer to real ones when the simulation is randomised strongly: noise, contrast, gamma,
blur, scatter, detector and processing drawn from ranges far wider than any one site's, plus
image-level augmentation. ``random_profile`` draws a whole ``SiteProfile`` that way from the
table ``PROFILE_RANGES``; ``random_view_augment`` applies the image-level part to a display
image and its masks together (``VIEW_AUGMENT``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from radloop.errors import InputError
from radloop.lab.synth import _deps
from radloop.lab.synth.imaging import DETECTORS, LUTS
from radloop.lab.synth.variation import PROFILES, SiteProfile

__all__ = [
    "PROFILE_RANGES",
    "VIEW_AUGMENT",
    "Choice",
    "Uniform",
    "ViewAugment",
    "random_profile",
    "random_view_augment",
]

F32 = npt.NDArray[np.float32]
Bool = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Uniform:
    """A value uniform in [low, high], or log-uniform when ``log``."""

    low: float
    high: float
    log: bool = False

    def draw(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def holds(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Choice:
    """One of ``options``, with probabilities ``weights`` (equal by default)."""

    options: tuple[Any, ...]
    weights: tuple[float, ...] | None = None

    def draw(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.choice(len(self.options), p=self.weights))]

    def holds(self, value: Any) -> bool:
        return value in self.options


_BURNED_TEXT: tuple[tuple[str, ...], ...] = (
    (),
    ("PORTABLE",),
    ("PORTABLE", "AP SEMI-ERECT"),
    ("AP SUPINE",),
    ("PA ERECT",),
    ("CLINIC",),
    ("ICU", "BED 4"),
    ("INSPIRATION",),
)

PROFILE_RANGES: dict[str, Uniform | Choice] = {
    # Exposure: quanta per mm² at the detector over two orders of magnitude, kVp with the
    # bone contrast that follows it (bone_gain = 1.6 + 0.01 (120 - kVp) + jitter).
    "kvp": Uniform(60.0, 140.0),
    "bone_gain_jitter": Uniform(-0.15, 0.15),
    "photons": Uniform(3.0e3, 3.0e5, log=True),
    "electronic_noise": Uniform(5.0e-4, 1.0e-2, log=True),
    # Scatter before the grid, the grid (present or not, and its ratio), the heel effect.
    "scatter": Uniform(0.0, 0.6),
    "grid": Choice((False, True)),
    "grid_ratio": Uniform(6.0, 15.0),
    "heel": Uniform(0.0, 0.3),
    "heel_anode_at_feet": Choice((False, True), (0.8, 0.2)),
    # Detector.
    "blur_mm": Uniform(0.2, 1.2),
    "detector": Choice(DETECTORS),
    # Processing: tone curve, gamma, edge enhancement (coarse and fine band).
    "lut": Choice(LUTS),
    "contrast": Uniform(2.5, 8.0),
    "gamma": Uniform(0.6, 1.6, log=True),
    "edge_gain": Uniform(0.0, 1.5),
    "edge_radius_mm": Uniform(3.0, 25.0, log=True),
    "multiscale": Uniform(0.0, 1.0),
    # Presentation: collimation margins (top; bottom, left and right), storage, labels.
    "collimation_top": Uniform(0.0, 0.03),
    "collimation_side": Uniform(0.0, 0.08),
    "photometric": Choice(("MONOCHROME1", "MONOCHROME2")),
    "bits_stored": Choice(tuple(range(10, 17))),
    "marker": Choice(("R", "L")),
    "burned_text": Choice(_BURNED_TEXT),
}
"""Every randomised parameter of a ``SiteProfile`` and the range it is drawn from.

Following SyntheX (Gao et al., Nature Machine Intelligence 2023), the ranges are
deliberately wider than real sites differ by, so that a model sees the real ones inside the
training distribution: quanta per mm² over two orders of magnitude, scatter from none to 60 %
of the primary, grid or no grid, heel effect, detector blur and glare, every tone-curve family
with contrast, gamma and one- or two-band edge enhancement, collimation, storage and labels.
"""


def random_profile(rng: np.random.Generator, *, base: SiteProfile | None = None) -> SiteProfile:
    """A site profile whose physics and processing are drawn from ``PROFILE_RANGES``.

    Geometry (view, SID, matrix, detector size, lateral) and the DICOM identity come from
    ``base`` (by default the ``standard`` profile).
    """
    site = base or PROFILES["standard"]
    d: dict[str, Any] = {name: spec.draw(rng) for name, spec in PROFILE_RANGES.items()}
    kvp = round(d["kvp"])
    heel = -d["heel"] if d["heel_anode_at_feet"] else d["heel"]
    sides = [PROFILE_RANGES["collimation_side"].draw(rng) for _ in range(2)]
    return dataclasses.replace(
        site,
        name=f"{site.name}-randomised",
        description=f"{site.description} Acquisition and processing randomised.",
        kvp=float(kvp),
        bone_gain=float(np.clip(1.6 + 0.01 * (120 - kvp) + d["bone_gain_jitter"], 1.2, 2.6)),
        photons=d["photons"],
        electronic_noise=d["electronic_noise"],
        scatter=d["scatter"],
        grid_ratio=d["grid_ratio"] if d["grid"] else 0.0,
        heel=heel,
        blur_mm=d["blur_mm"],
        detector=d["detector"],
        lut=d["lut"],
        contrast=d["contrast"],
        gamma=d["gamma"],
        edge_gain=d["edge_gain"],
        edge_radius_mm=d["edge_radius_mm"],
        multiscale=d["multiscale"],
        collimation=(d["collimation_top"], d["collimation_side"], sides[0], sides[1]),
        photometric=d["photometric"],
        bits_stored=int(d["bits_stored"]),
        marker=d["marker"],
        burned_text=tuple(d["burned_text"]),
    )


@dataclass(frozen=True)
class ViewAugment:
    """Image-level augmentation: each step's probability and range.

    Sizes are fractions of the image side; intensities are on the display's [0, 1] scale.
    """

    p_affine: float = 0.9
    scale: tuple[float, float] = (0.75, 1.15)
    rotation_deg: float = 8.0
    translate: float = 0.08
    p_markers: float = 0.5
    p_intensity: float = 0.8
    gamma: tuple[float, float] = (0.7, 1.4)
    contrast: tuple[float, float] = (0.8, 1.25)
    smooth_field: float = 0.08
    p_occlusion: float = 0.3
    boxes: int = 3
    box_size: tuple[float, float] = (0.03, 0.15)
    p_blur: float = 0.2
    blur_px: tuple[float, float] = (0.4, 1.5)
    p_sharpen: float = 0.2
    sharpen: tuple[float, float] = (0.3, 1.5)
    p_noise: float = 0.5
    noise: tuple[float, float] = (0.0, 0.03)


VIEW_AUGMENT = ViewAugment()
"""The image-level augmentation SyntheX pairs with randomised simulation (Gao et al., 2023):
geometry (scale 0.75-1.15, so zoom-out with padding, rotation ±8°, translation ±8 %),
intensity (gamma 0.7-1.4, contrast 0.8-1.25, a smooth additive field up to ±0.08), box
occlusions (1-3 boxes, 3-15 % of the side), bright markers, blur (σ 0.4-1.5 px) or sharpening
(gain 0.3-1.5) and noise (σ up to 0.03)."""


def _hat(n: int, knots: int) -> F32:
    """n x knots matrix of linear interpolation from ``knots`` evenly spaced values."""
    pos = np.linspace(0.0, knots - 1.0, n, dtype=np.float32)
    return np.maximum(0.0, 1.0 - np.abs(pos[:, None] - np.arange(knots, dtype=np.float32)))


def _smooth_field(
    rng: np.random.Generator, shape: tuple[int, int], knots: int, fine: float = 0.0
) -> F32:
    """A smooth random field of unit-ish amplitude: random knots, bilinearly interpolated.

    ``fine`` adds a second, finer layer (4 x the knots, interpolated onto them) of that
    relative amplitude, for a texture rather than a plain gradient.
    """
    coarse = rng.standard_normal((knots, knots)).astype(np.float32)
    if fine:
        n = 4 * knots
        base = np.einsum("ik,kl,jl->ij", _hat(n, knots), coarse, _hat(n, knots))
        coarse = base + np.float32(fine) * rng.standard_normal((n, n)).astype(np.float32)
        knots = n
    # einsum, not BLAS: the products are tiny and BLAS threads only add latency here.
    rows = np.einsum("ik,kl->il", _hat(shape[0], knots), coarse)
    return np.asarray(np.einsum("il,jl->ij", rows, _hat(shape[1], knots)), dtype=np.float32)


def _affine(
    display: F32, masks: dict[str, Bool], rng: np.random.Generator, aug: ViewAugment
) -> tuple[F32, dict[str, Bool]]:
    """Scale, rotate and translate about the centre; the uncovered border is soft tissue."""
    ndimage = _deps.ndimage()
    rows, cols = display.shape
    scale = rng.uniform(*aug.scale)
    angle = math.radians(rng.uniform(-aug.rotation_deg, aug.rotation_deg))
    shift = rng.uniform(-aug.translate, aug.translate, 2) * (rows, cols)
    # Output pixel o comes from source pixel M o + offset (M the inverse of scale x rotation).
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    matrix = np.array([[cos, sin], [-sin, cos]])
    centre = np.array([(rows - 1) / 2.0, (cols - 1) / 2.0])
    offset = centre - matrix @ (centre + shift)
    moved = ndimage.affine_transform(display, matrix, offset=offset, order=1, mode="nearest",
                                     prefilter=False).astype(np.float32)  # fmt: skip
    r = np.arange(rows, dtype=np.float32)[:, None]
    c = np.arange(cols, dtype=np.float32)[None, :]
    src_r = np.float32(matrix[0, 0]) * r + np.float32(matrix[0, 1]) * c + np.float32(offset[0])
    src_c = np.float32(matrix[1, 0]) * r + np.float32(matrix[1, 1]) * c + np.float32(offset[1])
    corners = matrix @ np.array([[0, 0, rows - 1, rows - 1], [0, cols - 1, 0, cols - 1]])
    corners += offset[:, None]
    covered = corners.min() >= 0 and corners[0].max() <= rows - 1 and corners[1].max() <= cols - 1
    within: Bool | None = None
    if not covered:
        # Distance outside the source, in pixels: 0 inside; the fill fades in over 4 pixels.
        outside = np.maximum(
            np.maximum(-src_r, src_r - (rows - 1)), np.maximum(-src_c, src_c - (cols - 1))
        )
        ring = np.concatenate((display[:2].ravel(), display[-2:].ravel(),
                               display[:, :2].ravel(), display[:, -2:].ravel()))  # fmt: skip
        level = float(np.clip(np.median(ring), 0.3, 0.97))
        fill = level + 0.03 * _smooth_field(rng, (rows, cols), 5, fine=0.35)
        weight = np.clip(outside * np.float32(0.25), 0.0, 1.0)
        moved = moved + weight * (fill - moved)
        within = outside <= 0.5
    if not masks:
        return moved, {}
    ri = np.clip(np.rint(src_r), 0, rows - 1).astype(np.int32)
    ci = np.clip(np.rint(src_c), 0, cols - 1).astype(np.int32)
    flat = ri * np.int32(cols) + ci
    out = {name: np.take(mask.ravel(), flat) for name, mask in masks.items()}
    if within is not None:
        out = {name: mask & within for name, mask in out.items()}
    return moved, out


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size)
    except (TypeError, OSError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def _markers(image: F32, rng: np.random.Generator) -> F32:
    """ECG electrodes (rings and discs), wires (thin bright curves) and stray letters."""
    rows, cols = image.shape
    canvas = Image.new("L", (cols, rows), 0)
    draw = ImageDraw.Draw(canvas)
    side = min(rows, cols)
    for _ in range(int(rng.integers(0, 6))):
        radius = side * rng.uniform(0.012, 0.03)
        x, y = rng.uniform(0, cols), rng.uniform(0, rows)
        box = (x - radius, y - radius, x + radius, y + radius)
        if rng.random() < 0.5:
            draw.ellipse(box, fill=int(rng.integers(200, 256)))
        else:
            draw.ellipse(box, outline=int(rng.integers(200, 256)), width=max(1, side // 128))
    for _ in range(int(rng.integers(0, 3))):
        # A quadratic Bézier between two random points with a random pull.
        p = rng.uniform(0, 1, (3, 2)) * (cols, rows)
        t = np.linspace(0.0, 1.0, 24)[:, None]
        curve = (1 - t) ** 2 * p[0] + 2 * (1 - t) * t * p[1] + t**2 * p[2]
        draw.line([(float(a), float(b)) for a, b in curve], fill=int(rng.integers(180, 256)),
                  width=int(rng.integers(1, max(2, side // 128) + 1)))  # fmt: skip
    for _ in range(int(rng.integers(0, 3))):
        letter = "RLAPEC"[int(rng.integers(0, 6))]
        size = max(8, int(side * rng.uniform(0.03, 0.07)))
        xy = (float(rng.uniform(0, cols - size)), float(rng.uniform(0, rows - size)))
        draw.text(xy, letter, fill=int(rng.integers(200, 256)), font=_font(size))
    bright = np.asarray(canvas, dtype=np.float32) / np.float32(255.0)
    return np.asarray(np.maximum(image, bright), dtype=np.float32)


def random_view_augment(
    display: F32,
    masks: dict[str, Bool],
    rng: np.random.Generator,
    *,
    augment: ViewAugment = VIEW_AUGMENT,
) -> tuple[F32, dict[str, Bool]]:
    """SyntheX-style image-level augmentation of a display image and its masks together.

    In order, each with its probability in ``augment``: an affine (scale, rotation,
    translation; zooming out pads with a smooth soft-tissue field near the image's border
    level, so lungs never meet an artificial edge), bright markers (electrodes, wires,
    letters), intensity jitter (gamma, contrast, an additive smooth field; never inversion),
    box occlusions, blur or sharpening, and noise. Masks follow the geometry by nearest
    neighbour and are untouched by the rest. The result is float32 in [0, 1].
    """
    ndimage = _deps.ndimage()
    image = np.asarray(display, dtype=np.float32)
    if image.ndim != 2 or min(image.shape) < 8:
        raise InputError("a 2-D display image at least 8 x 8", f"shape {image.shape}")
    boolean: dict[str, Bool] = {}
    for name, mask in masks.items():
        array = np.asarray(mask)
        if array.shape != image.shape:
            raise InputError(f"mask {name!r} of the image's shape {image.shape}", f"{array.shape}")
        boolean[name] = array.astype(bool)
    image = np.clip(image, 0.0, 1.0)
    shape = (int(image.shape[0]), int(image.shape[1]))
    aug = augment
    if rng.random() < aug.p_affine:
        image, boolean = _affine(image, boolean, rng, aug)
    if rng.random() < aug.p_markers:
        image = _markers(image, rng)
    if rng.random() < aug.p_intensity:
        gamma = math.exp(rng.uniform(math.log(aug.gamma[0]), math.log(aug.gamma[1])))
        image = np.clip(image, 0.0, 1.0) ** np.float32(gamma)
        mid = np.float32(image.mean())
        image = (image - mid) * np.float32(rng.uniform(*aug.contrast)) + mid
        image += np.float32(aug.smooth_field * rng.uniform(0, 1)) * _smooth_field(rng, shape, 4)
    if rng.random() < aug.p_occlusion:
        for _ in range(int(rng.integers(1, aug.boxes + 1))):
            h, w = (max(1, round(rng.uniform(*aug.box_size) * n)) for n in shape)
            r, c = int(rng.integers(0, shape[0] - h + 1)), int(rng.integers(0, shape[1] - w + 1))
            image[r : r + h, c : c + w] = np.float32(rng.uniform(0, 1))
    if rng.random() < aug.p_blur:
        image = ndimage.gaussian_filter(image, rng.uniform(*aug.blur_px), truncate=3.0)
    elif rng.random() < aug.p_sharpen:
        soft = ndimage.gaussian_filter(image, rng.uniform(*aug.blur_px), truncate=3.0)
        image = image + np.float32(rng.uniform(*aug.sharpen)) * (image - soft)
    if rng.random() < aug.p_noise:
        sigma = np.float32(rng.uniform(*aug.noise))
        image = image + sigma * rng.standard_normal(shape, dtype=np.float32)
    return np.clip(image, 0.0, 1.0).astype(np.float32, copy=False), boolean
