"""Nodules for the lung network: inserting them into line integrals, their cell targets, and
the resolution they need (the lung network's training and runtime: test_lungs.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("scipy")

from radloop.lab.training.reference.nodules_train import (  # noqa: E402
    MAX_NODULES,
    _sphere_chords,
    _targets,
    insert_nodules,
)
from radloop.models.reference.lungs import LUNG_NETWORK  # noqa: E402


def test_a_sphere_adds_its_volume_and_its_diameter_as_the_longest_chord() -> None:
    scale = 0.5  # mm in the patient per pixel
    chords = _sphere_chords((200, 200), (100.3, 99.6), 10.0, scale)
    volume = chords.sum() * scale**2
    assert volume == pytest.approx(4 / 3 * math.pi * 10.0**3, rel=0.01)
    assert chords.max() == pytest.approx(20.0, abs=0.3)
    assert chords[100, 100 + 21] == 0.0  # 10.5 mm from the centre: outside


def test_inserted_nodules_lie_in_the_lungs_and_add_attenuation_only_there() -> None:
    rng = np.random.default_rng(0)
    line = np.full((256, 256), 2.0, np.float32)
    lungs = np.zeros((256, 256), bool)
    lungs[60:200, 30:110] = True
    out, placed = insert_nodules(line, lungs, 1.0, 1.1, rng, count=2)
    assert len(placed) == 2
    for row, col, diameter in placed:
        assert lungs[round(row), round(col)] and 6.0 <= diameter <= 26.0
        # Soft tissue replacing lung: 0.019/mm × (35 + 700…880) / 1000 × chord.
        peak = float(out[round(row), round(col)] - 2.0)
        assert 0.013 * diameter * 0.9 <= peak <= 0.0175 * diameter * 1.05
    assert np.all(out[~lungs] >= 2.0) and np.all(out >= line)
    assert np.array_equal(line, np.full((256, 256), 2.0, np.float32))  # the input is kept


def test_cell_targets_cover_a_nodule_and_at_least_its_centre_cell() -> None:
    nodules = np.zeros((MAX_NODULES, 4), np.float32)
    nodules[0] = (100.0, 60.0, 8.0, 3.0)  # small: the centre cell only
    nodules[1] = (200.0, 200.0, 25.0, 40.0)  # radius 20 px: several cells
    nodules[2] = (50.0, 300.0, -40.0, 50.0)  # a mass (negative size) is not a target
    t = _targets(nodules)
    assert t.shape == LUNG_NETWORK.cells
    assert t[100 // 8, 60 // 8] == 1.0 and t[200 // 8, 200 // 8] == 1.0
    assert 9 <= t[15:35, 15:35].sum() <= 25 and t[:, 35:].sum() == 0
