"""Deformations, site profiles and demographics."""

from __future__ import annotations

import numpy as np
import pytest

from radloop.errors import InputError
from radloop.lab.synth.variation import (
    PROFILES,
    Demographics,
    profile,
    sample_deformation,
    sample_demographics,
)


def test_grid_and_point_deformations_agree() -> None:
    rng = np.random.default_rng(3)
    lo, hi = np.float32([-100, -80, -200]), np.float32([100, 80, 0])
    deformation = sample_deformation(
        rng, Demographics(50, "F"), centre=(lo + hi) / 2, box_min=lo, box_max=hi
    )
    axes = tuple(np.linspace(lo[a], hi[a], 9, dtype=np.float32) for a in range(3))
    flat = np.arange(9**3, dtype=np.int32)
    gx, _, gz = deformation.apply_grid(axes, flat)  # type: ignore[arg-type]
    x, y, z = (m.ravel() for m in np.meshgrid(*axes, indexing="ij"))
    px, _, pz = deformation.apply(x, y, z)
    assert np.allclose(gx, px, atol=1e-3) and np.allclose(gz, pz, atol=1e-3)


def test_footprints_follow_the_local_stretch() -> None:
    rng = np.random.default_rng(4)
    lo, hi = np.float32([-150, -100, -300]), np.float32([150, 100, 0])
    deformation = sample_deformation(
        rng, Demographics(50, "M"), centre=(lo + hi) / 2, box_min=lo, box_max=hi
    )
    axes = tuple(np.linspace(lo[a], hi[a], 31, dtype=np.float32) for a in range(3))
    flat = np.arange(31**3, dtype=np.int32)
    frame = np.eye(3)  # detector u along x, v along y
    step = tuple(float(axes[a][1] - axes[a][0]) for a in range(3))
    width_u, _ = deformation.footprints(axes, flat, frame, step)  # type: ignore[arg-type]
    x, _, _ = deformation.apply_grid(axes, flat)  # type: ignore[arg-type]
    spacing = np.diff(x.reshape(31, 31, 31), axis=0)  # neighbours along x, deformed
    # Width along u ≥ the deformed spacing of x-neighbours (equal without shear), never less.
    assert np.all(width_u.reshape(31, 31, 31)[:-1] >= 0.97 * np.abs(spacing))
    assert float(np.median(width_u)) == pytest.approx(step[0] * deformation.scale[0], rel=0.1)


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(InputError, match="standard, portable, community, enhanced"):
        profile("nowhere")


def test_profiles_differ_in_what_distribution_shift_studies_need() -> None:
    assert {p.view.value for p in PROFILES.values()} == {"PA", "AP"}
    assert len({p.manufacturer for p in PROFILES.values()}) == len(PROFILES)
    assert "MONOCHROME1" in {p.photometric for p in PROFILES.values()}
    assert len({p.size for p in PROFILES.values()}) > 1


def test_demographics_are_adult_and_recorded_as_dicom_age() -> None:
    rng = np.random.default_rng(1)
    people = [sample_demographics(rng) for _ in range(200)]
    assert all(18 <= p.age_years <= 95 for p in people)
    assert {p.sex for p in people} == {"F", "M"}
    assert Demographics(7, "F").dicom_age == "007Y"
