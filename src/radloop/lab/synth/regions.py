"""Places in the working anatomy where findings go, derived once per anatomy and cached.

Distances are Euclidean distance transforms in mm (scipy.ndimage.distance_transform_edt with
the grid spacing); centrelines are per-slice centroids of a label.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from radloop.lab.synth import _deps
from radloop.lab.synth.anatomy import LOBE_STRUCTURES, Anatomy
from radloop.vocabulary import Lobe

__all__ = ["Regions", "regions"]

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
Bool = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class Depths:
    """Voxels of a region (flat grid indices) with their depth inside it, in mm."""

    flat: I32
    depth: F32


def _depth(anatomy: Anatomy, mask: Bool) -> Depths:
    ndimage = _deps.ndimage()

    flat = np.flatnonzero(mask).astype(np.int32)
    if flat.size == 0:
        return Depths(flat, np.zeros(0, dtype=np.float32))
    ijk = np.unravel_index(flat, anatomy.shape)
    lo = [max(0, int(a.min()) - 1) for a in ijk]
    hi = [int(a.max()) + 2 for a in ijk]
    crop = mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    edt = ndimage.distance_transform_edt(crop, sampling=anatomy.spacing_mm)
    depth = edt[ijk[0] - lo[0], ijk[1] - lo[1], ijk[2] - lo[2]].astype(np.float32)
    return Depths(flat, depth)


class Regions:
    """Cached lookups on one anatomy: lobe depths, lung depths, centrelines, ribs."""

    def __init__(self, anatomy: Anatomy) -> None:
        self.anatomy = anatomy

    @cached_property
    def lobe_depths(self) -> dict[Lobe, Depths]:
        return {
            lobe: _depth(self.anatomy, self.anatomy.lobe_mask(lobe)) for lobe in LOBE_STRUCTURES
        }

    @cached_property
    def lung_depths(self) -> dict[str, Depths]:
        return {
            side: _depth(self.anatomy, self.anatomy.lung_mask(side)) for side in ("right", "left")
        }

    @cached_property
    def lung_voxels(self) -> dict[str, I32]:
        return {
            side: np.flatnonzero(self.anatomy.lung_mask(side)).astype(np.int32)
            for side in ("right", "left")
        }

    @cached_property
    def heart_voxels(self) -> I32:
        return np.flatnonzero(self.anatomy.mask("heart")).astype(np.int32)

    @cached_property
    def lungs(self) -> Bool:
        return self.anatomy.lung_mask()

    @cached_property
    def midline_x(self) -> float:
        """x (mm) of the spinal canal: the sagittal midplane of this patient."""
        names = [n for n in self.anatomy.structures if n.startswith("vertebrae_T")]
        return float(self.anatomy.centroid(*names)[0])

    @cached_property
    def vertebra_centres(self) -> F32:
        """Centroids (M, 3) of every labelled vertebra."""
        anatomy = self.anatomy
        ids = {v: n for n, v in anatomy.structures.items() if n.startswith("vertebrae_")}
        present = [v for v in np.unique(anatomy.labels) if int(v) in ids]
        return np.asarray(
            [anatomy.centroid(ids[int(v)]) for v in present], dtype=np.float32
        ).reshape(-1, 3)

    def centreline(self, *names: str) -> F32:
        """Per-slice centroids (M, 3) of the named labels, from top to bottom."""
        mask = self.anatomy.mask(*names)
        points = []
        for k in range(mask.shape[2] - 1, -1, -1):
            ij = np.argwhere(mask[:, :, k])
            if ij.size == 0:
                continue
            centre = ij.mean(axis=0)
            points.append(
                (
                    self.anatomy.origin_mm[0] + centre[0] * self.anatomy.spacing_mm[0],
                    self.anatomy.origin_mm[1] + centre[1] * self.anatomy.spacing_mm[1],
                    self.anatomy.origin_mm[2] + k * self.anatomy.spacing_mm[2],
                )
            )
        return np.asarray(points, dtype=np.float32).reshape(-1, 3)

    def rib(self, side: str, number: int) -> I32:
        """Flat grid indices of one rib (empty when the label map lacks it)."""
        name = f"rib_{side}_{number}"
        if name not in self.anatomy.structures:
            return np.zeros(0, dtype=np.int32)
        return np.flatnonzero(self.anatomy.labels == self.anatomy.structures[name]).astype(np.int32)


_CACHE: dict[int, Regions] = {}


def regions(anatomy: Anatomy) -> Regions:
    """The cached ``Regions`` of an anatomy (one per process)."""
    key = id(anatomy)
    if key not in _CACHE or _CACHE[key].anatomy is not anatomy:
        _CACHE[key] = Regions(anatomy)
    return _CACHE[key]
