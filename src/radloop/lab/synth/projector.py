"""Cone-beam projection of the working CT: digitally reconstructed radiographs by splatting.

A radiograph's log image is the line integral of attenuation along each ray from the focal
spot to a detector pixel. Instead of marching rays, every body voxel is projected onto the
detector (perspective, so magnification is SID / source-to-voxel distance) and its μ·volume is
spread over the pixels its footprint covers (area weighting, two pixels per axis). That sum is
the same line integral, at a cost linear in voxels and independent of the image size.

Voxels land on a native grid whose pixels are at least one magnified voxel wide, so the
footprints tile it without gaps (no moiré); the native image is then resampled to the output
grid. Small inserted objects (nodules, tubes) are rendered at output resolution.

Detector frame: ``u`` is the column, increasing to the image's right, ``v`` the row,
increasing downwards; pixel centres sit at integer (u, v). Frontal views put the patient's
right on the image's left; the lateral view (left lateral, LL) puts anterior on the left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

__all__ = [
    "Geometry",
    "SplatPlan",
    "View",
    "make_geometry",
    "plan_splat",
    "render_points",
    "rotation_matrix",
    "sphere_line_integral",
    "splat",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


class View(StrEnum):
    """Projection, as DICOM View Position (0018,5101) names it."""

    PA = "PA"
    AP = "AP"
    LL = "LL"

    @property
    def frontal(self) -> bool:
        return self is not View.LL


def rotation_matrix(rotation_deg: float, tilt_deg: float, roll_deg: float = 0.0) -> F64:
    """Patient pose: rotation about the long axis (z), tilt about x (lordotic), roll about y."""
    a, b, c = (math.radians(d) for d in (rotation_deg, tilt_deg, roll_deg))
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    ry = np.array([[math.cos(c), 0, math.sin(c)], [0, 1, 0], [-math.sin(c), 0, math.cos(c)]])
    return np.asarray(rz @ rx @ ry, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Geometry:
    """Source, detector and patient pose of one exposure, in patient (LPS) mm.

    ``pose`` rotates the patient about ``pivot`` before projection, so every projection of
    this exposure (anatomy, inserted findings, truth masks) sees the same pose.
    """

    view: View
    sid_mm: float
    source: F64
    detector_centre: F64
    e_u: F64
    e_v: F64
    rows: int
    cols: int
    pixel_mm: float
    pose: F64 = field(default_factory=lambda: np.eye(3))
    pivot: F64 = field(default_factory=lambda: np.zeros(3))

    @property
    def normal(self) -> F64:
        n = self.detector_centre - self.source
        return n / float(np.linalg.norm(n))

    def posed(self, xyz: F32) -> F32:
        """Positions after the patient's pose (…, 3)."""
        pose = self.pose.astype(np.float32)
        pivot = self.pivot.astype(np.float32)
        return ((xyz - pivot) @ pose.T + pivot).astype(np.float32)

    def frame(self) -> F64:
        """Rows e_u, e_v, normal in the patient's (unposed) frame: how the detector sees it."""
        return self._affine()[0]

    def _affine(self) -> tuple[F64, F64]:
        """Rows (e_u, e_v, normal) applied to posed, source-relative positions: p ↦ A p + b."""
        frame = np.stack([self.e_u, self.e_v, self.normal])
        a = frame @ self.pose
        b = frame @ (self.pivot - self.pose @ self.pivot - self.source)
        return a, b

    def project(self, xyz: F32) -> tuple[F32, F32, F32]:
        """Column u, row v (pixel units) and magnification t of positions (N, 3)."""
        xyz = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
        return self.project_axes(xyz[:, 0], xyz[:, 1], xyz[:, 2])

    def project_axes(self, x: F32, y: F32, z: F32) -> tuple[F32, F32, F32]:
        """As ``project``, for positions given as three arrays (faster for millions)."""
        a64, b64 = self._affine()
        a, b = a64.astype(np.float32), b64.astype(np.float32)
        depth = x * a[2, 0] + y * a[2, 1] + z * a[2, 2] + b[2]
        t = np.float32(self.sid_mm) / depth
        scale = t / np.float32(self.pixel_mm)
        u = (x * a[0, 0] + y * a[0, 1] + z * a[0, 2] + b[0]) * scale
        u += np.float32((self.cols - 1) / 2)
        v = (x * a[1, 0] + y * a[1, 1] + z * a[1, 2] + b[1]) * scale
        v += np.float32((self.rows - 1) / 2)
        return u, v, t

    def footprint_mm(self, extent: tuple[float, float, float]) -> tuple[float, float]:
        """Width along u and v of an axis-aligned box of ``extent`` mm after the pose."""
        a, _ = self._affine()
        ext = np.asarray(extent)
        return float(np.abs(a[0]) @ ext), float(np.abs(a[1]) @ ext)

    def pixel_positions(self, rows: F64, cols: F64) -> F64:
        """World positions on the detector of pixel coordinates (any shape) → (…, 3)."""
        du = (cols - (self.cols - 1) / 2) * self.pixel_mm
        dv = (rows - (self.rows - 1) / 2) * self.pixel_mm
        return self.detector_centre + du[..., None] * self.e_u + dv[..., None] * self.e_v

    def obliquity(self) -> F32:
        """1 / cos θ per pixel: how much longer an oblique ray's path is than a straight one."""
        rr, cc = np.mgrid[0 : self.rows, 0 : self.cols].astype(np.float64)
        du = (cc - (self.cols - 1) / 2) * self.pixel_mm
        dv = (rr - (self.rows - 1) / 2) * self.pixel_mm
        return np.asarray(np.sqrt(self.sid_mm**2 + du**2 + dv**2) / self.sid_mm, dtype=np.float32)

    def magnification_at(self, xyz: F32) -> float:
        return float(self.project(np.asarray(xyz, dtype=np.float32).reshape(1, 3))[2][0])

    def resized(self, rows: int, cols: int, pixel_mm: float) -> Geometry:
        return Geometry(
            self.view, self.sid_mm, self.source, self.detector_centre, self.e_u, self.e_v,
            rows, cols, pixel_mm, self.pose, self.pivot,
        )  # fmt: skip


