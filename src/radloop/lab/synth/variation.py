"""What varies between phantoms and between hospitals: anatomy, pose, patient and site.

Anatomy varies by an anisotropic scale and a smooth warp (a low-order sine series that
vanishes on the CT's bounding box), so studies are not all one patient. Site profiles model
the acquisition and processing differences between hospitals that distribution-shift studies
need: geometry, exposure, noise, contrast curve, resolution, collimation and burned-in text.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.errors import InputError
from radloop.lab.synth.projector import View

__all__ = [
    "PROFILES",
    "Deformation",
    "Demographics",
    "Pose",
    "SiteProfile",
    "profile",
    "sample_deformation",
    "sample_demographics",
    "sample_pose",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

_WARP_ORDER = 3  # sine terms per axis


def _separable(coeff: F32, bases: list[F32], flat: npt.NDArray[np.int32]) -> F32:
    """Σ_abc coeff[a,b,c] bx[i,a] by[j,b] bz[k,c] at grid points ``flat`` of (i, j, k)."""
    inner = np.einsum("abc,jb,kc->ajk", coeff, bases[1], bases[2])
    grid = bases[0] @ inner.reshape(coeff.shape[0], -1)
    return np.asarray(grid.ravel()[flat], dtype=np.float32)


@dataclass(frozen=True)
class Demographics:
    """Synthetic patient: age in years and sex (DICOM M/F)."""

    age_years: int
    sex: str

    @property
    def dicom_age(self) -> str:
        return f"{self.age_years:03d}Y"


@dataclass(frozen=True)
class Pose:
    """Patient rotation about the long axis, lordotic tilt and in-plane roll, in degrees."""

    rotation_deg: float = 0.0
    tilt_deg: float = 0.0
    roll_deg: float = 0.0


@dataclass(frozen=True, eq=False)
class Deformation:
    """p ↦ c + S (p - c) + D(p): anisotropic scale about the lung centre and a smooth warp.

    ``warp_mm`` holds the sine-series coefficients (3 components × order³), in mm.
    """

    centre: tuple[float, float, float]
    scale: tuple[float, float, float]
    warp_mm: F64
    box_min: tuple[float, float, float]
    box_max: tuple[float, float, float]

    @staticmethod
    def identity(box_min: F32, box_max: F32, centre: F32) -> Deformation:
        return Deformation(
            centre=(float(centre[0]), float(centre[1]), float(centre[2])),
            scale=(1.0, 1.0, 1.0),
            warp_mm=np.zeros((3, _WARP_ORDER, _WARP_ORDER, _WARP_ORDER)),
            box_min=(float(box_min[0]), float(box_min[1]), float(box_min[2])),
            box_max=(float(box_max[0]), float(box_max[1]), float(box_max[2])),
        )

    def _basis(self, coord: F32, axis: int) -> F32:
        span = self.box_max[axis] - self.box_min[axis]
        s = np.clip((coord - np.float32(self.box_min[axis])) / np.float32(span), 0.0, 1.0)
        k = np.arange(1, _WARP_ORDER + 1, dtype=np.float32)
        return np.asarray(np.sin(np.float32(math.pi) * s[..., None] * k), dtype=np.float32)

    def apply(self, x: F32, y: F32, z: F32) -> tuple[F32, F32, F32]:
        """Deformed positions of points given as three arrays."""
        out = []
        bx, by, bz = self._basis(x, 0), self._basis(y, 1), self._basis(z, 2)
        warp = self.warp_mm.astype(np.float32)
        for axis, coord in enumerate((x, y, z)):
            c = np.float32(self.centre[axis])
            moved = c + np.float32(self.scale[axis]) * (coord - c)
            if np.any(warp[axis]):
                # Σ_abc w[abc] bx[a] by[b] bz[c], contracted one axis at a time.
                t = bx @ warp[axis].reshape(_WARP_ORDER, -1)
                t = (t.reshape(-1, _WARP_ORDER, _WARP_ORDER) * by[:, :, None]).sum(axis=1)
                moved = moved + (t * bz).sum(axis=1)
            out.append(moved.astype(np.float32))
        return out[0], out[1], out[2]

    def _dbasis(self, coord: F32, axis: int) -> F32:
        """Derivative of the basis along its axis, per mm."""
        span = self.box_max[axis] - self.box_min[axis]
        s = np.clip((coord - np.float32(self.box_min[axis])) / np.float32(span), 0.0, 1.0)
        k = np.arange(1, _WARP_ORDER + 1, dtype=np.float32)
        scale = np.float32(math.pi / span) * k
        return np.asarray(np.cos(np.float32(math.pi) * s[..., None] * k) * scale, dtype=np.float32)

    def apply_grid(
        self, axes: tuple[F32, F32, F32], flat: npt.NDArray[np.int32]
    ) -> tuple[F32, F32, F32]:
        """Deformed positions of grid points (flat indices into the grid the axes span).

        The warp is separable, so it is evaluated on the grid one axis at a time and then
        gathered: far cheaper than evaluating it point by point.
        """
        ijk = np.unravel_index(flat, (axes[0].size, axes[1].size, axes[2].size))
        bases = [self._basis(axes[a], a) for a in range(3)]
        warp = self.warp_mm.astype(np.float32)
        out = []
        for comp in range(3):
            c = np.float32(self.centre[comp])
            moved = c + np.float32(self.scale[comp]) * (axes[comp][ijk[comp]] - c)
            if np.any(warp[comp]):
                moved += _separable(warp[comp], bases, flat)
            out.append(np.asarray(moved, dtype=np.float32))
        return out[0], out[1], out[2]

    def footprints(
        self,
        axes: tuple[F32, F32, F32],
        flat: npt.NDArray[np.int32],
        frame: F64,
        extent: tuple[float, float, float],
    ) -> tuple[F32, F32]:
        """Widths along the detector's u and v (rows of ``frame``) of deformed grid boxes.

        A box's edge along grid axis k becomes J[:, k] · extent_k (J the deformation's
        Jacobian); its width along a detector axis r is Σ_k |frame_r · J[:, k]| extent_k.
        Only these two combinations are evaluated, never the full Jacobian.
        """
        bases = [self._basis(axes[a], a) for a in range(3)]
        dbases = [self._dbasis(axes[a], a) for a in range(3)]
        warp = self.warp_mm.astype(np.float32)
        widths = []
        for r in range(2):
            row = frame[r].astype(np.float32)
            coeff = np.tensordot(row, warp, axes=1)  # the warp seen along detector axis r
            width = np.zeros(flat.size, dtype=np.float32)
            for k in range(3):
                b = [dbases[a] if a == k else bases[a] for a in range(3)]
                edge = _separable(coeff, b, flat) + np.float32(row[k] * self.scale[k])
                width += np.abs(edge) * np.float32(extent[k])
            widths.append(width)
        return widths[0], widths[1]

    def apply_points(self, xyz: F32) -> F32:
        xyz = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
        x, y, z = self.apply(xyz[:, 0], xyz[:, 1], xyz[:, 2])
        return np.stack([x, y, z], axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale": list(self.scale),
            "warp_rms_mm": round(float(np.sqrt(np.mean(self.warp_mm**2))), 3),
        }


@dataclass(frozen=True)
class SiteProfile:
    """One hospital's way of acquiring and processing a chest radiograph.

    ``photons`` is the unattenuated quanta per mm² reaching the detector; ``bone_gain``
    multiplies the attenuation of bone above water (lower kVp, more bone contrast);
    ``contrast`` is the slope of the sigmoid tone curve; ``edge_gain`` the strength of the
    unsharp-mask enhancement; ``collimation`` the mean blank margins (top, bottom, left,
    right) as fractions of the field.

    The physics and processing below default to off, so a profile that leaves them out
    renders exactly as before they existed. ``heel`` is the anode heel effect's fractional
    drop in intensity from the cathode end (the feet) to the anode end (the head) of the
    detector; negative puts the anode at the feet. ``grid_ratio`` is the ratio of an
    anti-scatter grid (0: none). ``detector`` is the line-spread: ``gaussian`` or ``dr`` (a
    narrow Gaussian plus a broad low-amplitude glare tail). ``lut`` is the tone-curve family
    (``sigmoid``, ``linear``, ``filmic``, ``equalised``); ``multiscale`` the gain of a second,
    fine (2 mm) unsharp-mask band.
    """

    name: str
    description: str
    manufacturer: str
    model: str
    institution: str
    view: View
    sid_mm: float
    size: int
    lateral: bool = False
    detector_mm: float = 360.0
    kvp: float = 120.0
    bone_gain: float = 1.6
    photons: float = 4.0e4
    electronic_noise: float = 0.002
    blur_mm: float = 0.5
    scatter: float = 0.08
    contrast: float = 5.0
    gamma: float = 1.0
    edge_gain: float = 0.5
    edge_radius_mm: float = 12.0
    collimation: tuple[float, float, float, float] = (0.0, 0.02, 0.02, 0.02)
    burned_text: tuple[str, ...] = ()
    marker: str = "R"
    photometric: str = "MONOCHROME2"
    bits_stored: int = 12
    pose_sd: tuple[float, float] = (3.0, 2.0)
    position: str = "ERECT"
    extra: dict[str, str] = field(default_factory=dict)
    heel: float = 0.0
    grid_ratio: float = 0.0
    detector: str = "gaussian"
    lut: str = "sigmoid"
    multiscale: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["view"] = self.view.value
        return data


PROFILES: dict[str, SiteProfile] = {
    p.name: p
    for p in (
        SiteProfile(
            name="standard",
            description="Radiology department: erect PA and left lateral at 180 cm, "
            "flat-panel DR, modest processing.",
            manufacturer="Synthetic Radiography A",
            model="SRA FlatPanel 43",
            institution="Synthetic General Hospital",
            view=View.PA,
            sid_mm=1800.0,
            size=512,
            lateral=True,
        ),
        SiteProfile(
            name="portable",
            description="Intensive care: semi-erect AP at 100 cm, mobile unit, grid-less "
            "(more scatter), noisier, tighter collimation, burned-in labels.",
            manufacturer="Synthetic Mobile B",
            model="SMB Bedside 2",
            institution="Synthetic ICU",
            view=View.AP,
            sid_mm=1000.0,
            size=384,
            kvp=90.0,
            bone_gain=1.9,
            photons=1.2e4,
            electronic_noise=0.004,
            blur_mm=0.7,
            scatter=0.2,
            contrast=4.0,
            edge_gain=0.3,
            collimation=(0.0, 0.05, 0.05, 0.05),
            burned_text=("PORTABLE", "AP SEMI-ERECT"),
            pose_sd=(6.0, 5.0),
            position="SEMI-ERECT",
        ),
        SiteProfile(
            name="community",
            description="Community clinic: PA at 180 cm on computed radiography (CR), "
            "softer, gamma tone curve, stored inverted (MONOCHROME1), 10-bit.",
            manufacturer="Synthetic Imaging C",
            model="SIC CR-350",
            institution="Synthetic Community Clinic",
            view=View.PA,
            sid_mm=1800.0,
            size=448,
            kvp=110.0,
            bone_gain=1.7,
            photons=2.0e4,
            blur_mm=1.0,
            scatter=0.12,
            contrast=4.0,
            gamma=1.3,
            edge_gain=0.15,
            collimation=(0.0, 0.03, 0.03, 0.03),
            burned_text=("CLINIC",),
            photometric="MONOCHROME1",
            bits_stored=10,
        ),
        SiteProfile(
            name="enhanced",
            description="Teaching hospital: PA at 180 cm, DR with strong multiscale-like "
            "edge enhancement and a steep tone curve.",
            manufacturer="Synthetic Diagnostics D",
            model="SDD Vision",
            institution="Synthetic University Hospital",
            view=View.PA,
            sid_mm=1800.0,
            size=512,
            kvp=125.0,
            bone_gain=1.5,
            photons=6.0e4,
            blur_mm=0.4,
            contrast=6.5,
            edge_gain=1.2,
            edge_radius_mm=8.0,
            collimation=(0.0, 0.01, 0.01, 0.01),
            marker="L",
        ),
    )
}


def profile(name: str) -> SiteProfile:
    """The site profile of a name (``standard``, ``portable``, ``community``, ``enhanced``)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise InputError(f"a site profile, one of {', '.join(PROFILES)}", repr(name)) from None


