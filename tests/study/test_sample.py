"""The bundled sample study used by ``radloop demo``."""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np
import pydicom
import pytest
from make_sample_study import SAMPLE_REPORT, lab_study, sample_dataset
from pydicom.uid import JPEG2000Lossless

from cropkit import anatomy_or_skip
from radloop.study import load_study, sample_report_path, sample_study_path


def test_sample_study_is_a_small_compressed_pa_chest_radiograph() -> None:
    study = load_study(sample_study_path())
    meta = study.metadata
    assert (meta.modality, meta.body_part, meta.view_position) == ("DX", "CHEST", "PA")
    assert meta.patient_age == 44.0 and meta.patient_sex == "M"
    assert meta.institution == "radloop sample hospital"
    assert meta.study_date == datetime.date(2024, 3, 15)
    (image,) = study.images
    assert image.shape == (512, 512)
    assert image.pixel_spacing_mm == pytest.approx((0.703125, 0.703125))
    files = list(sample_study_path().iterdir())
    assert sum(f.stat().st_size for f in files) < 300_000
    assert pydicom.dcmread(files[0]).file_meta.TransferSyntaxUID == JPEG2000Lossless


@pytest.fixture(scope="module")
def lab() -> Any:
    """The sample's study as the generator renders it (with the synthetic lab's anatomy)."""
    anatomy_or_skip()
    return lab_study()


def test_bundled_sample_matches_what_the_generator_builds(lab: Any) -> None:
    bundled = pydicom.dcmread(sample_study_path() / "IM0001.dcm")
    rebuilt = sample_dataset(lab)
    np.testing.assert_array_equal(bundled.pixel_array, rebuilt.pixel_array)
    assert bundled.SOPInstanceUID == rebuilt.SOPInstanceUID
    assert sample_report_path().read_text(encoding="utf-8") == SAMPLE_REPORT


def test_sample_report_states_what_the_lab_inserted(lab: Any) -> None:
    text = sample_report_path().read_text(encoding="utf-8")
    assert "FINDINGS:" in text and "IMPRESSION:" in text
    truth = {f["code"]: f for f in lab.truth["findings"]}
    assert set(truth) == {"consolidation", "pleural_effusion", "nodule", "endotracheal_tube"}
    assert truth["consolidation"]["lobes"] == ["left_lower_lobe"]
    assert "opacity in the left lower lobe" in text
    assert truth["pleural_effusion"]["side"] == "right"
    assert truth["pleural_effusion"]["severity"] == "small"
    assert "Small right pleural effusion" in text
    assert truth["nodule"]["zones"] == ["right_middle"]
    assert (
        f"A {truth['nodule']['size_mm'] / 10:.1f} cm nodule is seen in the right mid zone" in text
    )
    tip_cm = truth["endotracheal_tube"]["tip_distance_mm"] / 10
    assert f"tip is {tip_cm:.1f} cm above the carina" in text
    assert "No pneumothorax" in text and "Heart size is normal" in text


def test_the_reference_model_drafts_the_sample_close_to_its_report() -> None:
    # The sample is a lab image at 0.70 mm per pixel: the crop networks read its nodule and
    # tube, so `radloop draft` on it gives what the report says, within measurement.
    from radloop.assist import draft
    from radloop.models import load_model

    found = {f.code: f for f in draft(load_study(sample_study_path()), load_model("builtin"))
             .report.findings if f.is_positive}  # fmt: skip
    assert {"consolidation", "pleural_effusion", "nodule", "endotracheal_tube"} <= set(found)
    assert found["pleural_effusion"].side is not None
    assert found["pleural_effusion"].side.value == "right"
    assert found["nodule"].size_mm is not None and abs(found["nodule"].size_mm - 12.9) <= 3
