"""The rib network: the lab's healing fracture, inserting it into line integrals, a tiny
training run, and the runtime that merges its reading (probability, heatmap, zones)."""

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
from radloop.models.builtin import shipped_model_dir  # noqa: E402
from radloop.models.images import image_from_pixels  # noqa: E402
from radloop.models.reference.data import load_dataset  # noqa: E402
from radloop.models.reference.ribs import RIB_NETWORK  # noqa: E402
from radloop.models.reference.ribs_train import (  # noqa: E402
    RibConfig,
    build_rib_datasets,
    insert_fractures,
    train_ribs,
)
from radloop.models.reference.runtime import ReferenceRuntime  # noqa: E402
from radloop.models.reference.spec import ZONES  # noqa: E402
from radloop.synth.anatomy import Anatomy  # noqa: E402

TINY = RibConfig(n_train=3, variants=4, n_val=6, epochs=1, max_steps=2, batch_size=8,
                 widths=(4, 4, 4), hard_per_epoch=4)  # fmt: skip


@pytest.fixture(scope="module")
def anatomy() -> Anatomy:
    from radloop.synth import AnatomySourceMissingError, load_anatomy

    try:
        return load_anatomy()
    except AnatomySourceMissingError as error:  # pragma: no cover - depends on the install
        pytest.skip(f"synthetic lab unavailable: {error}")


def test_the_lab_breaks_a_lateral_arc_and_draws_its_callus_along_the_rib(anatomy: Anatomy) -> None:
    from radloop.synth.findings import callus_spheres, fracture_site
    from radloop.synth.regions import regions

    midline = regions(anatomy).midline_x
    for seed in range(6):
        rng = np.random.default_rng(seed)
        site = fracture_site(anatomy, rng)
        assert site is not None and 4 <= site.number <= 9
        lateral = np.abs(site.positions[:, 0] - midline)
        assert abs(site.at[0] - midline) >= np.percentile(lateral, 84)
        balls = callus_spheres(site.positions, site.at, rng)
        assert len(balls) == 2
        for ball in balls:
            assert 4.0 <= ball.radius_mm <= 7.0 and 300.0 <= ball.delta_hu <= 600.0
            # On the rib: each centre within a radius of the break, the break between them.
            assert np.linalg.norm(np.asarray(ball.centre) - site.at) < ball.radius_mm
        middle = (np.asarray(balls[0].centre) + np.asarray(balls[1].centre)) / 2
        np.testing.assert_allclose(middle, site.at, atol=1e-3)


def test_a_lab_fracture_shows_on_the_radiograph_where_its_truth_says(anatomy: Anatomy) -> None:
    from radloop.synth import make_study
    from radloop.synth.variation import profile

    site = dataclasses.replace(profile("standard"), lateral=False)
    with_it = make_study(anatomy, 5, 0, site=site, codes=["rib_fracture"])
    without = make_study(anatomy, 5, 0, site=site, codes=[])
    view, plain = next(iter(with_it.views.values())), next(iter(without.views.values()))
    change = np.abs(view.exposure.display - plain.exposure.display)
    finding = with_it.truth["findings"][0]
    assert 8.0 <= finding["details"]["callus_mm"] <= 14.0
    mask = view.masks[finding["id"]]
    # Several times the 0.005-0.011 of the break alone (experiments/rib_fracture), and there.
    assert change.max() > 0.03
    assert change[mask].max() == change.max()


def test_inserted_fractures_add_attenuation_at_the_rib_they_name(anatomy: Anatomy) -> None:
    from radloop.synth import make_study
    from radloop.synth.variation import profile

    site = dataclasses.replace(profile("standard"), lateral=False)
    study = make_study(anatomy, 7, 1, site=site, codes=[])
    view = next(iter(study.views.values()))
    line = view.line_integral
    out, placed = insert_fractures(
        line, study.phantom, view.geometry, np.random.default_rng(3), count=2
    )
    assert len(placed) == 2
    added = out - line
    assert added.min() >= 0.0 and added.max() > 0.0
    for row, col, diameter, magnification in placed:
        assert 8.0 <= diameter <= 14.0 and 1.0 < magnification < 1.3
        assert added[round(row), round(col)] > 0.25 * added.max()
    lungs = view.lung_masks["right"] | view.lung_masks["left"]
    cols = [c for _, c, _, _ in placed]
    # On the lateral arcs: outside the middle half of the lungs' width.
    lung_cols = np.flatnonzero(lungs.any(axis=0))
    span = lung_cols.max() - lung_cols.min()
    for c in cols:
        assert min(c - lung_cols.min(), lung_cols.max() - c) < 0.25 * span


