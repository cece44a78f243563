"""Findings inserted in 3D where the anatomy says they belong, each with its exact truth.

Each inserter edits the study's HU grid (effusion, pneumothorax, consolidation, edema,
cardiomegaly, rib fracture) or adds an analytic object (nodule and mass as spheres; tubes and
lines as finely sampled point clouds), and records what it did: the voxels it changed, the
objects it added, and the 3D truth (side, lobe, vertebral level, size in mm, tip distance).
Image truth (mask, box, zones, cardiothoracic ratio) is measured later on the projection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from radloop.lab.synth import _deps
from radloop.lab.synth.anatomy import LOBE_STRUCTURES, Anatomy
from radloop.lab.synth.regions import regions
from radloop.report.types import Severity
from radloop.vocabulary import REFERENCE_FINDINGS, Lobe, Side, VertebralLevel

__all__ = [
    "FINDING_TYPES",
    "Canvas",
    "FindingSpec",
    "FractureSite",
    "InsertedFinding",
    "Sphere",
    "Tube",
    "callus_spheres",
    "fracture_site",
    "insert",
]

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
Bool = npt.NDArray[np.bool_]

FINDING_TYPES: tuple[str, ...] = REFERENCE_FINDINGS
"""The finding types the lab inserts: the vocabulary's reference list."""


@dataclass(frozen=True)
class Sphere:
    """A ball of ``delta_hu`` above its surroundings (undeformed centre, mm)."""

    centre: tuple[float, float, float]
    radius_mm: float
    delta_hu: float


@dataclass(frozen=True, eq=False)
class Tube:
    """A finely sampled object: points (undeformed, mm), each of ``step_mm``³ at ``hu``."""

    points: F32
    hu: F32
    step_mm: float


@dataclass(eq=False)
class InsertedFinding:
    """One inserted finding: its 3D truth and what it changed in the phantom."""

    code: str
    side: Side | None = None
    lobes: tuple[Lobe, ...] = ()
    vertebral_level: VertebralLevel | None = None
    size_mm: float | None = None
    severity: Severity | None = None
    tip_distance_mm: float | None = None
    tip_reference: str | None = None
    centre_mm: tuple[float, float, float] | None = None
    details: dict[str, float | str] = field(default_factory=dict)
    voxels: I32 = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    spheres: tuple[Sphere, ...] = ()
    tubes: tuple[Tube, ...] = ()
    id: str = ""


@dataclass(eq=False)
class Canvas:
    """The study being built: the HU grid findings edit and which voxels are taken."""

    anatomy: Anatomy
    hu: F32
    taken: Bool
    scale: float = 1.0  # size multiplier of the finding being inserted (longitudinal pairs)

    def claim(self, flat: I32) -> None:
        self.taken.ravel()[flat] = True


def _pos(anatomy: Anatomy, flat: int) -> tuple[float, float, float]:
    p = anatomy.positions(np.asarray([flat], dtype=np.int32))[0]
    return float(p[0]), float(p[1]), float(p[2])


def _ball(anatomy: Anatomy, centre: tuple[float, float, float], radius: float) -> I32:
    """Flat indices of grid voxels whose centres lie within ``radius`` of ``centre``."""
    c = anatomy.world_to_index(np.asarray(centre, dtype=np.float32))
    reach = [int(np.ceil(radius / s)) + 1 for s in anatomy.spacing_mm]
    lo = [max(0, int(c[a]) - reach[a]) for a in range(3)]
    hi = [min(anatomy.shape[a], int(c[a]) + reach[a] + 2) for a in range(3)]
    axes = [
        anatomy.origin_mm[a] + np.arange(lo[a], hi[a]) * anatomy.spacing_mm[a] - centre[a]
        for a in range(3)
    ]
    d2 = axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[2][None, None, :] ** 2
    ii, jj, kk = np.nonzero(d2 <= radius**2)
    return np.ravel_multi_index((ii + lo[0], jj + lo[1], kk + lo[2]), anatomy.shape).astype(
        np.int32
    )


