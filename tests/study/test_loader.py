"""Folders and zips into studies: series kept apart, priors separated, metadata."""

from __future__ import annotations

import datetime
import zipfile
from pathlib import Path

import numpy as np
import pytest
from studykit import make_dataset, raster_bytes, save

from radloop.study import (
    EmptyStudyError,
    MultipleStudiesError,
    dicom_files,
    load_studies,
    load_study,
    parse_age_string,
)


def _zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return archive


@pytest.fixture
def two_series(tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    save(make_dataset(series="series-2", instance=1, ViewPosition="LL"), folder / "lat.dcm")
    save(make_dataset(series="series-1", instance=2), folder / "pa2.dcm")
    save(make_dataset(series="series-1", instance=1), folder / "sub" / "pa1.dcm")
    return folder


def test_folder_is_one_study_with_series_kept_apart_and_in_order(two_series: Path) -> None:
    study = load_study(two_series)
    assert len(study.series) == 2
    frontal, lateral = study.series
    assert [i.source.name for i in frontal.images] == ["pa1.dcm", "pa2.dcm"]
    assert [i.view_position for i in lateral.images] == ["LL"]
    assert {i.series_instance_uid for i in frontal.images} == {frontal.uid}
    assert len(study.images) == 3


def test_zip_reads_like_the_folder_it_was_made_from(two_series: Path, tmp_path: Path) -> None:
    archive = _zip_folder(two_series, tmp_path / "study.zip")
    from_zip, from_folder = load_study(archive), load_study(two_series)
    assert [s.uid for s in from_zip.series] == [s.uid for s in from_folder.series]
    for a, b in zip(from_zip.images, from_folder.images, strict=True):
        np.testing.assert_array_equal(a.pixels, b.pixels)
    assert from_zip.images[0].source == archive / "sub" / "pa1.dcm"


def test_a_prior_study_comes_back_separately_oldest_first(tmp_path: Path) -> None:
    save(make_dataset(study="current", StudyDate="20240601"), tmp_path / "now.dcm")
    save(make_dataset(study="prior", StudyDate="20230105"), tmp_path / "then.dcm")
    studies = load_studies(tmp_path)
    assert [s.metadata.study_date for s in studies] == [
        datetime.date(2023, 1, 5),
        datetime.date(2024, 6, 1),
    ]
    assert studies[0].study_instance_uid != studies[1].study_instance_uid


def test_load_study_refuses_several_studies_and_points_to_load_studies(tmp_path: Path) -> None:
    save(make_dataset(study="current"), tmp_path / "now.dcm")
    save(make_dataset(study="prior"), tmp_path / "then.dcm")
    with pytest.raises(MultipleStudiesError, match=r"expected exactly one study.*load_studies"):
        load_study(tmp_path)


def test_studies_without_a_date_sort_last(tmp_path: Path) -> None:
    save(make_dataset(study="undated", StudyDate=""), tmp_path / "a.dcm")
    save(make_dataset(study="dated", StudyDate="20200101"), tmp_path / "b.dcm")
    dates = [s.metadata.study_date for s in load_studies(tmp_path)]
    assert dates == [datetime.date(2020, 1, 1), None]


def test_raster_files_of_a_folder_form_their_own_study_beside_dicom(tmp_path: Path) -> None:
    save(make_dataset(), tmp_path / "a.dcm")
    (tmp_path / "b.png").write_bytes(raster_bytes(np.zeros((4, 4), np.uint8), "PNG"))
    assert len(load_studies(tmp_path)) == 2


def test_metadata_and_clinical_context_come_from_the_header(tmp_path: Path) -> None:
    ds = make_dataset(
        Manufacturer="Acme",
        ManufacturerModelName="DR-1",
        InstitutionName="General",
        ReasonForTheRequestedProcedure="cough",
        PixelSpacing=[0.2, 0.2],
        PatientAge="006M",
        PatientSex="M",
    )
    study = load_study(save(ds, tmp_path / "a.dcm"))
    meta = study.metadata
    assert (meta.modality, meta.body_part, meta.view_position) == ("DX", "CHEST", "PA")
    assert (meta.manufacturer, meta.model, meta.institution) == ("Acme", "DR-1", "General")
    assert meta.study_date == datetime.date(2024, 1, 2)
    assert meta.pixel_spacing == (0.2, 0.2)
    assert meta.patient_age == pytest.approx(0.5)
    assert study.context.patient_sex == "M"
    assert study.context.indication == "cough"


@pytest.mark.parametrize(
    ("text", "years"),
    [("045Y", 45.0), ("006M", 0.5), ("002W", 14 / 365.25), ("010D", 10 / 365.25)],
)
def test_age_strings_are_parsed_to_years(text: str, years: float) -> None:
    assert parse_age_string(text) == pytest.approx(years)


@pytest.mark.parametrize("text", ["", "45Y", "045X", "abcd", None])
def test_malformed_age_strings_are_unknown_not_guessed(text: str | None) -> None:
    assert parse_age_string(text) is None


def test_age_falls_back_on_birth_and_study_dates(tmp_path: Path) -> None:
    ds = make_dataset(PatientBirthDate="19700102", StudyDate="20200102")
    del ds.PatientAge
    study = load_study(save(ds, tmp_path / "a.dcm"))
    assert study.context.patient_age_years == pytest.approx(50.0, abs=0.01)


def test_unknown_sex_values_are_none(tmp_path: Path) -> None:
    study = load_study(save(make_dataset(PatientSex="X"), tmp_path / "a.dcm"))
    assert study.metadata.patient_sex is None


def test_hidden_files_and_dicomdir_are_skipped(tmp_path: Path) -> None:
    save(make_dataset(), tmp_path / "a.dcm")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (tmp_path / "DICOMDIR").write_bytes(b"not read")
    (tmp_path / "__MACOSX").mkdir()
    (tmp_path / "__MACOSX" / "a.dcm").write_bytes(b"resource fork")
    assert len(load_study(tmp_path).images) == 1


def test_a_folder_without_images_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / ".hidden").write_text("x")
    with pytest.raises(EmptyStudyError, match="expected at least one DICOM, PNG or JPEG image"):
        load_studies(tmp_path)


