"""A phantom (one patient at one time point) and its radiographs, with image truth.

Rendering a view: the study's HU grid becomes attenuation, voxels are merged in threes along
the beam (their magnifications differ by under 0.5 %), deformed, posed and splatted; spheres
and tubes are added at output resolution; the imaging chain of the site profile follows.
Truth masks are the pixels whose ray crosses at least 1 mm of a finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from radloop.lab.synth.anatomy import Anatomy
from radloop.lab.synth.findings import Canvas, FindingSpec, InsertedFinding, insert
from radloop.lab.synth.imaging import Exposure, expose
from radloop.lab.synth.projector import (
    Geometry,
    SplatPlan,
    View,
    make_geometry,
    plan_splat,
    rotation_matrix,
    sphere_line_integral,
    splat,
)
from radloop.lab.synth.regions import regions
from radloop.lab.synth.variation import Deformation, Demographics, Pose, SiteProfile

__all__ = [
    "MU_WATER_PER_MM",
    "Phantom",
    "RenderedView",
    "build_phantom",
    "hu_to_mu",
    "render_view",
]

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
Bool = npt.NDArray[np.bool_]

MU_WATER_PER_MM = 0.019  # linear attenuation of water near 70 keV effective energy
MERGE = 3  # voxels merged along the beam
MASK_PATH_MM = 1.0  # a ray crossing at least this much of a finding is in its mask


def hu_to_mu(hu: F32, bone_gain: float = 1.0) -> F32:
    """Attenuation (1/mm) from HU, with bone above 100 HU enhanced towards ``bone_gain``.

    μ = μ_water (1 + HU/1000); the photoelectric excess of calcium at diagnostic energies is
    modelled by scaling the part above water by up to ``bone_gain`` (full at 300 HU).
    """
    ramp = np.clip((hu - 100.0) / 200.0, 0.0, 1.0)
    gain = 1.0 + (bone_gain - 1.0) * ramp
    excess = hu / 1000.0
    mu = MU_WATER_PER_MM * (1.0 + np.where(excess > 0, excess * gain, excess))
    return np.clip(mu, 0.0, None).astype(np.float32)


@dataclass(frozen=True, eq=False)
class _Merged:
    """Body voxels merged in groups along one axis: one splat point per non-empty group."""

    axis: int
    shape: tuple[int, int, int]
    flat: I32  # merged-grid indices of the points
    point_of: I32  # merged-grid index → point number, -1 where empty
    x: F32
    y: F32
    z: F32
    extent: tuple[float, float, float]
    axes: tuple[F32, F32, F32]  # grid coordinates along x, y, z of the merged grid

    def gather(self, grid: F32) -> F32:
        """Per-point sums of a full-resolution grid quantity."""
        return _merge(grid, self.axis).ravel()[self.flat]

    def accumulate(self, anatomy: Anatomy, voxels: I32) -> tuple[npt.NDArray[np.intp], F32]:
        """Points that contain the given voxels, and how many of them each contains."""
        ijk = list(np.unravel_index(voxels, anatomy.shape))
        ijk[self.axis] = ijk[self.axis] // MERGE
        inside = ijk[self.axis] < self.shape[self.axis]
        merged = np.ravel_multi_index(tuple(a[inside] for a in ijk), self.shape)
        points = self.point_of[merged]
        counts = np.bincount(points[points >= 0], minlength=self.flat.size)
        unique = np.flatnonzero(counts)
        return unique, counts[unique].astype(np.float32)


def _merge(grid: F32, axis: int) -> F32:
    n = grid.shape[axis] // MERGE
    trimmed = np.take(grid, np.arange(n * MERGE), axis=axis)
    shape = list(grid.shape)
    shape[axis : axis + 1] = [n, MERGE]
    return np.asarray(trimmed.reshape(shape).sum(axis=axis + 1), dtype=np.float32)


_MERGED: dict[tuple[int, int], _Merged] = {}


def _merged(anatomy: Anatomy, axis: int) -> _Merged:
    key = (id(anatomy), axis)
    if key in _MERGED:
        return _MERGED[key]
    body = np.zeros(anatomy.hu.size, dtype=np.float32)
    body[anatomy.body] = 1.0
    counts = _merge(body.reshape(anatomy.shape), axis)
    flat = np.flatnonzero(counts > 0).astype(np.int32)
    point_of = np.full(counts.size, -1, dtype=np.int32)
    point_of[flat] = np.arange(flat.size, dtype=np.int32)
    ijk = np.unravel_index(flat, counts.shape)
    axes = []
    for a in range(3):
        steps = np.arange(counts.shape[a], dtype=np.float64)
        index = steps * MERGE + (MERGE - 1) / 2 if a == axis else steps
        axes.append((anatomy.origin_mm[a] + index * anatomy.spacing_mm[a]).astype(np.float32))
    coords = [axes[a][ijk[a]] for a in range(3)]
    extent = tuple(s * (MERGE if a == axis else 1) for a, s in enumerate(anatomy.spacing_mm))
    merged = _Merged(axis, (int(counts.shape[0]), int(counts.shape[1]), int(counts.shape[2])),
                     flat, point_of, coords[0], coords[1], coords[2],
                     (extent[0], extent[1], extent[2]), (axes[0], axes[1], axes[2]))  # fmt: skip
    _MERGED[key] = merged
    return merged


@dataclass(eq=False)
class Phantom:
    """One patient at one time point: anatomy, build, demographics, HU grid and findings."""

    anatomy: Anatomy
    hu: F32
    deformation: Deformation
    demographics: Demographics
    findings: list[InsertedFinding] = field(default_factory=list)


def build_phantom(
    anatomy: Anatomy,
    specs: list[FindingSpec],
    deformation: Deformation,
    demographics: Demographics,
) -> Phantom:
    """Insert the specified findings into a copy of the anatomy's HU grid."""
    canvas = Canvas(anatomy, anatomy.hu.copy(), np.zeros(anatomy.shape, dtype=bool))
    findings = insert(canvas, specs)
    return Phantom(anatomy, canvas.hu, deformation, demographics, findings)