@pytest.fixture(scope="module")
def rib_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rib-data")
    return render_or_skip(build_rib_datasets, dataclasses.replace(TINY, threads=1), out)


def test_the_sets_hold_crops_with_fractures_where_they_were_put(rib_data: Path) -> None:
    inserted = load_dataset(sorted(rib_data.glob("rib-inserted-*.npz")))
    assert inserted["crop"].shape == (TINY.n_train * TINY.variants, *RIB_NETWORK.shape)
    val = load_dataset(sorted(rib_data.glob("rib-val-*.npz")))
    has = (val["ribs"][:, :, 2] > 0).any(axis=1)
    np.testing.assert_array_equal(has[::2], True)  # every second lab study has a fracture
    assert not has[1::2].any()
    # Profiles cycle standard, portable, community: the portable images are too coarse.
    np.testing.assert_array_equal(val["readable"], [True, False, True] * (TINY.n_val // 3))
    rows = [(i, r) for i, rs in enumerate(inserted["ribs"]) for r in rs if r[2] > 0]
    assert rows
    for i, (row, col, _, diameter_px) in rows[:4]:
        assert_brighter_than_ring(inserted["crop"][i], row, col, diameter_px)


def test_a_tiny_run_exports_onnx_that_the_runtime_merges(rib_data: Path, tmp_path: Path) -> None:
    for name in ("reference.onnx", "reference.json"):
        shutil.copy(shipped_model_dir() / name, tmp_path / name)
    sidecar = train_ribs(TINY, tmp_path, data_dir=rib_data, log=lambda _: None)
    assert sidecar["findings"] == ["rib_fracture"] and sidecar["training"]["steps"] == 2
    # Validated and calibrated on the images it reads; the unread portable ones are counted.
    validation = sidecar["validation"]
    assert validation["n_images"] == 4 and validation["n_unread"] == 2
    assert validation["n_fractures"] == 2 and "rib_fracture" in validation["auroc_all_images"]
    assert "rib network" in (tmp_path / "MODEL_CARD.md").read_text()
    onnx_matches_torch(TINY, tmp_path, RIB_NETWORK)

    runtime = ReferenceRuntime(tmp_path / "reference.onnx", tmp_path / "reference.json")
    assert [c.network.name for c in runtime.crops] == ["ribs"]
    pixels = np.random.default_rng(3).random((512, 512)).astype(np.float32)
    fine = dataclasses.replace(image_from_pixels(pixels), pixel_spacing_mm=(0.703125, 0.703125))
    coarse = dataclasses.replace(image_from_pixels(pixels[::2, ::2].copy()),
                                 pixel_spacing_mm=(1.40625, 1.40625))  # fmt: skip
    high, low = runtime.run([fine, coarse])
    (direct,) = runtime.crops[0].run([fine])
    assert direct is not None
    p = high.probabilities["rib_fracture"]
    assert p == direct.probabilities["rib_fracture"]
    assert "rib_fracture" not in high.unassessed and "rib_fracture" in low.unassessed
    # Zones from the heatmap's peak: the fracture's probability there, nothing elsewhere.
    zones = high.zone_probabilities["rib_fracture"]
    assert set(zones) == set(ZONES)
    assert max(zones.values()) == pytest.approx(p) and min(zones.values()) == 0.0


def test_a_half_copied_rib_network_is_refused(tmp_path: Path) -> None:
    for name in ("reference.onnx", "reference.json"):
        shutil.copy(shipped_model_dir() / name, tmp_path / name)
    (tmp_path / "ribs.json").write_text(json.dumps({"findings": ["rib_fracture"]}))
    with pytest.raises(ValueError, match=r"ribs network's ribs\.onnx beside ribs\.json"):
        ReferenceRuntime(tmp_path / "reference.onnx", tmp_path / "reference.json")


def test_the_rib_network_reads_finer_images_than_the_nodule_network() -> None:
    from radloop.models.reference.nodules import NODULE_NETWORK

    blank = np.zeros((8, 8), np.float32)
    for size, reads_ribs in ((512, True), (448, True), (420, True), (384, False), (256, False)):
        spacing = (360.0 / size, 360.0 / size)
        assert RIB_NETWORK.readable(blank, spacing) is reads_ribs, size
    # The lab's portable images (384 px over 360 mm) are read for nodules, not for ribs.
    assert NODULE_NETWORK.readable(blank, (0.9375, 0.9375))