def make_geometry(
    view: View,
    *,
    centre: F32,
    body_min: F32,
    body_max: F32,
    sid_mm: float,
    size: int,
    detector_mm: float = 430.0,
    pose: F64 | None = None,
    gap_mm: float = 15.0,
) -> Geometry:
    """An exposure with the detector against the patient and the central ray through ``centre``.

    PA: source behind the patient, detector at the anterior chest. AP: source in front,
    detector behind the back. LL: source at the patient's right, detector at the left side.
    """
    c = np.asarray(centre, dtype=np.float64)
    if view is View.PA:
        beam = np.array([0.0, -1.0, 0.0])  # posterior → anterior
        e_u, e_v = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, -1.0])
        plane = float(body_min[1]) - gap_mm
        detector = np.array([c[0], plane, c[2]])
    elif view is View.AP:
        beam = np.array([0.0, 1.0, 0.0])
        e_u, e_v = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, -1.0])
        plane = float(body_max[1]) + gap_mm
        detector = np.array([c[0], plane, c[2]])
    else:
        beam = np.array([1.0, 0.0, 0.0])  # right → left
        e_u, e_v = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -1.0])
        plane = float(body_max[0]) + gap_mm
        detector = np.array([plane, c[1], c[2]])
    source = detector - sid_mm * beam
    return Geometry(
        view=view,
        sid_mm=sid_mm,
        source=source,
        detector_centre=detector,
        e_u=e_u,
        e_v=e_v,
        rows=size,
        cols=size,
        pixel_mm=detector_mm / size,
        pose=np.eye(3) if pose is None else pose,
        pivot=c,
    )


def splat(geometry: Geometry, x: F32, y: F32, z: F32, values: F32, spacing_mm: float) -> F32:
    """Splat finely sampled points (μ·volume each) straight onto the output grid.

    For objects sampled more finely than a pixel (tubes, wires); ``spacing_mm`` is the
    sampling step, which must project to at most one pixel.
    """
    extent = (spacing_mm, spacing_mm, spacing_mm)
    footprint = geometry.footprint_mm(extent)
    u, v, t = geometry.project_axes(x, y, z)
    rows, cols = geometry.rows, geometry.cols
    stride = cols + 4
    iu, fu = _taps(u, np.minimum(t * np.float32(footprint[0] / geometry.pixel_mm), 1), cols)
    iv, fv = _taps(v, np.minimum(t * np.float32(footprint[1] / geometry.pixel_mm), 1), rows)
    flat = iv * stride + iu
    size = (rows + 4) * stride
    w = values * t * t / np.float32(geometry.pixel_mm**2)
    a = w * fv
    b = w - a
    image = np.bincount(flat, a * fu, size)
    image += np.bincount(flat + 1, a - a * fu, size)
    image += np.bincount(flat + stride, b * fu, size)
    image += np.bincount(flat + stride + 1, b - b * fu, size)
    return image.reshape(rows + 4, stride)[2:-2, 2:-2].astype(np.float32)


