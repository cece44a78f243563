"""The lung network: nodules and rib fractures inserted into the same lab studies, a tiny
training run of the two-channel network, and the runtime that merges its reading."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("scipy")

from cropkit import assert_brighter_than_ring, onnx_matches_torch, render_or_skip  # noqa: E402
from radloop.lab.training.reference.data import load_dataset  # noqa: E402
from radloop.lab.training.reference.lungs_train import (  # noqa: E402
    LungConfig,
    build_lung_datasets,
    train_lungs,
)
from radloop.models.builtin import shipped_model_dir  # noqa: E402
from radloop.models.images import image_from_pixels  # noqa: E402
from radloop.models.reference.lungs import LUNG_NETWORK  # noqa: E402
from radloop.models.reference.runtime import ReferenceRuntime  # noqa: E402
from radloop.models.reference.spec import FINDINGS, ZONES  # noqa: E402

TINY = LungConfig(n_train=4, variants=3, n_lab=4, n_val=6, epochs=1, max_steps=2, batch_size=8,
                  widths=(4, 4, 4), hard_per_epoch=4)  # fmt: skip


@pytest.fixture(scope="module")
def lung_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lung-data")
    return render_or_skip(build_lung_datasets, dataclasses.replace(TINY, threads=1), out)


def _has(objects: np.ndarray) -> np.ndarray:
    return np.asarray((objects[:, :, 2] > 0).any(axis=1))


def test_the_sets_hold_both_kinds_where_they_were_put(lung_data: Path) -> None:
    inserted = load_dataset(sorted(lung_data.glob("lung-inserted-*.npz")))
    assert inserted["crop"].shape == (TINY.n_train * TINY.variants, *LUNG_NETWORK.shape)
    nodules = [(i, r) for i, rs in enumerate(inserted["nodules"]) for r in rs if r[2] >= 14]
    for i, (row, col, _, diameter_px) in nodules[:4]:
        assert_brighter_than_ring(inserted["crop"][i], row, col, diameter_px)
    # Fractures on the lateral arcs: in the outer thirds of the crop's width, 8-14 mm calluses.
    fractures = [r for rs in inserted["ribs"] for r in rs if r[2] > 0]
    assert fractures and nodules
    for _, col, diameter, _ in fractures:
        assert 8.0 <= diameter <= 14.0
        assert min(col, LUNG_NETWORK.shape[1] - col) < LUNG_NETWORK.shape[1] / 3
    # The lab's own: a nodule in every second study, a fracture in every second pair.
    for name in ("lab", "val"):
        lab = load_dataset(sorted(lung_data.glob(f"lung-{name}-*.npz")))
        n = len(lab["crop"])
        np.testing.assert_array_equal(_has(lab["nodules"]), np.arange(n) % 2 == 0)
        # (a fracture the lab draws where the crop or its truth mask does not reach is left out)
        wanted = np.arange(n) // 2 % 2 == 0
        assert _has(lab["ribs"]).any() and not (_has(lab["ribs"]) & ~wanted).any()
    # Profiles cycle standard, portable, community: nodules are read on all three, rib
    # fractures not on the coarse portable images.
    val = load_dataset(sorted(lung_data.glob("lung-val-*.npz")))
    np.testing.assert_array_equal(val["reads"][:, 0], True)
    np.testing.assert_array_equal(val["reads"][:, 1], [True, False, True] * (TINY.n_val // 3))


def test_a_tiny_run_exports_onnx_that_the_runtime_merges(lung_data: Path, tmp_path: Path) -> None:
    for name in ("reference.onnx", "reference.json"):
        shutil.copy(shipped_model_dir() / name, tmp_path / name)
    sidecar = train_lungs(TINY, tmp_path, data_dir=lung_data, log=lambda _: None)
    assert sidecar["findings"] == ["nodule", "rib_fracture"]
    assert sidecar["training"]["steps"] == 2
    validation = sidecar["validation"]
    assert validation["n_read"] == {"nodule": 6, "rib_fracture": 4}
    assert set(validation["auroc"]) == set(sidecar["thresholds"]) == {"nodule", "rib_fracture"}
    assert set(sidecar["presence_calibration"]) == {"nodule", "rib_fracture"}
    assert "lung network" in (tmp_path / "MODEL_CARD.md").read_text()
    presence, cells = onnx_matches_torch(TINY, tmp_path, LUNG_NETWORK)
    assert presence.shape == (2, 2)
    np.testing.assert_allclose(presence, cells.reshape(2, 2, -1).max(axis=2), rtol=1e-6)

    runtime = ReferenceRuntime(tmp_path / "reference.onnx", tmp_path / "reference.json")
    assert [c.network.name for c in runtime.crops] == ["lungs"]
    assert (
        runtime.sidecar["validation"]["auroc"]["rib_fracture"]
        == (validation["auroc"]["rib_fracture"])
    )
    pixels = np.random.default_rng(3).random((512, 512)).astype(np.float32)

    def image(size: int) -> object:
        step = 512 // size if 512 % size == 0 else 1
        px = pixels[::step, ::step] if step > 1 else pixels[:size, :size]
        spacing = 360.0 / size
        return dataclasses.replace(
            image_from_pixels(px.copy()), pixel_spacing_mm=(spacing, spacing)
        )

    fine, portable, coarse = image(512), image(384), image(256)
    high, middle, low = runtime.run([fine, portable, coarse])  # type: ignore[list-item]
    (direct,) = runtime.crops[0].run([fine])  # type: ignore[list-item]
    assert direct is not None
    for code in ("nodule", "rib_fracture"):
        assert high.probabilities[code] == direct.probabilities[code]
        assert code not in high.unassessed and code in low.unassessed
    # The portable image is read for nodules but not for rib fractures.
    assert "nodule" not in middle.unassessed and "rib_fracture" in middle.unassessed
    # Each heatmap is its channel's cells pasted into the field: zero outside the crop.
    for k, code in enumerate(LUNG_NETWORK.findings):
        heat = high.heatmaps[FINDINGS.index(code)]
        r0, r1, c0, c1 = LUNG_NETWORK.box(heat.shape)
        assert heat[:r0].max() == 0.0 and heat[r0:r1, c0:c1].max() > 0.0
        assert heat.max() == pytest.approx(direct.cells[k].max(), rel=1e-5)
    # Each finding's peak is the lung network's own (finer than the pasted heatmap's cells).
    for k, code in enumerate(LUNG_NETWORK.findings):
        assert high.peak(code) == LUNG_NETWORK.peak(direct.cells[k], (512, 512))
    assert "rib_fracture" not in middle.peaks and "nodule" in middle.peaks
    # A fracture's zones come from its heatmap's peak: its probability there, none elsewhere.
    zones = high.zone_probabilities["rib_fracture"]
    assert set(zones) == set(ZONES)
    assert max(zones.values()) == pytest.approx(high.probabilities["rib_fracture"])
    assert min(zones.values()) == 0.0


def test_a_half_copied_lung_network_is_refused(tmp_path: Path) -> None:
    for name in ("reference.onnx", "reference.json"):
        shutil.copy(shipped_model_dir() / name, tmp_path / name)
    (tmp_path / "lungs.json").write_text(json.dumps({"findings": ["nodule", "rib_fracture"]}))
    with pytest.raises(ValueError, match=r"lungs network's lungs\.onnx beside lungs\.json"):
        ReferenceRuntime(tmp_path / "reference.onnx", tmp_path / "reference.json")


def test_rib_fractures_need_a_finer_image_than_nodules() -> None:
    blank = np.zeros((8, 8), np.float32)
    for size, unread in (
        (512, set()),
        (448, set()),
        (420, set()),
        (384, {"rib_fracture"}),
        (256, {"nodule", "rib_fracture"}),
    ):
        assert LUNG_NETWORK.unread(blank, (360.0 / size, 360.0 / size)) == unread, size
        assert LUNG_NETWORK.readable(blank, (360.0 / size, 360.0 / size)) is (size > 300)


def test_a_crop_peak_lies_between_two_equal_cells_and_maps_to_the_field() -> None:
    cells = np.zeros(LUNG_NETWORK.cells, np.float32)
    cells[10, 20] = cells[10, 21] = 0.9  # an object straddling two cells
    field = (512, 512)
    row, col = LUNG_NETWORK.peak(cells, field)
    r0, r1, c0, c1 = LUNG_NETWORK.box(field)
    stride_rows = LUNG_NETWORK.stride * (r1 - r0) / LUNG_NETWORK.shape[0]
    stride_cols = LUNG_NETWORK.stride * (c1 - c0) / LUNG_NETWORK.shape[1]
    assert row == pytest.approx(r0 + 10.5 * stride_rows - 0.5, abs=1e-6)
    assert col == pytest.approx(c0 + 21.0 * stride_cols - 0.5, abs=1e-6)  # between 20 and 21
    cells[:] = 0.0
    cells[0, 0] = 1.0  # at the corner: no neighbours outside the map
    assert LUNG_NETWORK.peak(cells, field) == pytest.approx(
        (r0 + 0.5 * stride_rows - 0.5, c0 + 0.5 * stride_cols - 0.5)
    )
