"""DICOM SR export from images whose headers leave out Type 2 attributes."""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid
from reviewkit import write_sample_copy

from radloop.report import ReportStatus
from radloop.review.export import ExportContent, dicom_sr


def test_sr_export_of_a_study_without_patient_birth_date_has_it_present_and_empty(
    tmp_path: Path,
) -> None:
    source = write_sample_copy(
        tmp_path, uid=generate_uid(), patient="NB1", date=datetime.date(2024, 5, 1)
    )
    ds = pydicom.dcmread(source)
    for keyword in ("PatientBirthDate", "ReferringPhysicianName", "AccessionNumber"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.save_as(source)
    content = ExportContent(
        study_id="nb1",
        study_instance_uid=str(ds.StudyInstanceUID),
        status=ReportStatus.DRAFT,
        text="No acute cardiopulmonary abnormality.",
        findings=(),
        study_date=datetime.date(2024, 5, 1),
        issued=datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC),
    )
    sr = pydicom.dcmread(io.BytesIO(dicom_sr(content, [source])))
    assert "PatientBirthDate" in sr and not sr.PatientBirthDate
    assert sr.PatientID == "NB1"
    assert sr.StudyInstanceUID == ds.StudyInstanceUID