def _interp_matrix(n_out: int, n_in: int, scale: float) -> F64:
    """Linear interpolation from a centred grid of n_in to n_out samples; scale = out / in px."""
    pos = (np.arange(n_out) - (n_out - 1) / 2) * scale + (n_in - 1) / 2
    pos = np.clip(pos, 0, n_in - 1)
    low = np.minimum(np.floor(pos).astype(np.int64), n_in - 2)
    frac = pos - low
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), low] = 1 - frac
    m[np.arange(n_out), low + 1] = frac
    return m


@dataclass(frozen=True, eq=False)
class SplatPlan:
    """The projection of one point set in one exposure, ready to splat any per-point values.

    Projecting is the costly part; a plan computes it once so the image, the label masks and
    each finding's mask reuse it.
    """

    geometry: Geometry
    flat: npt.NDArray[np.int64]
    fu: F32
    fv: F32
    scale: F32
    native_shape: tuple[int, int]
    resample_rows: F64
    resample_cols: F64

    def image(self, values: F32, subset: npt.NDArray[np.intp] | None = None) -> F32:
        """Line integral (per unit of value·mm³/mm²) of per-point values, output grid.

        ``values`` holds μ·volume per point (or any quantity·volume); with ``subset`` only
        those points are splatted and ``values`` is given for them only.
        """
        nrows, ncols = self.native_shape
        stride = ncols + 4
        size = (nrows + 4) * stride
        if subset is None:
            flat, fu, fv, w = self.flat, self.fu, self.fv, values * self.scale
        else:
            flat, fu, fv = self.flat[subset], self.fu[subset], self.fv[subset]
            w = values * self.scale[subset]
        a = w * fv
        b = w - a
        native = np.bincount(flat, a * fu, size)
        native += np.bincount(flat + 1, a - a * fu, size)
        native += np.bincount(flat + stride, b * fu, size)
        native += np.bincount(flat + stride + 1, b - b * fu, size)
        grid: F64 = np.asarray(native.reshape(nrows + 4, stride)[2:-2, 2:-2], dtype=np.float64)
        # Posed and deformed boxes do not tile exactly; a light low-pass removes the ripple.
        grid = _smooth3(_smooth3(grid, 0), 1)
        return (self.resample_rows @ grid @ self.resample_cols.T).astype(np.float32)


def _smooth3(grid: F64, axis: int) -> F64:
    """[1 2 1]/4 along one axis, edges repeated."""
    padded = np.concatenate(
        [np.take(grid, [0], axis=axis), grid, np.take(grid, [-1], axis=axis)], axis=axis
    )
    n = grid.shape[axis]
    a = np.take(padded, np.arange(0, n), axis=axis)
    b = np.take(padded, np.arange(1, n + 1), axis=axis)
    c = np.take(padded, np.arange(2, n + 2), axis=axis)
    return np.asarray(0.25 * a + 0.5 * b + 0.25 * c)


def _taps(centre: F32, width: F32, n: int) -> tuple[npt.NDArray[np.int64], F32]:
    low = centre - np.float32(0.5) * width
    k0 = np.floor(low + np.float32(0.5))
    first = np.clip((k0 + np.float32(0.5) - low) / width, 0.0, 1.0).astype(np.float32)
    # Two padding pixels each side catch footprints off the detector.
    return np.clip(k0, -2, n).astype(np.int64) + 2, first


