"""De-identification, PS3.15 Annex E Basic Profile with Retain Patient Characteristics."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from studykit import make_dataset, save

from radloop.errors import InputError, UnsupportedFileTypeError
from radloop.study import deidentify, load_image

SALT = "test-salt"


@pytest.fixture
def identified(tmp_path: Path) -> Path:
    ds = make_dataset(
        InstitutionName="St Elsewhere",
        OperatorsName="OPERATOR^ONE",
        ReferringPhysicianName="REFERRER^DR",
        AccessionNumber="ACC123",
        SeriesDate="20240102",
        AcquisitionDateTime="20240102101500",
        OtherPatientIDs="OLD-ID",
        PatientAddress="1 Main Street",
        Manufacturer="Acme",
        FrameOfReferenceUID="1.2.3.4.5.6.7",
    )
    ds.add_new(0x00091010, "LO", "private vendor data")
    ds.add_new(0x60000010, "US", 32)  # overlay rows
    ds.add_new(0x60003000, "OW", b"\x00\x01" * 8)  # overlay data
    reference = Dataset()
    reference.ReferencedSOPClassUID = ds.SOPClassUID
    reference.ReferencedSOPInstanceUID = "1.2.3.4.5.6.8"
    ds.SourceImageSequence = Sequence([reference])
    return save(ds, tmp_path / "in" / "identified.dcm")


def _run(src: Path, tmp_path: Path, **options: bool) -> Dataset:
    dst = deidentify(src, tmp_path / "out.dcm", salt=SALT, **options)
    return pydicom.dcmread(dst)


def test_the_original_file_is_byte_for_byte_unchanged(identified: Path, tmp_path: Path) -> None:
    before = hashlib.sha256(identified.read_bytes()).hexdigest()
    deidentify(identified, tmp_path / "out.dcm", salt=SALT)
    assert hashlib.sha256(identified.read_bytes()).hexdigest() == before


def test_names_ids_and_dates_are_gone(identified: Path, tmp_path: Path) -> None:
    ds = _run(identified, tmp_path)
    assert ds.PatientName == "" and ds.PatientID == "" and ds.PatientBirthDate == ""
    assert ds.StudyDate == "" and ds.StudyTime == "" and ds.AccessionNumber == ""
    assert ds.ReferringPhysicianName == ""
    for keyword in ("SeriesDate", "AcquisitionDateTime", "OperatorsName", "InstitutionName"):
        assert keyword not in ds
    assert "OtherPatientIDs" not in ds and "PatientAddress" not in ds
    text = ds.to_json()
    for secret in ("TEST^PATIENT", "ID-12345", "19700101", "20240102", "St Elsewhere"):
        assert secret not in text


def test_private_tags_and_overlays_are_removed(identified: Path, tmp_path: Path) -> None:
    ds = _run(identified, tmp_path)
    assert not any(elem.tag.is_private for elem in ds)
    assert not any(elem.tag.group == 0x6000 for elem in ds)


def test_uids_are_replaced_consistently_with_the_salt(identified: Path, tmp_path: Path) -> None:
    original = pydicom.dcmread(identified)
    first = _run(identified, tmp_path)
    again = pydicom.dcmread(deidentify(identified, tmp_path / "again.dcm", salt=SALT))
    other = pydicom.dcmread(deidentify(identified, tmp_path / "other.dcm", salt="another"))
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert first[keyword].value != original[keyword].value
        assert first[keyword].value == again[keyword].value
        assert first[keyword].value != other[keyword].value
    assert first.SOPClassUID == original.SOPClassUID
    assert first.file_meta.MediaStorageSOPInstanceUID == first.SOPInstanceUID
    nested = first.SourceImageSequence[0].ReferencedSOPInstanceUID
    assert nested != "1.2.3.4.5.6.8" and pydicom.uid.UID(nested).is_valid


def test_deidentification_is_recorded_with_its_profile_codes(
    identified: Path, tmp_path: Path
) -> None:
    ds = _run(identified, tmp_path)
    assert ds.PatientIdentityRemoved == "YES"
    assert "Basic Profile" in ds.DeidentificationMethod
    codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113108"]
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"


def test_age_and_sex_are_kept_by_default_for_fairness_monitoring(
    identified: Path, tmp_path: Path
) -> None:
    ds = _run(identified, tmp_path)
    assert ds.PatientAge == "054Y" and ds.PatientSex == "F"
    assert ds.Manufacturer == "Acme"  # not identifying; needed for shift monitoring


def test_without_the_retain_option_age_and_sex_go_too(identified: Path, tmp_path: Path) -> None:
    ds = _run(identified, tmp_path, retain_patient_characteristics=False)
    assert "PatientAge" not in ds and ds.PatientSex == ""
    assert [item.CodeValue for item in ds.DeidentificationMethodCodeSequence] == ["113100"]


def test_pixels_are_unchanged_and_the_copy_still_loads(identified: Path, tmp_path: Path) -> None:
    out = deidentify(identified, tmp_path / "out.dcm", salt=SALT)
    np.testing.assert_array_equal(load_image(out).pixels, load_image(identified).pixels)


def test_writing_over_the_source_is_refused(identified: Path) -> None:
    with pytest.raises(InputError, match="expected a destination different from the source"):
        deidentify(identified, identified, salt=SALT, overwrite=True)


def test_an_existing_destination_needs_overwrite(identified: Path, tmp_path: Path) -> None:
    dst = tmp_path / "exists.dcm"
    dst.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match=r"expected a new path.*overwrite=True"):
        deidentify(identified, dst, salt=SALT)
    assert dst.read_bytes() == b"keep me"
    deidentify(identified, dst, salt=SALT, overwrite=True)
    assert pydicom.dcmread(dst).PatientIdentityRemoved == "YES"


def test_failure_leaves_no_destination_or_temporary_file(tmp_path: Path) -> None:
    ds = make_dataset(BurnedInAnnotation="YES")
    src = save(ds, tmp_path / "in" / "burned.dcm")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError, match=r"Burned In Annotation \(0028,0301\) NO.*got YES"):
        deidentify(src, out / "burned.dcm", salt=SALT)
    assert list(out.iterdir()) == []


def test_an_empty_salt_is_refused(identified: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='Argument "salt" must be a non-empty string'):
        deidentify(identified, tmp_path / "out.dcm", salt="")


def test_non_dicom_input_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(UnsupportedFileTypeError, match="expected a DICOM file"):
        deidentify(text, tmp_path / "out.dcm", salt=SALT)