def _nodule(canvas: Canvas, rng: np.random.Generator, *, mass: bool) -> InsertedFinding | None:
    anatomy = canvas.anatomy
    lobes = list(LOBE_STRUCTURES)
    lobe = lobes[int(rng.integers(len(lobes)))]
    depths = regions(anatomy).lobe_depths[lobe]
    # The place is chosen for the full-size lesion, so that a pair's smaller study (scale
    # below 1) has it in the same place.
    full = float(rng.uniform(32.0, 55.0) if mass else rng.uniform(6.0, 26.0))
    for _ in range(12):
        diameter = full * min(canvas.scale, 1.0)
        radius = diameter / 2
        ok = np.flatnonzero(depths.depth >= max(full / 2, radius) + 4.0)
        if ok.size == 0:
            full *= 0.85
            continue
        flat = int(depths.flat[ok[int(rng.integers(ok.size))]])
        centre = _pos(anatomy, flat)
        ball = _ball(anatomy, centre, radius + 2.0)
        if canvas.taken.ravel()[ball].any():
            continue
        canvas.claim(ball)
        surround = float(np.mean(canvas.hu.ravel()[ball]))
        return InsertedFinding(
            code="mass" if mass else "nodule",
            side=lobe.side,
            lobes=(lobe,),
            vertebral_level=anatomy.vertebral_level(centre[2]),
            size_mm=round(diameter, 1),
            centre_mm=centre,
            spheres=(Sphere(centre, radius, 35.0 - surround),),
        )
    return None


def _consolidation(canvas: Canvas, rng: np.random.Generator) -> InsertedFinding | None:
    anatomy = canvas.anatomy
    lobe = list(LOBE_STRUCTURES)[int(rng.integers(len(LOBE_STRUCTURES)))]
    depths = regions(anatomy).lobe_depths[lobe]
    lobar = bool(rng.random() < 0.4)
    if lobar:
        region = depths.flat
        if canvas.scale < 1.0:
            # A lobar consolidation at a smaller scale (a longitudinal pair) fills that share
            # of its lobe's volume, about the lobe's centre, so the pair's change is real.
            pts = anatomy.positions(region)
            order = np.argsort(((pts - pts.mean(axis=0)) ** 2).sum(axis=1), kind="stable")
            region = np.sort(region[order[: max(1, round(canvas.scale * region.size))]])
    else:
        ok = np.flatnonzero(depths.depth >= 10.0)
        centre = _pos(anatomy, int(depths.flat[ok[int(rng.integers(ok.size))]]))
        ball = _ball(anatomy, centre, float(rng.uniform(25.0, 40.0)) * canvas.scale)
        region = np.intersect1d(ball, depths.flat).astype(np.int32)
    region = region[~canvas.taken.ravel()[region]]
    if region.size < 50:
        return None
    hu = canvas.hu.ravel()
    # Airways inside the lobe stay air: air bronchograms.
    region = region[hu[region] > -930]
    target = float(rng.uniform(-120.0, 10.0))
    texture = rng.normal(0.0, 40.0, size=region.size).astype(np.float32)
    hu[region] = np.float32(target) + texture
    canvas.claim(region)
    centre = anatomy.positions(region).mean(axis=0)
    return InsertedFinding(
        code="consolidation",
        side=lobe.side,
        lobes=(lobe,),
        vertebral_level=anatomy.vertebral_level(float(centre[2])),
        severity=Severity.MODERATE if lobar else Severity.MILD,
        centre_mm=(float(centre[0]), float(centre[1]), float(centre[2])),
        details={"extent": "lobar" if lobar else "segmental",
                 "volume_ml": round(region.size * anatomy.voxel_volume_mm3 / 1000, 1)},
        voxels=region,
    )  # fmt: skip


