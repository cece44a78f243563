"""The nodule network: inserting nodules into line integrals, a tiny training run, and the
runtime that merges its reading (probability, heatmap, the caliper's size)."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("scipy")

from cropkit import assert_brighter_than_ring, onnx_matches_torch, render_or_skip  # noqa: E402
from radloop.models.builtin import shipped_model_dir  # noqa: E402
from radloop.models.images import image_from_pixels  # noqa: E402
from radloop.models.reference.data import load_dataset  # noqa: E402
from radloop.models.reference.nodules import NODULE_NETWORK  # noqa: E402
from radloop.models.reference.nodules_train import (  # noqa: E402
    MAX_NODULES,
    NoduleConfig,
    _sphere_chords,
    _targets,
    build_nodule_datasets,
    insert_nodules,
    train_nodules,
)
from radloop.models.reference.runtime import ReferenceRuntime  # noqa: E402

TINY = NoduleConfig(n_train=4, variants=3, n_lab=4, n_val=6, epochs=1, max_steps=2,
                    batch_size=8, widths=(4, 4, 4), hard_per_epoch=4)  # fmt: skip


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
    assert t.shape == NODULE_NETWORK.cells
    assert t[100 // 8, 60 // 8] == 1.0 and t[200 // 8, 200 // 8] == 1.0
    assert 9 <= t[15:35, 15:35].sum() <= 25 and t[:, 35:].sum() == 0


@pytest.fixture(scope="module")
def nodule_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nodule-data")
    return render_or_skip(build_nodule_datasets, dataclasses.replace(TINY, threads=1), out)


def test_the_sets_hold_crops_with_nodules_where_they_were_put(nodule_data: Path) -> None:
    inserted = load_dataset(sorted(nodule_data.glob("nodule-inserted-*.npz")))
    assert inserted["crop"].shape == (TINY.n_train * TINY.variants, *NODULE_NETWORK.shape)
    lab = load_dataset(sorted(nodule_data.glob("nodule-lab-*.npz")))
    has = (lab["nodules"][:, :, 2] > 0).any(axis=1)
    np.testing.assert_array_equal(has[::2], True)  # every second lab study has a nodule
    assert not has[1::2].any()
    # An inserted nodule is brighter than the ring around it in the crop.
    rows = [(i, n) for i, ns in enumerate(inserted["nodules"]) for n in ns if n[2] >= 14]
    for i, (row, col, _, diameter_px) in rows[:4]:
        assert_brighter_than_ring(inserted["crop"][i], row, col, diameter_px)


def test_a_tiny_run_exports_onnx_that_the_runtime_merges(nodule_data: Path, tmp_path: Path) -> None:
    for name in ("reference.onnx", "reference.json"):
        shutil.copy(shipped_model_dir() / name, tmp_path / name)
    sidecar = train_nodules(TINY, tmp_path, data_dir=nodule_data, log=lambda _: None)
    assert sidecar["findings"] == ["nodule"] and sidecar["training"]["steps"] == 2
    assert set(sidecar["validation"]["auroc_by_size"]) == {"0-10 mm", "10-15 mm", "15-100 mm"}
    onnx_matches_torch(TINY, tmp_path, NODULE_NETWORK)

    runtime = ReferenceRuntime(tmp_path / "reference.onnx", tmp_path / "reference.json")
    assert [c.network.name for c in runtime.crops] == ["nodules"]
    assert (
        runtime.sidecar["validation"]["auroc"]["nodule"] == sidecar["validation"]["auroc"]["nodule"]
    )
    pixels = np.random.default_rng(3).random((512, 512)).astype(np.float32)
    fine = dataclasses.replace(image_from_pixels(pixels), pixel_spacing_mm=(0.703125, 0.703125))
    coarse = dataclasses.replace(image_from_pixels(pixels[::2, ::2].copy()),
                                 pixel_spacing_mm=(1.40625, 1.40625))  # fmt: skip
    high, low = runtime.run([fine, coarse])
    (direct,) = runtime.crops[0].run([fine])
    assert direct is not None
    assert high.probabilities["nodule"] == direct.probabilities["nodule"]
    assert "nodule" not in high.unassessed and "nodule" in low.unassessed
    # The nodule heatmap is the crop's cells, pasted in the field: zero outside the crop.
    heat = high.heatmaps[list(runtime.sidecar["findings"]).index("nodule")]
    r0, r1, c0, c1 = NODULE_NETWORK.box(heat.shape)
    assert heat[:r0].max() == 0.0 and heat[r0:r1, c0:c1].max() > 0.0


def test_nodules_need_about_one_millimetre_per_pixel() -> None:
    assert NODULE_NETWORK.readable(np.zeros((384, 384)), (0.9375, 0.9375))  # portable
    assert not NODULE_NETWORK.readable(np.zeros((256, 256)), (1.40625, 1.40625))


def test_a_half_copied_nodule_network_is_refused(tmp_path: Path) -> None:
    for name in ("reference.onnx", "reference.json"):
        shutil.copy(shipped_model_dir() / name, tmp_path / name)
    (tmp_path / "nodules.json").write_text(json.dumps({"findings": ["nodule"]}))
    with pytest.raises(ValueError, match=r"nodules network's nodules\.onnx beside nodules\.json"):
        ReferenceRuntime(tmp_path / "reference.onnx", tmp_path / "reference.json")
