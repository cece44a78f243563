"""The order's indication and history come from the DICOM header with the attribute they came
from; a FHIR Bundle uploaded with the images rides along (skipped by the image reader, found by
the context reader) in a folder and in a zip; a prior SR from the PACS becomes a prior report."""

from __future__ import annotations

import datetime
import json
import zipfile
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from studykit import make_dataset, save

from radloop.context import bundles_beside, prior_report_from_sr, prior_report_item
from radloop.errors import UnsupportedFileTypeError
from radloop.study import load_studies, load_study

BUNDLE = {"resourceType": "Bundle", "type": "collection", "entry": []}


def test_history_comes_from_the_order_with_the_attribute_it_came_from(tmp_path: Path) -> None:
    ds = make_dataset(
        ReasonForTheRequestedProcedure="fever",
        AdditionalPatientHistory="Neutropenic after chemotherapy",
        AdmittingDiagnosesDescription="Febrile neutropenia",
    )
    context = load_study(save(ds, tmp_path / "a.dcm")).context
    assert context.indication == "fever"
    assert context.indication_source == (
        "this film's order, DICOM (0040,1002) Reason for the Requested Procedure"
    )
    assert [(i.kind, i.text, i.source) for i in context.items] == [
        ("history", "Neutropenic after chemotherapy",
         "this film's order, DICOM (0010,21B0) Additional Patient History"),
        ("history", "Febrile neutropenia",
         "this film's order, DICOM (0008,1080) Admitting Diagnoses Description"),
    ]  # fmt: skip


def test_the_indication_falls_back_on_the_coded_reason_then_the_retired_one(tmp_path: Path) -> None:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "R05", "I10", "Cough"
    ds = make_dataset(ReasonForStudy="old style reason")
    ds.ReasonForRequestedProcedureCodeSequence = Sequence([code])
    context = load_study(save(ds, tmp_path / "a.dcm")).context
    assert (context.indication, context.indication_source) == (
        "Cough",
        "this film's order, DICOM (0040,100A) Reason for Requested Procedure Code",
    )
    del ds.ReasonForRequestedProcedureCodeSequence
    context = load_study(save(ds, tmp_path / "a.dcm")).context
    assert context.indication_source == "this film's order, DICOM (0032,1030) Reason for Study"


def test_a_bundle_beside_the_images_is_not_an_image_and_is_found(tmp_path: Path) -> None:
    image = save(make_dataset(), tmp_path / "study" / "a.dcm")
    (tmp_path / "study" / "labs.json").write_text(json.dumps(BUNDLE))
    assert len(load_studies(tmp_path / "study")) == 1
    assert bundles_beside([image]) == [("labs.json", json.dumps(BUNDLE).encode())]


def test_other_json_in_a_study_folder_is_still_refused(tmp_path: Path) -> None:
    save(make_dataset(), tmp_path / "a.dcm")
    (tmp_path / "notes.json").write_text('{"resourceType": "Patient"}')
    with pytest.raises(UnsupportedFileTypeError):
        load_studies(tmp_path)


def test_a_bundle_in_a_zip_rides_along_with_its_images(tmp_path: Path) -> None:
    image = save(make_dataset(), tmp_path / "a.dcm")
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(image, "study/a.dcm")
        zf.writestr("study/labs.json", json.dumps(BUNDLE))
        zf.writestr("elsewhere/other.json", json.dumps(BUNDLE))
    study = load_study(archive)
    assert bundles_beside([study.images[0].source]) == [("labs.json", json.dumps(BUNDLE).encode())]


def test_a_prior_report_is_aged_by_its_film_and_says_when_it_was_signed() -> None:
    item = prior_report_item(
        "FINDINGS: Clear.\nIMPRESSION:  Normal.",
        film_date=datetime.date(2026, 3, 15),
        prior_date=datetime.date(2026, 3, 1),
        signed_at=datetime.datetime(2026, 3, 2, 9, 30, tzinfo=datetime.UTC),
        addenda=[("Missed rib fracture.", datetime.date(2026, 3, 3))],
    )
    assert (item.kind, item.source, item.days_before) == ("prior_report", "radloop", 14)
    assert item.detail == "signed 2026-03-02, prior film of 2026-03-01"
    assert (
        item.text
        == "FINDINGS: Clear. IMPRESSION: Normal. Addendum (2026-03-03): Missed rib fracture."
    )


def test_a_prior_sr_from_the_pacs_becomes_a_prior_report() -> None:
    def text_item(name: str, value: str) -> Dataset:
        item = Dataset()
        item.ValueType, item.TextValue = "TEXT", value
        concept = Dataset()
        concept.CodeMeaning = name
        item.ConceptNameCodeSequence = Sequence([concept])
        return item

    sr = Dataset()
    sr.StudyDate, sr.ContentDate, sr.VerificationFlag = "20260301", "20260302", "VERIFIED"
    container = Dataset()
    container.ValueType = "CONTAINER"
    container.ContentSequence = Sequence([text_item("Finding", "Right lower lobe consolidation"),
                                          text_item("Impression", "Pneumonia")])  # fmt: skip
    sr.ContentSequence = Sequence([container])
    item = prior_report_from_sr(sr, film_date=datetime.date(2026, 3, 15))
    assert item is not None
    assert item.text == "Finding: Right lower lobe consolidation Impression: Pneumonia"
    assert (item.source, item.days_before) == ("PACS SR", 14)
    assert prior_report_from_sr(Dataset(), film_date=None) is None
