"""The caliper measures a nodule's diameter on the full-resolution image."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from radloop.models.reference.caliper import Caliper
from radloop.models.reference.runtime import ReferenceOutput
from radloop.models.reference.spec import FINDINGS, REGRESSIONS, ZONES

SPACING = (0.7, 0.7)


def _film(diameter_mm: float, centre_rc: tuple[float, float], seed: int = 0) -> np.ndarray:
    """A 512² film: a smooth gradient, rib-like stripes, noise and a projected ball."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:512, 0:512].astype(np.float64)
    film = 0.3 + 0.0005 * rows + 0.03 * np.sin(rows * SPACING[0] / 9.0)
    radius = diameter_mm / 2 / SPACING[0]
    r2 = (rows - centre_rc[0]) ** 2 + (cols - centre_rc[1]) ** 2
    film += 0.006 * np.sqrt(np.clip(radius**2 - r2, 0.0, None))  # thickness of a sphere
    return (film + rng.normal(0.0, 0.02, film.shape)).astype(np.float32)


@pytest.mark.parametrize("diameter", [6.0, 11.0, 19.0, 27.0])
def test_a_ball_is_measured_to_within_a_millimetre_from_a_point_off_its_centre(
    diameter: float,
) -> None:
    film = _film(diameter, (240.0, 300.0), seed=int(diameter))
    reading = Caliper().measure(film, SPACING, (250.0, 291.0))  # 9.5 mm away
    assert reading is not None
    assert abs(reading.diameter_mm - diameter) <= 1.0
    assert abs(reading.centre_rc[0] - 240) <= 2 and abs(reading.centre_rc[1] - 300) <= 2
    assert 0.0 < reading.ncc <= 1.0


def test_no_reading_without_room_or_spacing() -> None:
    assert Caliper().measure(np.zeros((20, 20), np.float32), SPACING, (10.0, 10.0)) is None
    assert Caliper().measure(_film(10.0, (100.0, 100.0)), (0.0, 0.0), (100.0, 100.0)) is None


def _output(shape: tuple[int, int], spacing: tuple[float, float] | None) -> ReferenceOutput:
    return ReferenceOutput(
        probabilities={c: 0.0 for c in FINDINGS},
        zone_probabilities={c: {z: 0.0 for z in ZONES} for c in FINDINGS},
        heatmaps=np.zeros((len(FINDINGS), 32, 32), np.float32),
        regressions={r.name: r.offset for r in REGRESSIONS},
        view_probabilities={"PA": 1.0, "AP": 0.0, "LL": 0.0},
        embedding=np.zeros(4, np.float32),
        image_shape=shape,
        pixel_spacing_mm=spacing,
    )


def test_the_heatmap_peak_maps_to_image_pixels_through_the_field_crop_or_pad() -> None:
    # 360 mm field at 0.5 mm = 720 px; the image is 600 x 800 px: rows padded, columns cropped.
    output = _output((600, 800), (0.5, 0.5))
    output.heatmaps[FINDINGS.index("nodule"), 3, 20] = 1.0
    row, col = output.peak("nodule")
    assert row == pytest.approx(3.5 * 720 / 32 - 60)
    assert col == pytest.approx(20.5 * 720 / 32 + 40)
    # Without a spacing the heatmap covers the whole image.
    plain = dataclasses.replace(output, image_shape=(320, 640), pixel_spacing_mm=None)
    assert plain.peak("nodule") == pytest.approx((3.5 * 10, 20.5 * 20))


def test_the_runtime_replaces_the_nodule_head_by_the_caliper_where_nodules_are_reportable(
    tmp_path: Path,
) -> None:
    from radloop.models.builtin import shipped_model_dir
    from radloop.models.images import image_from_pixels
    from radloop.models.reference.runtime import ReferenceRuntime

    shipped = shipped_model_dir()
    sidecar = json.loads((shipped / "reference.json").read_text())
    film = _film(14.0, (200.0, 330.0), seed=3)
    image = dataclasses.replace(image_from_pixels(film), pixel_spacing_mm=SPACING)
    # The shipped model reports nodules through its nodule network, so it measures them.
    assert ReferenceRuntime(shipped / "reference.onnx", shipped / "reference.json").caliper
    # The whole-image network with the device network only does not report nodules.
    alone = tmp_path / "alone"
    alone.mkdir()
    for name in ("reference.json", "devices.onnx", "devices.json"):
        shutil.copy(shipped / name, alone / name)
    plain = ReferenceRuntime(shipped / "reference.onnx", alone / "reference.json")
    assert plain.caliper is None
    (unmeasured,) = plain.run([image])
    assert "nodule_mm" not in unmeasured.measured  # (tube tips come from the device network)
    # The same network with a sidecar that lets it report nodules (from any probability).
    sidecar["validation"]["auroc"]["nodule"] = 0.95
    sidecar["thresholds"]["nodule"] = 0.0
    (tmp_path / "reference.json").write_text(json.dumps(sidecar))
    for name in ("devices.onnx", "devices.json"):
        shutil.copy(shipped / name, tmp_path / name)
    runtime = ReferenceRuntime(shipped / "reference.onnx", tmp_path / "reference.json")
    (output,) = runtime.run([image])
    assert set(output.measured) - set(unmeasured.measured) == {"nodule_mm"}
    assert output.regressions["nodule_mm"] in runtime.caliper.sizes_mm  # type: ignore[union-attr]
    assert output.probabilities == unmeasured.probabilities
    # Without a pixel spacing there is nothing to measure in millimetres.
    (no_spacing,) = runtime.run([image_from_pixels(film)])
    assert "nodule_mm" not in no_spacing.measured