def sample_demographics(rng: np.random.Generator) -> Demographics:
    age = int(np.clip(round(rng.normal(60, 16)), 18, 95))
    return Demographics(age_years=age, sex="F" if rng.random() < 0.5 else "M")


def sample_pose(rng: np.random.Generator, site: SiteProfile) -> Pose:
    rot_sd, tilt_sd = site.pose_sd
    return Pose(
        rotation_deg=float(np.clip(rng.normal(0, rot_sd), -3 * rot_sd, 3 * rot_sd)),
        tilt_deg=float(np.clip(rng.normal(0, tilt_sd), -3 * tilt_sd, 3 * tilt_sd)),
        roll_deg=float(np.clip(rng.normal(0, 1.0), -3, 3)),
    )


def sample_deformation(
    rng: np.random.Generator,
    demographics: Demographics,
    *,
    centre: F32,
    box_min: F32,
    box_max: F32,
    warp_sd_mm: float = 2.5,
) -> Deformation:
    """A patient's build: about ±6 % per axis (women a little smaller) and a smooth warp."""
    base = 0.96 if demographics.sex == "F" else 1.02
    scale = np.clip(base + rng.normal(0, 0.035, size=3), 0.88, 1.12)
    # Height (z) varies independently of the chest's width and depth.
    orders = np.arange(1, _WARP_ORDER + 1, dtype=np.float64)
    falloff = 1.0 / (orders[:, None, None] * orders[None, :, None] * orders[None, None, :])
    warp = rng.normal(0, warp_sd_mm, size=(3, _WARP_ORDER, _WARP_ORDER, _WARP_ORDER)) * falloff
    return Deformation(
        centre=(float(centre[0]), float(centre[1]), float(centre[2])),
        scale=(float(scale[0]), float(scale[1]), float(scale[2])),
        warp_mm=warp,
        box_min=(float(box_min[0]), float(box_min[1]), float(box_min[2])),
        box_max=(float(box_max[0]), float(box_max[1]), float(box_max[2])),
    )
