"""The device network's numpy side: crop geometry, heatmap pasting, merging into the main
network's reading and sidecar, and the runtime's refusal of a half-copied model folder."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from radloop.models.builtin import shipped_model_dir
from radloop.models.reference.devices import (
    CELLS,
    CROP_SHAPE,
    DEVICES,
    DeviceOutput,
    crop_box,
    device_crop,
    merge_output,
    merge_sidecar,
    paste_cells,
)
from radloop.models.reference.runtime import ReferenceOutput, ReferenceRuntime, reliable_findings
from radloop.models.reference.spec import FINDINGS, HEATMAP_SIZE, REGRESSIONS, ZONES


def test_the_crop_is_the_upper_middle_of_the_field() -> None:
    assert crop_box((500, 400)) == (10, 285, 120, 280)


def test_a_vertical_line_in_the_midline_lands_in_the_middle_of_the_crop() -> None:
    field = np.zeros((512, 512), np.float32)
    field[20:250, 255:257] = 1.0  # a 1.4 mm line down the midline, like a tube
    crop = device_crop(field, (0.703125, 0.703125))
    assert crop.shape == CROP_SHAPE
    columns = np.flatnonzero(crop.max(axis=0) > 0.3)
    assert columns.min() >= CROP_SHAPE[1] // 2 - 3 and columns.max() <= CROP_SHAPE[1] // 2 + 3
    # Without pixel spacing the whole image is the field, as for the main network.
    assert device_crop(np.zeros((300, 200), np.float32), None).shape == CROP_SHAPE


def test_cells_are_pasted_where_the_crop_lies_in_the_field() -> None:
    cells = np.zeros(CELLS, np.float32)
    cells[0, CELLS[1] // 2] = 1.0  # top middle of the crop
    field = paste_cells(cells, HEATMAP_SIZE)
    r0, r1, c0, c1 = crop_box((HEATMAP_SIZE, HEATMAP_SIZE))
    assert field[:r0].max() == 0 and field[r1:].max() == 0
    assert field[:, :c0].max() == 0 and field[:, c1:].max() == 0
    i, j = np.unravel_index(int(np.argmax(field)), field.shape)
    assert i == r0 and abs(j - HEATMAP_SIZE // 2) <= 1


def _output() -> ReferenceOutput:
    return ReferenceOutput(
        probabilities={c: 0.1 for c in FINDINGS},
        zone_probabilities={c: {z: 0.0 for z in ZONES} for c in FINDINGS},
        heatmaps=np.full((len(FINDINGS), HEATMAP_SIZE, HEATMAP_SIZE), 0.3, np.float32),
        regressions={r.name: r.offset for r in REGRESSIONS},
        view_probabilities={"PA": 1.0, "AP": 0.0, "LL": 0.0},
        embedding=np.zeros(4, np.float32),
        image_shape=(512, 512),
        pixel_spacing_mm=(0.703125, 0.703125),
    )


def test_the_device_reading_replaces_the_main_networks_for_devices_only() -> None:
    cells = np.zeros((len(DEVICES), *CELLS), np.float32)
    cells[0, 5, 6] = 0.95
    devices = DeviceOutput(
        probabilities={"endotracheal_tube": 0.95, "central_venous_catheter": 0.02},
        cells=cells,
        tips_mm={"ett_tip_mm": 47.0, "cvc_tip_mm": 12.0},
    )
    merged = merge_output(_output(), devices)
    assert merged.probabilities["endotracheal_tube"] == 0.95
    assert merged.probabilities["central_venous_catheter"] == 0.02
    assert merged.probabilities["nodule"] == 0.1
    assert merged.regressions["ett_tip_mm"] == 47.0 and merged.regressions["ctr"] == 0.5
    assert merged.measured["ett_tip_mm"] == "device network"
    tube = merged.heatmaps[FINDINGS.index("endotracheal_tube")]
    assert (
        tube.max() > 0.5 and merged.heatmaps[FINDINGS.index("central_venous_catheter")].max() == 0
    )
    assert float(merged.heatmaps[FINDINGS.index("nodule")].min()) == pytest.approx(0.3)


def test_merged_sidecar_makes_devices_reportable_on_the_device_networks_figures() -> None:
    main = {
        "version": "0.1.0",
        "thresholds": {c: 0.5 for c in FINDINGS},
        "validation": {"auroc": {c: 0.99 for c in FINDINGS} | {d: 0.55 for d in DEVICES}},
    }
    assert not set(DEVICES) & reliable_findings(main)
    devices = {
        "version": "0.2.0",
        "thresholds": {"endotracheal_tube": 0.4, "central_venous_catheter": 0.6},
        "validation": {"auroc": {"endotracheal_tube": 0.999, "central_venous_catheter": 0.97},
                       "regression_mae": {"ett_tip_mm": 3.0}},
    }  # fmt: skip
    merged = merge_sidecar(main, devices)
    assert set(DEVICES) <= reliable_findings(merged)
    assert merged["thresholds"]["endotracheal_tube"] == 0.4
    assert merged["version"] == "0.2.0" and merged["devices"]["version"] == "0.2.0"
    assert merged["validation"]["macro_auroc"] == pytest.approx((8 * 0.99 + 0.999 + 0.97) / 10)
    assert main["validation"]["auroc"]["endotracheal_tube"] == 0.55  # not changed in place


def test_a_model_folder_with_half_the_device_network_is_refused(tmp_path: Path) -> None:
    shipped = shipped_model_dir()
    for name in ("reference.onnx", "reference.json"):
        shutil.copy(shipped / name, tmp_path / name)
    (tmp_path / "devices.json").write_text(json.dumps({"devices": list(DEVICES)}))
    with pytest.raises(ValueError, match=r"devices\.onnx beside devices\.json"):
        ReferenceRuntime(tmp_path / "reference.onnx", tmp_path / "reference.json")


def test_platt_scaling_maps_inflated_logits_onto_probabilities() -> None:
    from radloop.lab.training.reference.devices_train import fit_platt, presence_calibration
    from radloop.models.reference.devices import apply_calibration

    rng = np.random.default_rng(0)
    true_logit = rng.normal(0.0, 4.0, 2000)
    labels = rng.random(2000) < 1 / (1 + np.exp(-true_logit))
    # Every logit 2 too high and twice too flat: most negatives read p > 0.5.
    raw = true_logit / 2 + 2
    scale, bias = fit_platt(raw, labels)
    assert scale == pytest.approx(2.0, rel=0.2) and bias == pytest.approx(-4.0, rel=0.2)
    calibration = presence_calibration(np.stack([raw, raw], axis=1), np.stack([labels] * 2, 1))
    fixed = apply_calibration(np.stack([raw, raw], axis=1), calibration)
    p = 1 / (1 + np.exp(-fixed[:, 0]))
    assert float(np.median(p[~labels])) < 0.1 and float(np.median(p[labels])) > 0.9
    # Perfectly separated data still gives finite values; absent entries are the identity.
    assert np.isfinite(fit_platt(np.r_[-np.ones(10), np.ones(10)], np.r_[[0] * 10, [1] * 10])).all()
    np.testing.assert_array_equal(
        apply_calibration(raw[:, None].repeat(2, 1), {}), raw[:, None].repeat(2, 1)
    )


def test_the_shipped_model_reports_the_tube_and_line_the_lab_inserted() -> None:
    import dataclasses

    from cropkit import anatomy_or_skip
    from radloop.lab.synth import make_study
    from radloop.models.builtin import ReferenceModel
    from radloop.models.images import image_from_pixels

    anatomy = anatomy_or_skip()
    model = ReferenceModel(shipped_model_dir())
    found, tip_truth = {}, {}
    for codes in (list(DEVICES), []):
        # A held-out site profile and a seed training never used.
        study = make_study(anatomy, 515_151, 3, site="enhanced", codes=codes)
        truth = study.truth["images"][0]
        pixels = next(iter(study.views.values())).exposure.display
        image = dataclasses.replace(image_from_pixels(pixels),
                                    pixel_spacing_mm=tuple(truth["pixel_spacing_mm"]))  # fmt: skip
        found[bool(codes)] = {f.code: f for f in model.predict_findings([image])}
        if codes:
            tip_truth = {f["code"]: f["tip_distance_mm"] for f in study.truth["findings"]}
    assert set(DEVICES) <= set(found[True]) and not set(DEVICES) & set(found[False])
    tube = found[True]["endotracheal_tube"]
    assert tube.tip_reference == "carina" and tube.tip_distance_mm is not None
    assert abs(tube.tip_distance_mm - tip_truth["endotracheal_tube"]) <= 10


def test_images_too_coarse_for_the_device_network_leave_devices_unassessed() -> None:
    from radloop.models.reference.devices import readable
    from radloop.models.reference.predictor import findings_from_output

    assert readable(np.zeros((512, 512)), (0.703125, 0.703125))
    assert not readable(np.zeros((256, 256)), (1.40625, 1.40625))  # 1.4 mm per pixel
    assert readable(np.zeros((2048, 2048)), None) and not readable(np.zeros((300, 300)), None)
    sure = dataclasses.replace(_output(), probabilities={c: 0.99 for c in FINDINGS})
    merged = merge_output(sure, None)
    assert merged.unassessed == frozenset(DEVICES)
    sidecar = {"thresholds": {c: 0.5 for c in FINDINGS}}
    reported = {f.code for f in findings_from_output(merged, sidecar)}
    assert not reported & set(DEVICES) and "nodule" in reported
    # The runtime marks them on a coarse image and reads them on a fine one.
    shipped = shipped_model_dir()
    runtime = ReferenceRuntime(shipped / "reference.onnx", shipped / "reference.json")
    from radloop.models.images import image_from_pixels

    coarse = dataclasses.replace(image_from_pixels(np.full((256, 256), 0.5, np.float32)),
                                 pixel_spacing_mm=(1.40625, 1.40625))  # fmt: skip
    fine = dataclasses.replace(image_from_pixels(np.full((512, 512), 0.5, np.float32)),
                               pixel_spacing_mm=(0.703125, 0.703125))  # fmt: skip
    low, high = runtime.run([coarse, fine])
    # The shipped nodule and rib networks need a fine image too.
    assert low.unassessed == frozenset({*DEVICES, "nodule", "rib_fracture"})
    assert high.unassessed == frozenset()
