"""The bundled sample study used by ``radloop demo``."""

from __future__ import annotations

import datetime

import numpy as np
import pydicom
from make_sample_study import SAMPLE_REPORT, sample_dataset
from pydicom.uid import JPEG2000Lossless

from radloop.study import load_study, sample_report_path, sample_study_path


def test_sample_study_is_a_small_compressed_pa_chest_radiograph() -> None:
    study = load_study(sample_study_path())
    meta = study.metadata
    assert (meta.modality, meta.body_part, meta.view_position) == ("DX", "CHEST", "PA")
    assert meta.patient_age == 54.0 and meta.patient_sex == "F"
    assert meta.institution == "radloop sample hospital"
    assert meta.study_date == datetime.date(2024, 3, 15)
    (image,) = study.images
    assert image.shape == (256, 256)
    assert image.spacing_source == "ImagerPixelSpacing"
    files = list(sample_study_path().iterdir())
    assert sum(f.stat().st_size for f in files) < 200_000
    assert pydicom.dcmread(files[0]).file_meta.TransferSyntaxUID == JPEG2000Lossless


def test_bundled_sample_matches_what_the_generator_builds() -> None:
    bundled = pydicom.dcmread(sample_study_path() / "IM0001.dcm")
    rebuilt = sample_dataset()
    np.testing.assert_array_equal(bundled.pixel_array, rebuilt.pixel_array)
    assert bundled.SOPInstanceUID == rebuilt.SOPInstanceUID
    assert sample_report_path().read_text(encoding="utf-8") == SAMPLE_REPORT


def test_sample_report_has_findings_and_impression() -> None:
    text = sample_report_path().read_text(encoding="utf-8")
    assert "FINDINGS:" in text and "IMPRESSION:" in text
    for phrase in ("right lower lobe", "pleural effusion", "No pneumothorax", "1.2 cm"):
        assert phrase in text
    assert "4 cm above the carina" in text