def _effusion(canvas: Canvas, rng: np.random.Generator) -> InsertedFinding | None:
    anatomy = canvas.anatomy
    side = Side.RIGHT if rng.random() < 0.5 else Side.LEFT
    depths = regions(anatomy).lung_depths[side.value]
    free = ~canvas.taken.ravel()[depths.flat]
    flat, depth = depths.flat[free], depths.depth[free]
    pts = anatomy.positions(flat)
    z = pts[:, 2]
    # Lateral distance from the lung's outer edge on the same row and slice.
    _, j, k = np.unravel_index(flat, anatomy.shape)
    key = j.astype(np.int64) * anatomy.shape[2] + k
    lines = anatomy.shape[1] * anatomy.shape[2]
    x = pts[:, 0]
    if side is Side.RIGHT:
        outer_fill = np.full(lines, np.inf, dtype=np.float32)
        np.minimum.at(outer_fill, key, x)
        lateral = x - outer_fill[key]
    else:
        outer_fill = np.full(lines, -np.inf, dtype=np.float32)
        np.maximum.at(outer_fill, key, x)
        lateral = outer_fill[key] - x
    # Fluid settles to the bottom but climbs the chest wall: the meniscus and the
    # blunted costophrenic angle come from ranking voxels by height minus a lift that is
    # largest at the lateral wall and along the pleural surface.
    lift = float(rng.uniform(30.0, 60.0))
    height = (z - z.min()) - lift * np.exp(-lateral / 35.0) - 0.4 * lift * np.exp(-depth / 10.0)
    volume_ml = float(rng.uniform(150.0, 1200.0)) * canvas.scale
    count = min(int(volume_ml * 1000 / anatomy.voxel_volume_mm3), flat.size // 2)
    chosen = flat[np.argsort(height, kind="stable")[:count]].astype(np.int32)
    canvas.hu.ravel()[chosen] = 12.0
    canvas.claim(chosen)
    volume_ml = count * anatomy.voxel_volume_mm3 / 1000
    severity = (
        Severity.SMALL if volume_ml < 500 else Severity.MODERATE if volume_ml < 1000
        else Severity.LARGE
    )  # fmt: skip
    centre = anatomy.positions(chosen).mean(axis=0)
    return InsertedFinding(
        code="pleural_effusion",
        side=side,
        vertebral_level=anatomy.vertebral_level(float(centre[2])),
        severity=severity,
        centre_mm=(float(centre[0]), float(centre[1]), float(centre[2])),
        details={"volume_ml": round(volume_ml, 1)},
        voxels=chosen,
    )


def _pneumothorax(canvas: Canvas, rng: np.random.Generator) -> InsertedFinding | None:
    anatomy = canvas.anatomy
    side = Side.RIGHT if rng.random() < 0.5 else Side.LEFT
    lung = anatomy.lung_mask(side.value)
    rim = float(rng.uniform(8.0, 35.0)) * canvas.scale
    nx, _, nz = anatomy.shape
    sx, _, sz = anatomy.spacing_mm
    xs = np.arange(nx)[:, None, None]
    # Erect, the air collects apicolaterally: a band inside the lung's outermost edge on each
    # slice (so a PA film sees the pleural line edge-on) and a cap below the apex.
    per_slice: Bool = np.asarray(lung.any(axis=1), dtype=bool)  # (x, z)
    if side is Side.RIGHT:
        edge = np.where(per_slice.any(axis=0), per_slice.argmax(axis=0), nx)[None, None, :]
        lateral = (xs - edge) * sx
    else:
        last = nx - 1 - per_slice[::-1].argmax(axis=0)
        edge = np.where(per_slice.any(axis=0), last, -1)[None, None, :]
        lateral = (edge - xs) * sx
    zs = np.arange(nz)[None, None, :]
    top = int(np.flatnonzero(lung.any(axis=(0, 1))).max())
    apical = (top - zs) * sz
    air = lung & ((lateral < rim) | (apical < rim * 1.2)) & ~canvas.taken
    air_flat = np.flatnonzero(air).astype(np.int32)
    rest = np.flatnonzero(lung & ~air).astype(np.int32)
    hu = canvas.hu.ravel()
    # The collapsed lung keeps its mass in less volume, so it is denser.
    ratio = (air_flat.size + rest.size) / max(rest.size, 1)
    hu[rest] = np.minimum(-1000.0 + (hu[rest] + 1000.0) * ratio, 0.0)
    # The visceral pleural line: the collapsed lung's outer shell.
    ndimage = _deps.ndimage()

    shell = ndimage.binary_dilation(air) & lung & ~air
    hu[np.flatnonzero(shell)] = np.maximum(hu[np.flatnonzero(shell)], -250.0)
    hu[air_flat] = -1000.0
    canvas.claim(air_flat)
    centre = anatomy.positions(air_flat).mean(axis=0)
    return InsertedFinding(
        code="pneumothorax",
        side=side,
        vertebral_level=anatomy.vertebral_level(float(centre[2])),
        severity=Severity.LARGE if rim >= 20.0 else Severity.SMALL,
        size_mm=round(rim, 1),
        centre_mm=(float(centre[0]), float(centre[1]), float(centre[2])),
        details={"rim_mm": round(rim, 1),
                 "volume_ml": round(air_flat.size * anatomy.voxel_volume_mm3 / 1000, 1)},
        voxels=air_flat,
    )  # fmt: skip


def _cardiomegaly(canvas: Canvas, rng: np.random.Generator) -> InsertedFinding | None:
    anatomy = canvas.anatomy
    heart = anatomy.mask("heart")
    centre = anatomy.centroid("heart")
    factor = 1.0 + float(rng.uniform(0.3, 0.5)) * canvas.scale
    ndimage = _deps.ndimage()

    # A voxel is heart when its pre-image under the scaling lies in the heart; only the
    # heart's box grown by the factor can change.
    c = anatomy.world_to_index(centre)
    ijk = np.argwhere(heart)
    lo = np.maximum(np.floor(c + (ijk.min(axis=0) - c) * factor).astype(int) - 1, 0)
    hi = np.minimum(np.ceil(c + (ijk.max(axis=0) - c) * factor).astype(int) + 2, anatomy.shape)
    idx = np.indices(tuple(int(v) for v in hi - lo), dtype=np.float32)
    back = [c[a] + (idx[a] + lo[a] - c[a]) / factor for a in range(3)]
    grown = np.zeros(anatomy.shape, dtype=bool)
    grown[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = (
        ndimage.map_coordinates(heart.astype(np.float32), back, order=0) > 0.5
    )
    lungs = regions(anatomy).lungs
    soft = (anatomy.labels == 0) & (canvas.hu > -200) & (canvas.hu < 100)
    added = grown & ~heart & (lungs | soft) & ~canvas.taken
    flat = np.flatnonzero(added).astype(np.int32)
    canvas.hu.ravel()[flat] = 40.0
    canvas.claim(flat)
    support = np.flatnonzero(heart | added).astype(np.int32)
    return InsertedFinding(
        code="cardiomegaly",
        centre_mm=(float(centre[0]), float(centre[1]), float(centre[2])),
        details={"scale": round(factor, 3)},
        voxels=support,
    )


def _edema(canvas: Canvas, rng: np.random.Generator) -> InsertedFinding | None:
    anatomy = canvas.anatomy
    lungs = np.flatnonzero(regions(anatomy).lungs & ~canvas.taken).astype(np.int32)
    pts = anatomy.positions(lungs)
    carina = anatomy.carina_mm
    offset = np.asarray([55.0, 10.0, -15.0], dtype=np.float32)
    mirror = np.asarray([-1.0, 1.0, 1.0], dtype=np.float32)
    hila = [carina + offset * mirror, carina + offset]
    dist = np.minimum(*(np.linalg.norm(pts - h, axis=1) for h in hila))
    strength = float(rng.uniform(120.0, 300.0)) * canvas.scale
    # Perihilar haze fading outwards, with a reticular texture of thickened septa.
    increment = strength * np.exp(-dist / 70.0) * (1.0 + 0.5 * rng.standard_normal(lungs.size))
    hu = canvas.hu.ravel()
    hu[lungs] = np.minimum(hu[lungs] + increment.astype(np.float32), 40.0)
    # Diffuse: nodules may still sit in oedematous lung, so nothing is claimed.
    region = lungs[increment > 0.35 * strength]
    return InsertedFinding(
        code="edema",
        side=Side.BILATERAL,
        severity=Severity.MILD if strength < 200 else Severity.MODERATE,
        details={"kind": "interstitial", "hu_increase": round(strength, 1)},
        voxels=region.astype(np.int32),
    )


def _tube_points(path: F32, radius: float, inner: float, step: float) -> F32:
    """Points filling an annulus of radii (inner, radius) swept along a polyline."""
    seg = np.diff(path, axis=0)
    lengths = np.linalg.norm(seg, axis=1)
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    s = np.arange(0.0, float(cum[-1]), step)
    centres = np.stack([np.interp(s, cum, path[:, a]) for a in range(3)], axis=1)
    tangents = np.gradient(centres, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True) + 1e-9
    ref = np.where(np.abs(tangents[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    n1 = np.cross(tangents, ref)
    n1 /= np.linalg.norm(n1, axis=1, keepdims=True)
    n2 = np.cross(tangents, n1)
    grid = np.arange(-radius, radius + 1e-6, step)
    a, b = np.meshgrid(grid, grid, indexing="ij")
    r = np.hypot(a, b)
    keep = (r <= radius) & (r >= inner)
    a, b = a[keep], b[keep]
    pts = (
        centres[:, None, :] + a[None, :, None] * n1[:, None, :] + b[None, :, None] * n2[:, None, :]
    )
    return np.asarray(pts.reshape(-1, 3), dtype=np.float32)


def _smooth(path: F32, passes: int = 4) -> F32:
    out = path.copy()
    for _ in range(passes):
        out[1:-1] = 0.25 * out[:-2] + 0.5 * out[1:-1] + 0.25 * out[2:]
    return out


def _ett(canvas: Canvas, rng: np.random.Generator) -> InsertedFinding | None:
    anatomy = canvas.anatomy
    line = regions(anatomy).centreline("trachea")  # top → bottom
    carina = anatomy.carina_mm
    above = float(rng.uniform(15.0, 75.0))
    tip_z = float(carina[2]) + above
    upper = line[line[:, 2] >= tip_z]
    if upper.shape[0] < 2:
        return None
    tip = np.array([np.interp(tip_z, line[::-1, 2], line[::-1, a]) for a in range(3)])
    top = upper[0]
    # Out of the neck towards the mouth: up and forwards, beyond the image's top.
    mouth = top + np.array([0.0, -40.0, 160.0])
    path = _smooth(
        np.vstack([mouth, top + np.array([0.0, -10.0, 60.0]), upper, tip]).astype(np.float32)
    )
    wall = _tube_points(path, 5.0, 4.0, 0.5)
    stripe = _tube_points(path + np.asarray([4.3, 0.0, 0.0], dtype=np.float32), 0.8, 0.0, 0.4)
    return InsertedFinding(
        code="endotracheal_tube",
        vertebral_level=anatomy.vertebral_level(tip_z),
        tip_distance_mm=round(above, 1),
        tip_reference="carina",
        centre_mm=(float(tip[0]), float(tip[1]), float(tip[2])),
        details={"tip": "trachea"},
        tubes=(Tube(wall, np.full(len(wall), 300.0, dtype=np.float32), 0.5),
               Tube(stripe, np.full(len(stripe), 2500.0, dtype=np.float32), 0.4)),
    )  # fmt: skip


def _cvc(canvas: Canvas, rng: np.random.Generator) -> InsertedFinding | None:
    anatomy = canvas.anatomy
    reg = regions(anatomy)
    side = Side.RIGHT if rng.random() < 0.7 else Side.LEFT
    svc = reg.centreline("superior_vena_cava")
    vein = reg.centreline(f"brachiocephalic_vein_{side.value}")
    if svc.shape[0] < 3 or vein.shape[0] < 2:
        return None
    lowest = float(svc[-1, 2])
    tip_z = lowest + float(rng.uniform(-5.0, 35.0))
    tip = np.array([np.interp(tip_z, svc[::-1, 2], svc[::-1, a]) for a in range(3)])
    sign = -1.0 if side is Side.RIGHT else 1.0
    if side is Side.RIGHT:
        # Right internal jugular: down the neck lateral to the carotid, into the SVC.
        entry = vein[0] + np.array([sign * 12.0, 5.0, 120.0])
        path = np.vstack([entry, vein[0] + [sign * 6.0, 0, 40.0], vein, svc[svc[:, 2] > tip_z]])
        approach = "right internal jugular"
    else:
        # Left subclavian: from lateral to the clavicle, across the left brachiocephalic vein.
        lateral = vein[np.argmax(vein[:, 0])]
        entry = lateral + np.array([70.0, -10.0, 10.0])
        order = np.argsort(-vein[:, 0])
        path = np.vstack([entry, vein[order], svc[svc[:, 2] > tip_z]])
        approach = "left subclavian"
    path = _smooth(np.vstack([path, tip]).astype(np.float32), passes=6)
    path[-1] = tip
    points = _tube_points(path, 1.1, 0.0, 0.4)
    carina = anatomy.carina_mm
    return InsertedFinding(
        code="central_venous_catheter",
        side=side,
        vertebral_level=anatomy.vertebral_level(tip_z),
        tip_distance_mm=round(tip_z - float(carina[2]), 1),
        tip_reference="carina",
        centre_mm=(float(tip[0]), float(tip[1]), float(tip[2])),
        details={"approach": approach,
                 "tip": "cavoatrial junction" if tip_z < lowest + 10 else "superior vena cava"},
        tubes=(Tube(points, np.full(len(points), 1800.0, dtype=np.float32), 0.4),),
    )  # fmt: skip


@dataclass(frozen=True, eq=False)
class FractureSite:
    """Where a rib breaks: the rib (side, number, its voxels and their positions) and the
    point of the break (undeformed, mm)."""

    side: Side
    number: int
    voxels: I32
    positions: F32
    at: F32


def fracture_site(anatomy: Anatomy, rng: np.random.Generator) -> FractureSite | None:
    """A rib (4th–9th, either side) and a point on its lateral arc, where a frontal film shows
    the rib edge-on; None when the label map lacks that rib."""
    side = Side.RIGHT if rng.random() < 0.5 else Side.LEFT
    number = int(rng.integers(4, 10))
    rib = regions(anatomy).rib(side.value, number)
    if rib.size < 20:
        return None
    pts = anatomy.positions(rib)
    lateral = np.abs(pts[:, 0] - regions(anatomy).midline_x)
    candidates = np.flatnonzero(lateral >= np.percentile(lateral, 85))
    at = pts[candidates[int(rng.integers(candidates.size))]]
    return FractureSite(side, number, rib, pts, at)


def _rib_fracture(canvas: Canvas, rng: np.random.Generator) -> InsertedFinding | None:
    anatomy = canvas.anatomy
    site = fracture_site(anatomy, rng)
    if site is None:
        return None
    side, number, rib, pts, at = site.side, site.number, site.voxels, site.positions, site.at
    gap = float(rng.uniform(3.0, 6.0))
    d = np.linalg.norm(pts - at, axis=1)
    hu = canvas.hu.ravel()
    broken = rib[d <= gap]
    # The anterior fragment steps down by one slice.
    fragment = rib[(d > gap) & (d < gap + 25.0) & (pts[:, 1] < at[1])]
    i, j, k = np.unravel_index(fragment, anatomy.shape)
    keep = k > 0
    moved_to = np.ravel_multi_index((i[keep], j[keep], k[keep] - 1), anatomy.shape)
    values = hu[fragment[keep]].copy()
    hu[fragment] = 35.0
    hu[broken] = 35.0
    hu[moved_to] = np.maximum(hu[moved_to], values)
    region = np.unique(np.concatenate([broken, fragment, moved_to])).astype(np.int32)
    canvas.claim(region)
    callus = callus_spheres(pts, at, rng)
    ordinal = {4: "4th", 5: "5th", 6: "6th", 7: "7th", 8: "8th", 9: "9th"}[number]
    return InsertedFinding(
        code="rib_fracture",
        side=side,
        vertebral_level=anatomy.vertebral_level(float(at[2])),
        centre_mm=(float(at[0]), float(at[1]), float(at[2])),
        details={"rib": f"{side.value} {ordinal} rib", "rib_number": float(number),
                 "gap_mm": round(gap, 1), "callus_mm": round(2 * callus[0].radius_mm, 1)},
        voxels=broken.astype(np.int32),
        spheres=callus,
    )  # fmt: skip


def callus_spheres(rib_mm: F32, at: F32, rng: np.random.Generator) -> tuple[Sphere, ...]:
    """The healing callus about a fracture at ``at``: a spindle of new bone along the rib, as
    two overlapping balls 8–14 mm across, 300–600 HU denser than what they enclose.

    The working grid (about 2 mm) averages a rib's cortex away — a rib's voxels are 120–470 HU
    — so a break in the cortex alone changes a radiograph by under 1 % of its range. Callus is
    what a frontal film shows of most rib fractures after the first days; drawn analytically,
    like nodules, it is resolved at any pixel size.
    """
    near = rib_mm[np.linalg.norm(rib_mm - at, axis=1) < 15.0]
    centred = near - near.mean(axis=0)
    direction = np.linalg.svd(centred, full_matrices=False)[2][0] if len(near) > 2 else None
    if direction is None or not np.all(np.isfinite(direction)):
        direction = np.array([0.0, 1.0, 0.0])
    radius = float(rng.uniform(4.0, 7.0))
    delta = float(rng.uniform(300.0, 600.0))
    half = 0.45 * radius
    return tuple(
        Sphere((float(c[0]), float(c[1]), float(c[2])), radius, delta)
        for c in (at - half * direction, at + half * direction)
    )


# Order of insertion: organ-level edits first, then lungs, pleura, then objects on top.
_INSERTERS: dict[str, Callable[[Canvas, np.random.Generator], InsertedFinding | None]] = {
    "cardiomegaly": _cardiomegaly,
    "consolidation": _consolidation,
    "edema": _edema,
    "pleural_effusion": _effusion,
    "pneumothorax": _pneumothorax,
    "rib_fracture": _rib_fracture,
    "mass": lambda c, r: _nodule(c, r, mass=True),
    "nodule": lambda c, r: _nodule(c, r, mass=False),
    "endotracheal_tube": _ett,
    "central_venous_catheter": _cvc,
}


@dataclass(frozen=True)
class FindingSpec:
    """What to insert: a code, the seed of its own random stream and a size multiplier.

    Each finding draws from its own stream, so the same spec places the same finding in the
    same spot in a prior and a current study; ``scale`` grows or shrinks it.
    """

    code: str
    seed: tuple[int, ...]
    scale: float = 1.0


def insert(canvas: Canvas, specs: list[FindingSpec]) -> list[InsertedFinding]:
    """Insert findings in a fixed order of kinds; ids f1, f2, … follow that order."""
    unknown = {s.code for s in specs} - set(_INSERTERS)
    if unknown:
        raise ValueError(
            f"expected finding codes the lab can insert ({', '.join(FINDING_TYPES)}), "
            f"got {', '.join(sorted(unknown))}"
        )
    found: list[InsertedFinding] = []
    for code, inserter in _INSERTERS.items():
        for spec in (s for s in specs if s.code == code):
            canvas.scale = spec.scale
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(spec.seed))))
            inserted = inserter(canvas, rng)
            if inserted is not None:
                inserted.id = f"f{len(found) + 1}"
                inserted.details["spec_seed"] = "-".join(str(v) for v in spec.seed)
                found.append(inserted)
    canvas.scale = 1.0
    return found
