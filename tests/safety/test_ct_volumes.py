"""CT volumes for the scope classifier's CT class: NRRD (pynrrd) and NIfTI read onto the same
RAS+ axes, and clear refusals of what cannot be read as an axis-aligned 3-D CT."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from radloop.errors import InputError
from radloop.lab.training.scope.synth import load_ct_volume

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("nrrd", "nibabel", "scipy")),
    reason="reading CTs needs pynrrd (radloop[train]) and nibabel, scipy (radloop[synth])",
)


def _phantom() -> np.ndarray:
    """A body of water in air, indexed [x, y, z] on RAS+ axes, with a bone marker at the
    patient's right, anterior, superior corner of the body."""
    hu = np.full((24, 20, 12), -1000.0, np.float32)
    hu[4:20, 4:16, 2:10] = 0.0
    hu[16:20, 12:16, 7:10] = 1000.0
    return hu


def test_nrrd_in_lps_space_and_nifti_in_ras_read_to_the_same_ras_volume(tmp_path) -> None:
    import nibabel as nib
    import nrrd

    ras = _phantom()
    spacing = (0.8, 0.8, 2.5)
    nrrd.write(
        str(tmp_path / "ct.nrrd"),
        ras[::-1, ::-1, :].astype(np.int16),  # RAS → LPS: the first two axes reverse
        {
            "space": "left-posterior-superior",
            "space directions": np.diag(spacing),
            "space origin": np.zeros(3),
        },
    )
    nib.save(nib.Nifti1Image(ras.astype(np.int16), np.diag([*spacing, 1.0])), tmp_path / "ct.nii")
    from_nrrd = load_ct_volume(tmp_path / "ct.nrrd", iso_mm=2.0)
    from_nifti = load_ct_volume(tmp_path / "ct.nii", iso_mm=2.0)
    assert from_nrrd.spacing_mm == pytest.approx(spacing)
    np.testing.assert_array_equal(from_nrrd.hu, ras)
    np.testing.assert_array_equal(from_nrrd.hu, from_nifti.hu)
    np.testing.assert_allclose(from_nrrd.body_mu, from_nifti.body_mu)


def test_nrrd_with_permuted_axes_is_put_back_in_patient_order(tmp_path) -> None:
    import nrrd

    ras = _phantom()
    # Stored z, x, y in RAS space: each array axis names the patient axis it runs along.
    stored = np.transpose(ras, (2, 0, 1))
    directions = np.array([[0, 0, 2.5], [0.8, 0, 0], [0, 0.8, 0]])
    header = {"space": "RAS", "space directions": directions, "space origin": np.zeros(3)}
    nrrd.write(str(tmp_path / "ct.nrrd"), stored.astype(np.int16), header)
    volume = load_ct_volume(tmp_path / "ct.nrrd", iso_mm=2.0)
    assert volume.spacing_mm == pytest.approx((0.8, 0.8, 2.5))
    np.testing.assert_array_equal(volume.hu, ras)


def test_oblique_or_flat_nrrd_is_refused_with_what_arrived(tmp_path) -> None:
    import nrrd

    c, s = np.cos(0.3), np.sin(0.3)
    oblique = {
        "space": "left-posterior-superior",
        "space directions": np.array([[c, s, 0], [-s, c, 0], [0, 0, 2.0]]),
    }
    nrrd.write(str(tmp_path / "oblique.nrrd"), _phantom().astype(np.int16), oblique)
    with pytest.raises(InputError, match="axis-aligned grid"):
        load_ct_volume(tmp_path / "oblique.nrrd")
    flat = {"space": "left-posterior-superior", "space directions": np.eye(2, 3)}
    nrrd.write(str(tmp_path / "flat.nrrd"), np.zeros((8, 8), np.int16), flat)
    with pytest.raises(InputError, match=r"expected a 3-D NRRD CT.*got 2 dimensions"):
        load_ct_volume(tmp_path / "flat.nrrd")