@dataclass(eq=False)
class RenderedView:
    """One radiograph with what truth needs: geometry, line integrals, masks."""

    geometry: Geometry
    exposure: Exposure
    line_integral: F32
    masks: dict[str, Bool]
    lung_masks: dict[str, Bool]
    heart_mask: Bool
    midline: F32  # image column of the patient's midline for each row (frontal views)
    finding_layers: dict[str, F32]  # the analytic objects' own line integrals (mm of path)


def _geometry(
    phantom: Phantom, view: View, site: SiteProfile, pose: Pose, size: int | None
) -> Geometry:
    anatomy = phantom.anatomy
    pts = anatomy.positions(anatomy.body[:: max(1, anatomy.body.size // 20000)])
    moved = phantom.deformation.apply_points(pts)
    sid = site.sid_mm if view.frontal else 1800.0
    centre = np.asarray(phantom.deformation.apply_points(anatomy.lung_centre)[0])
    return make_geometry(
        view,
        centre=centre,
        body_min=moved.min(axis=0),
        body_max=moved.max(axis=0),
        sid_mm=sid,
        size=size or site.size,
        detector_mm=site.detector_mm,
        pose=rotation_matrix(pose.rotation_deg, pose.tilt_deg, pose.roll_deg),
    )


def _plan(phantom: Phantom, geometry: Geometry) -> tuple[_Merged, SplatPlan]:
    merged = _merged(phantom.anatomy, 1 if geometry.view.frontal else 0)
    key = (id(phantom.deformation), merged.axis)
    if key not in _DEFORMED:
        _DEFORMED.clear()  # one phantom's positions at a time: they are large
        _DEFORMED[key] = (
            phantom.deformation,
            phantom.deformation.apply_grid(merged.axes, merged.flat),
        )
    x, y, z = _DEFORMED[key][1]
    footprints = phantom.deformation.footprints(
        merged.axes, merged.flat, geometry.frame(), merged.extent
    )
    return merged, plan_splat(geometry, x, y, z, merged.extent, footprints)


_DEFORMED: dict[tuple[int, int], tuple[Deformation, tuple[F32, F32, F32]]] = {}


def _objects(phantom: Phantom, geometry: Geometry, finding: InsertedFinding, bone: float) -> F32:
    """Line integral of a finding's analytic objects (spheres, tubes) at output resolution."""
    image = np.zeros((geometry.rows, geometry.cols), dtype=np.float32)
    for sphere in finding.spheres:
        centre = phantom.deformation.apply_points(np.asarray(sphere.centre, dtype=np.float32))
        patch, (r0, c0, r1, c1) = sphere_line_integral(geometry, centre[0], sphere.radius_mm)
        # Between -1000 and 100 HU attenuation is linear in HU.
        image[r0:r1, c0:c1] += patch * np.float32(MU_WATER_PER_MM * sphere.delta_hu / 1000.0)
    for tube in finding.tubes:
        pts = phantom.deformation.apply_points(tube.points)
        mu = hu_to_mu(tube.hu, bone) * np.float32(tube.step_mm**3)
        image += splat(geometry, pts[:, 0], pts[:, 1], pts[:, 2], mu, tube.step_mm) * (
            geometry.obliquity()
        )
    return image


def render_view(
    phantom: Phantom,
    view: View,
    site: SiteProfile,
    pose: Pose,
    rng: np.random.Generator,
    *,
    size: int | None = None,
    truth: bool = True,
) -> RenderedView:
    """Render one radiograph of the phantom, with truth masks when ``truth``."""
    anatomy = phantom.anatomy
    geometry = _geometry(phantom, view, site, pose, size)
    merged, plan = _plan(phantom, geometry)
    mu = np.zeros(anatomy.hu.size, dtype=np.float32)
    mu[anatomy.body] = hu_to_mu(phantom.hu.ravel()[anatomy.body], site.bone_gain)
    weights = merged.gather(mu.reshape(anatomy.shape)) * np.float32(anatomy.voxel_volume_mm3)
    obliquity = geometry.obliquity()
    line = plan.image(weights) * obliquity
    layers: dict[str, F32] = {}
    for finding in phantom.findings:
        if finding.spheres or finding.tubes:
            layer = _objects(phantom, geometry, finding, site.bone_gain)
            line += layer
            layers[finding.id] = layer
    exposure = expose(
        line, site, rng, pixel_mm=geometry.pixel_mm, view=view, limits=_ct_field(phantom, geometry)
    )
    masks: dict[str, Bool] = {}
    lung_masks: dict[str, Bool] = {}
    heart = np.zeros(line.shape, dtype=bool)
    midline = np.zeros(line.shape[0], dtype=np.float32)
    if truth:
        volume = np.float32(anatomy.voxel_volume_mm3)

        def path_mask(voxels: I32) -> Bool:
            points, counts = merged.accumulate(anatomy, voxels)
            if points.size == 0:
                return np.zeros(line.shape, dtype=bool)
            return (plan.image(counts * volume, points) * obliquity) >= MASK_PATH_MM

        for finding in phantom.findings:
            mask = path_mask(finding.voxels) if finding.voxels.size else None
            if finding.id in layers:
                # Objects' layers are μ-weighted; their masks are where a ray meets them.
                obj = layers[finding.id] != 0
                mask = obj if mask is None else mask | obj
            if mask is None:
                mask = np.zeros(line.shape, dtype=bool)
            # Only what the collimated field shows is truth on this image.
            r0, c0, r1, c1 = exposure.field
            clipped = np.zeros_like(mask)
            clipped[r0:r1, c0:c1] = mask[r0:r1, c0:c1]
            masks[finding.id] = clipped
        reg = regions(anatomy)
        for side in ("right", "left"):
            lung_masks[side] = path_mask(reg.lung_voxels[side])
        enlarged = next((f for f in phantom.findings if f.code == "cardiomegaly"), None)
        heart = path_mask(enlarged.voxels if enlarged is not None else reg.heart_voxels)
        midline = _midline(phantom, geometry)
    return RenderedView(geometry, exposure, line, masks, lung_masks, heart, midline, layers)


def _ct_field(phantom: Phantom, geometry: Geometry) -> tuple[int, int, int, int]:
    """The image rectangle inside the CT's projected field of view (rows, cols, end-exclusive).

    Beyond the CT there is no anatomy, so the collimator's shutters close on it, as a
    radiographer collimates to the chest.
    """
    anatomy = phantom.anatomy
    lo = np.asarray(anatomy.origin_mm, dtype=np.float32)
    hi = lo + (np.asarray(anatomy.shape) - 1) * np.asarray(anatomy.spacing_mm, dtype=np.float32)
    side_axis = 0 if geometry.view.frontal else 1
    grid = [np.linspace(lo[a], hi[a], 9) for a in range(3)]

    def face(axis: int, value: float) -> F32:
        others = [a for a in range(3) if a != axis]
        p, q = np.meshgrid(grid[others[0]], grid[others[1]], indexing="ij")
        pts = np.empty((p.size, 3), dtype=np.float32)
        pts[:, axis], pts[:, others[0]], pts[:, others[1]] = value, p.ravel(), q.ravel()
        return pts

    def project(pts: F32) -> tuple[F32, F32]:
        u, v, _ = geometry.project(phantom.deformation.apply_points(pts))
        return u, v

    # Inner bounds: the nearest projected face on each side of the image.
    u_lo, _ = project(face(side_axis, float(lo[side_axis])))
    u_hi, _ = project(face(side_axis, float(hi[side_axis])))
    _, v_lo = project(face(2, float(lo[2])))
    _, v_hi = project(face(2, float(hi[2])))
    us = sorted([u_lo, u_hi], key=lambda u: float(u.mean()))
    left, right = float(us[0].max()), float(us[1].min())
    top, bottom = float(v_hi.max()), float(v_lo.min())
    return (
        max(0, int(np.ceil(top)) + 2),
        max(0, int(np.ceil(left)) + 2),
        min(geometry.rows, int(np.floor(bottom)) - 1),
        min(geometry.cols, int(np.floor(right)) - 1),
    )


def _midline(phantom: Phantom, geometry: Geometry) -> F32:
    """Image column of the spine's centre for each row (interpolated between vertebrae)."""
    pts = phantom.deformation.apply_points(regions(phantom.anatomy).vertebra_centres)
    u, v, _ = geometry.project(pts)
    order = np.argsort(v)
    rows = np.arange(geometry.rows, dtype=np.float32)
    return np.interp(rows, v[order], u[order]).astype(np.float32)