def plan_splat(
    geometry: Geometry,
    x: F32,
    y: F32,
    z: F32,
    extent_mm: tuple[float, float, float],
    footprints: tuple[F32, F32] | None = None,
) -> SplatPlan:
    """Project points whose boxes measure ``extent_mm`` along x, y, z onto a native grid.

    ``footprints`` gives each point's own width along u and v in mm (deformed boxes), so
    neighbouring footprints still tile without gaps or overlap.
    """
    u, v, t = geometry.project_axes(x, y, z)
    if footprints is None:
        fixed = geometry.footprint_mm(extent_mm)
        foot_u: F32 = np.full(x.size, fixed[0], dtype=np.float32)
        foot_v: F32 = np.full(x.size, fixed[1], dtype=np.float32)
    else:
        foot_u, foot_v = footprints
    t_max = float(t.max()) if t.size else 1.0
    native_u = max(float((foot_u * t).max()) if t.size else 1.0, geometry.pixel_mm)
    native_v = max(float((foot_v * t).max()) if t.size else 1.0, geometry.pixel_mm)
    del t_max
    ncols = math.ceil(geometry.cols * geometry.pixel_mm / native_u) + 2
    nrows = math.ceil(geometry.rows * geometry.pixel_mm / native_v) + 2
    su = geometry.pixel_mm / native_u
    sv = geometry.pixel_mm / native_v
    un = (u - np.float32((geometry.cols - 1) / 2)) * np.float32(su)
    un += np.float32((ncols - 1) / 2)
    vn = (v - np.float32((geometry.rows - 1) / 2)) * np.float32(sv)
    vn += np.float32((nrows - 1) / 2)
    iu, fu = _taps(un, t * foot_u / np.float32(native_u), ncols)
    iv, fv = _taps(vn, t * foot_v / np.float32(native_v), nrows)
    return SplatPlan(
        geometry=geometry,
        flat=iv * (ncols + 4) + iu,
        fu=fu,
        fv=fv,
        scale=(t * t / np.float32(native_u * native_v)).astype(np.float32),
        native_shape=(nrows, ncols),
        resample_rows=_interp_matrix(geometry.rows, nrows, sv),
        resample_cols=_interp_matrix(geometry.cols, ncols, su),
    )


def render_points(
    geometry: Geometry,
    x: F32,
    y: F32,
    z: F32,
    mu_volume: F32,
    extent_mm: tuple[float, float, float],
) -> F32:
    """Line-integral image of points carrying μ·volume (mm²), at the geometry's resolution.

    ``extent_mm`` is a point's box along x, y, z. The result excludes the 1/cos θ path
    factor, which the caller applies once for all contributions.
    """
    return plan_splat(geometry, x, y, z, extent_mm).image(mu_volume)


def sphere_line_integral(
    geometry: Geometry, centre: F32, radius_mm: float, supersample: int = 3
) -> tuple[F32, tuple[int, int, int, int]]:
    """Chord length (mm) through a sphere along every ray, in its bounding box of pixels.

    Exact for the cone beam (each ray's distance from the centre), averaged over
    ``supersample``² rays per pixel. Returns the patch and its box (row0, col0, row1, col1),
    end-exclusive, clipped to the image.
    """
    c = geometry.posed(np.asarray(centre, dtype=np.float32).reshape(1, 3))[0].astype(np.float64)
    u, v, t = geometry.project(np.asarray(centre, dtype=np.float32).reshape(1, 3))
    half = radius_mm * float(t[0]) * 1.15 / geometry.pixel_mm + 2
    r0 = max(0, math.floor(float(v[0]) - half))
    r1 = min(geometry.rows, math.ceil(float(v[0]) + half) + 1)
    c0 = max(0, math.floor(float(u[0]) - half))
    c1 = min(geometry.cols, math.ceil(float(u[0]) + half) + 1)
    if r1 <= r0 or c1 <= c0:
        return np.zeros((0, 0), dtype=np.float32), (0, 0, 0, 0)
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    rr = (np.arange(r0, r1)[:, None] + offsets[None, :]).ravel()
    cc = (np.arange(c0, c1)[:, None] + offsets[None, :]).ravel()
    grid_r, grid_c = np.meshgrid(rr, cc, indexing="ij")
    q = geometry.pixel_positions(grid_r, grid_c)
    d = q - geometry.source
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    sc = c - geometry.source
    along = d @ sc
    dist2 = float(sc @ sc) - along**2
    chord = 2.0 * np.sqrt(np.clip(radius_mm**2 - dist2, 0.0, None))
    h, w = r1 - r0, c1 - c0
    patch = chord.reshape(h, supersample, w, supersample).mean(axis=(1, 3))
    return patch.astype(np.float32), (r0, c0, r1, c1)
