"""The reference model's numpy side: preprocessing, metrics, findings from outputs."""

from __future__ import annotations

import numpy as np
import pytest

from radloop.models.reference.metrics import auroc, best_threshold
from radloop.models.reference.predictor import findings_from_output, severity_of
from radloop.models.reference.preprocess import field_crop, preprocess
from radloop.models.reference.runtime import ReferenceOutput
from radloop.models.reference.spec import FINDINGS, HEATMAP_SIZE, INPUT_SIZE, REGRESSIONS, ZONES
from radloop.report.types import Severity
from radloop.vocabulary import Side, Zone


def _output(**probabilities: float) -> ReferenceOutput:
    zones = {c: {z: 0.0 for z in ZONES} for c in FINDINGS}
    zones["nodule"][Zone.RIGHT_UPPER] = 0.9
    zones["pleural_effusion"][Zone.LEFT_LOWER] = 0.8
    zones["pleural_effusion"][Zone.RIGHT_LOWER] = 0.7
    regressions = {r.name: r.offset for r in REGRESSIONS}
    regressions.update(nodule_mm=12.3, ett_tip_mm=41.6, effusion_ml=700.0)
    return ReferenceOutput(
        probabilities={c: probabilities.get(c, 0.01) for c in FINDINGS},
        zone_probabilities=zones,
        heatmaps=np.zeros((len(FINDINGS), HEATMAP_SIZE, HEATMAP_SIZE), np.float32),
        regressions=regressions,
        view_probabilities={"PA": 0.9, "AP": 0.05, "LL": 0.05},
        embedding=np.zeros(8, np.float32),
        image_shape=(512, 512),
        pixel_spacing_mm=(0.703125, 0.703125),
    )


SIDECAR = {"thresholds": {c: 0.5 for c in FINDINGS}, "zone_threshold": 0.5}


def test_findings_take_side_and_zones_from_the_zone_heads() -> None:
    found = {f.code: f for f in findings_from_output(
        _output(nodule=0.97, pleural_effusion=0.8), SIDECAR)}  # fmt: skip
    assert set(found) == {"nodule", "pleural_effusion"}
    assert found["nodule"].zones == (Zone.RIGHT_UPPER,)
    assert found["nodule"].side is Side.RIGHT
    assert found["nodule"].size_mm == 12.3
    assert found["nodule"].probability == pytest.approx(0.97)
    assert found["pleural_effusion"].side is Side.BILATERAL
    assert found["pleural_effusion"].severity is Severity.MODERATE


def test_a_finding_below_its_validation_threshold_is_not_reported() -> None:
    sidecar = {"thresholds": {**SIDECAR["thresholds"], "nodule": 0.99}}
    assert findings_from_output(_output(nodule=0.97), sidecar) == ()


def test_an_endotracheal_tube_reports_its_tip_above_the_carina() -> None:
    (tube,) = findings_from_output(_output(endotracheal_tube=0.9), SIDECAR)
    assert (tube.tip_distance_mm, tube.tip_reference) == (42.0, "carina")
    assert tube.zones == ()


def test_severity_follows_the_synthetic_lab_scales() -> None:
    regressions = {"pneumothorax_rim_mm": 25.0, "ctr": 0.58}
    assert severity_of("pneumothorax", regressions) is Severity.LARGE
    assert severity_of("cardiomegaly", regressions) is Severity.MODERATE
    assert severity_of("nodule", regressions) is None


def test_the_heatmap_is_upsampled_to_image_coordinates() -> None:
    output = _output()
    output.heatmaps[0, :, : HEATMAP_SIZE // 2] = 1.0
    heat = output.heatmap("nodule")
    assert heat.shape == (512, 512)
    assert heat[256, 100] == pytest.approx(1.0) and heat[256, 400] == pytest.approx(0.0)


def test_preprocessing_gives_a_standardised_fixed_input_covering_the_field() -> None:
    pixels = np.random.default_rng(0).random((300, 200)).astype(np.float32)
    x = preprocess(pixels, (1.8, 1.8))  # 540 x 360 mm: cropped to 360 mm rows, padded? no
    assert x.shape == (INPUT_SIZE, INPUT_SIZE)
    assert abs(float(x.mean())) < 1e-4 and float(x.std()) == pytest.approx(1.0, abs=1e-3)
    assert field_crop(pixels, (1.8, 1.8)).shape == (200, 200)
    assert field_crop(pixels, (0.9, 0.9)).shape == (400, 400)  # padded
    assert field_crop(pixels, None).shape == (300, 200)


def test_auroc_counts_ties_as_half_and_is_undefined_for_one_class() -> None:
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert auroc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert np.isnan(auroc([1, 1], [0.2, 0.3]))
    assert best_threshold([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == pytest.approx(0.8)


def test_preprocessing_follows_a_sidecar_input_size_and_field() -> None:
    pixels = np.random.default_rng(0).random((300, 200)).astype(np.float32)
    assert preprocess(pixels, (1.8, 1.8), 224).shape == (224, 224)
    assert field_crop(pixels, (1.8, 1.8), 180.0).shape == (100, 100)