def test_a_missing_path_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="expected a file, folder or zip"):
        load_studies(tmp_path / "nope")


def test_dicom_files_lists_part_10_files_only(tmp_path: Path) -> None:
    save(make_dataset(), tmp_path / "a.dcm")
    save(make_dataset(instance=2), tmp_path / "deeper" / "b")
    (tmp_path / "c.png").write_bytes(raster_bytes(np.zeros((2, 2), np.uint8), "PNG"))
    assert [p.name for p in dicom_files(tmp_path)] == ["a.dcm", "b"]


def test_study_metadata_come_from_the_frontal_image_when_the_lateral_comes_first(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "lateral-first"
    save(make_dataset(series="series-1", instance=1, ViewPosition="LL"), folder / "lat.dcm")
    save(make_dataset(series="series-2", instance=1, ViewPosition="PA"), folder / "pa.dcm")
    study = load_study(folder)
    assert study.series[0].images[0].view_position == "LL"
    assert study.metadata.view_position == "PA"


def test_load_files_reads_exactly_the_named_files(tmp_path: Path) -> None:
    import shutil

    import pytest

    from radloop.study import load_files, load_studies, sample_study_path

    (tmp_path / "a").mkdir()
    first = next(sample_study_path().glob("*.dcm"))
    shutil.copy(first, tmp_path / "a" / "IM1.dcm")
    studies = load_files([tmp_path / "a" / "IM1.dcm"])
    assert [s.study_instance_uid for s in studies] == [
        s.study_instance_uid for s in load_studies(tmp_path / "a")
    ]
    archive = Path(shutil.make_archive(str(tmp_path / "z"), "zip", tmp_path / "a"))
    member = load_files([archive / "IM1.dcm"])
    assert member[0].study_instance_uid == studies[0].study_instance_uid
    with pytest.raises(FileNotFoundError, match="expected a file or a member of a zip"):
        load_files([tmp_path / "missing" / "IM1.dcm"])
