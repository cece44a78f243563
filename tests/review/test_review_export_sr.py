"""The report as DICOM SR: TID 2000, every finding coded (absent ones too), versions chained,
validated by dicom3tools' dciodvfy, and robust to source headers that leave attributes out."""

from __future__ import annotations

import datetime
import io
import itertools
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import generate_uid
from reviewkit import write_sample_copy

from radloop.report import Finding, Presence, ReportStatus
from radloop.review.export import Addendum, ExportContent, dicom_sr
from radloop.review.sr import (
    dciodvfy_errors,
    dciodvfy_messages,
    dciodvfy_path,
    signed_report_sr,
    signed_report_sr_chain,
    sr_series_uid,
    sr_version_uid,
)
from radloop.vocabulary import Lobe, Side, Zone

SIGNED_AT = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)
TEXT = (
    "FINDINGS:\nLungs: Small left pleural effusion. Possible right upper lobe pneumonia.\n"
    "No pneumothorax. Calcified granuloma.\nHeart: normal size – no cardiomegaly.\n\n"
    "IMPRESSION:\nSmall left pleural effusion ≥ 1 cm. Possible right upper lobe pneumonia."
)
FINDINGS = (
    Finding("pleural_effusion", side=Side.LEFT, zones=(Zone.LEFT_LOWER,), probability=0.81),
    Finding("pneumonia", presence=Presence.UNCERTAIN, lobes=(Lobe.RIGHT_UPPER,)),
    Finding("pneumothorax", presence=Presence.ABSENT),
    Finding("cardiomegaly", presence=Presence.ABSENT),
    Finding("calcified_granuloma", side=Side.RIGHT),  # no SNOMED or RadLex code: 99RADLOOP
    Finding("interstitial_opacity", zones=(Zone.LEFT_UPPER, Zone.RIGHT_UPPER)),
)
needs_dciodvfy = pytest.mark.skipif(
    dciodvfy_path() is None,
    reason="dciodvfy is not installed (Debian package dicom3tools; .ci/run installs it)",
)


def _source(tmp_path: Path, *, drop: tuple[str, ...] = (), **values: Any) -> Path:
    path = write_sample_copy(
        tmp_path / generate_uid()[-12:],
        uid=generate_uid(),
        patient="NB1",
        date=datetime.date(2024, 5, 1),
    )
    ds = pydicom.dcmread(path)
    for keyword in drop:
        if keyword in ds:
            delattr(ds, keyword)
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    ds.save_as(path)
    return path


def _content(source: Path, status: ReportStatus = ReportStatus.FINAL, **changes: Any) -> Any:
    values: dict[str, Any] = {
        "study_id": "s1",
        "study_instance_uid": str(pydicom.dcmread(source).StudyInstanceUID),
        "status": status,
        "text": TEXT,
        "findings": FINDINGS,
        "study_date": datetime.date(2024, 5, 1),
        "issued": SIGNED_AT,
        "signed_by": None if status is ReportStatus.DRAFT else "Dr Ann Reader",
        "institution": "Test Hospital",
        "signed_at": None if status is ReportStatus.DRAFT else SIGNED_AT,
    }
    values.update(changes)
    return ExportContent(**values)


def _amended(source: Path) -> Any:
    addenda = (
        Addendum(
            "Correction: the left effusion is moderate.",
            "Bob Second",
            SIGNED_AT + datetime.timedelta(hours=1),
            (Finding("pleural_effusion", side=Side.LEFT),),
        ),
        Addendum(
            "Discussed with Dr Müller at 14:00.",
            "Ann Reader",
            SIGNED_AT + datetime.timedelta(hours=2),
        ),
    )
    return _content(
        source,
        ReportStatus.AMENDED,
        issued=addenda[-1].signed_at,
        addenda=tuple(a.text for a in addenda),
        amendments=addenda,
    )


def _name(item: Any) -> tuple[str, str]:
    code = item.ConceptNameCodeSequence[0]
    return str(code.CodeValue), str(code.CodingSchemeDesignator)


def _value(item: Any) -> tuple[str, str]:
    code = item.ConceptCodeSequence[0]
    value = code.get("CodeValue") or code.get("LongCodeValue")
    return str(value), str(code.CodingSchemeDesignator)


def _children(item: Any, name: tuple[str, str] | None = None) -> list[Any]:
    return [c for c in item.get("ContentSequence", []) if name is None or _name(c) == name]


def test_sr_export_of_a_study_without_patient_birth_date_has_it_present_and_empty(
    tmp_path: Path,
) -> None:
    source = _source(
        tmp_path, drop=("PatientBirthDate", "ReferringPhysicianName", "AccessionNumber")
    )
    ds = pydicom.dcmread(source)
    content = _content(source, ReportStatus.DRAFT, text="No acute cardiopulmonary abnormality.")
    sr = pydicom.dcmread(io.BytesIO(dicom_sr(content, [source])))
    assert "PatientBirthDate" in sr and not sr.PatientBirthDate
    assert "AccessionNumber" in sr and not sr.AccessionNumber
    assert sr.PatientID == "NB1"
    assert sr.StudyInstanceUID == ds.StudyInstanceUID


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
def test_sr_export_leaves_out_values_a_source_got_wrong(tmp_path: Path) -> None:
    """Bad values are emptied, not copied into an SR that would fail validation (or a 500)."""
    source = _source(
        tmp_path,
        drop=("PatientName", "StudyTime", "StudyID", "PatientSex"),
        PatientBirthDate="1980",
        PatientAge="44",
    )
    ds = pydicom.dcmread(source)
    ds.add_new(0x00100040, "CS", "Male")  # PatientSex with a value outside M/F/O
    ds.save_as(source)
    sr = pydicom.dcmread(io.BytesIO(dicom_sr(_content(source), [source])))
    assert (sr.PatientBirthDate, sr.PatientSex, sr.PatientName, sr.StudyTime) == ("", "", "", "")
    assert "PatientAge" not in sr
    assert sr.CompletionFlag == "COMPLETE"


def test_sr_without_dicom_evidence_is_a_typed_input_error(tmp_path: Path) -> None:
    from radloop.errors import InputError

    png = tmp_path / "film.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    with pytest.raises(InputError, match="DICOM images"):
        signed_report_sr(_content(_source(tmp_path)), [png])


def test_signed_sr_follows_tid_2000(tmp_path: Path) -> None:
    source = _source(tmp_path)
    document = signed_report_sr(_content(source), [source])
    sr = pydicom.dcmread(io.BytesIO(document.data))
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == (
        "COMPLETE",
        "VERIFIED",
        "FINAL",
    )
    observer = sr.VerifyingObserverSequence[0]
    assert str(observer.VerifyingObserverName) == "Reader^Ann^^Dr"
    assert observer.VerifyingOrganization == "Test Hospital"
    assert observer.VerificationDateTime.startswith("20240501120000")
    assert _name(sr) == ("18748-4", "LN")  # Diagnostic Imaging Report, CID 7000
    template = sr.ContentTemplateSequence[0]
    assert (template.MappingResource, template.TemplateIdentifier) == ("DCMR", "2000")
    # The evidence: the study's own image, in the same study.
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == sr.StudyInstanceUID
    image = pydicom.dcmread(source)
    ref = evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == image.SOPInstanceUID
    assert sr.ReferencedRequestSequence[0].AccessionNumber == image.AccessionNumber
    # TID 2000 rows in order: procedure, language, observation context, then sections.
    top = [(c.RelationshipType, _name(c)) for c in sr.ContentSequence]
    assert top[0] == ("HAS CONCEPT MOD", ("121058", "DCM"))
    assert _value(sr.ContentSequence[0]) == ("36554-4", "LN")  # one image: XR Chest Single view
    assert top[1] == ("HAS CONCEPT MOD", ("121049", "DCM"))
    assert _value(sr.ContentSequence[1]) == ("en", "RFC5646")
    context = [c for c in sr.ContentSequence if c.RelationshipType == "HAS OBS CONTEXT"]
    assert _value(context[0]) == ("121006", "DCM")  # Observer Type: Person
    assert str(context[1].PersonName) == "Reader^Ann^^Dr"
    sections = {_name(c): c for c in sr.ContentSequence if c.ValueType == "CONTAINER"}
    findings = sections[("59776-5", "LN")]
    assert "Small left pleural effusion" in _children(findings, ("121071", "DCM"))[0].TextValue
    coded = [c for c in _children(findings) if c.ValueType == "CODE"]
    assert [_value(c) for c in coded] == [
        ("60046008", "SCT"),
        ("233604007", "SCT"),
        ("36118008", "SCT"),
        ("8186001", "SCT"),
        ("calcified_granuloma", "99RADLOOP"),
        ("interstitial_opacity", "99RADLOOP"),
    ]
    presence = [_value(_children(c, ("121052", "DCM"))[0]) for c in coded]
    assert presence == [
        ("52101004", "SCT"),  # present
        ("373068000", "SCT"),  # undetermined
        ("272519000", "SCT"),  # absent: denied findings are stated too
        ("272519000", "SCT"),
        ("52101004", "SCT"),
        ("52101004", "SCT"),
    ]
    effusion = coded[0]
    assert _value(_children(effusion, ("272741003", "SCT"))[0]) == ("7771000", "SCT")  # left
    site = _children(effusion, ("363698007", "SCT"))[0]
    assert _value(site) == ("281394001", "SCT")  # lower zone of lung
    assert _value(_children(site, ("272741003", "SCT"))[0]) == ("7771000", "SCT")
    pneumonia = coded[1]
    assert _value(_children(pneumonia, ("363698007", "SCT"))[0]) == ("45653009", "SCT")
    assert _value(_children(pneumonia, ("272741003", "SCT"))[0]) == ("24028007", "SCT")
    both = coded[5]  # two zones, one each side: bilateral
    assert _value(_children(both, ("272741003", "SCT"))[0]) == ("51440002", "SCT")
    assert len(_children(both, ("363698007", "SCT"))) == 2
    # A signed report states the reader's presence, not the assistant's probability.
    assert not _children(effusion, ("111012", "DCM"))
    impression = _children(sections[("19005-8", "LN")], ("121073", "DCM"))
    assert impression[0].TextValue.startswith("Small left pleural effusion ≥ 1 cm")
    assert sr.SpecificCharacterSet == "ISO_IR 192"
    schemes = [s.CodingSchemeDesignator for s in sr.CodingSchemeIdentificationSequence]
    assert schemes == ["99RADLOOP"]


def test_draft_sr_is_partial_unverified_by_the_assistant(tmp_path: Path) -> None:
    source = _source(tmp_path)
    sr = pydicom.dcmread(io.BytesIO(dicom_sr(_content(source, ReportStatus.DRAFT), [source])))
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == (
        "PARTIAL",
        "UNVERIFIED",
        "PRELIMINARY",
    )
    assert "VerifyingObserverSequence" not in sr
    context = [c for c in sr.ContentSequence if c.RelationshipType == "HAS OBS CONTEXT"]
    assert _value(context[0]) == ("121007", "DCM")  # Observer Type: Device
    findings = next(c for c in sr.ContentSequence if _name(c) == ("59776-5", "LN"))
    effusion = next(c for c in _children(findings) if c.ValueType == "CODE")
    certainty = _children(effusion, ("111012", "DCM"))[0]  # Certainty of Finding, in %
    assert float(certainty.MeasuredValueSequence[0].NumericValue) == pytest.approx(81.0)
    impressions = next(c for c in sr.ContentSequence if _name(c) == ("19005-8", "LN"))
    assert "unverified until signed" in _children(impressions)[-1].TextValue


def test_amendments_are_new_instances_chained_to_the_one_before(tmp_path: Path) -> None:
    source = _source(tmp_path)
    content = _amended(source)
    chain = signed_report_sr_chain(content, [source])
    assert [d.version for d in chain] == [1, 2, 3]
    study = str(pydicom.dcmread(source).StudyInstanceUID)
    assert chain[0].sop_instance_uid == sr_version_uid(study, 1, SIGNED_AT)
    assert len({d.sop_instance_uid for d in chain}) == 3
    assert {d.series_instance_uid for d in chain} == {sr_series_uid(study)}
    datasets = [pydicom.dcmread(io.BytesIO(d.data)) for d in chain]
    assert "PredecessorDocumentsSequence" not in datasets[0]
    for before, after in itertools.pairwise(datasets):
        ref = after.PredecessorDocumentsSequence[0]
        assert ref.StudyInstanceUID == before.StudyInstanceUID
        series = ref.ReferencedSeriesSequence[0]
        assert series.SeriesInstanceUID == before.SeriesInstanceUID
        assert series.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == before.SOPInstanceUID
    # The report as signed is exactly the SR a first export gave (same UID, same bytes).
    signed_only = _content(source)
    assert signed_report_sr(signed_only, [source]).data == chain[0].data
    # The current export is the last version; it lists every signer.
    last = datasets[-1]
    assert signed_report_sr(content, [source]).sop_instance_uid == chain[-1].sop_instance_uid
    assert [str(o.VerifyingObserverName) for o in last.VerifyingObserverSequence] == [
        "Reader^Ann^^Dr",
        "Second^Bob",
        "Reader^Ann",
    ]
    addenda = [c for c in last.ContentSequence if _name(c) == ("55107-7", "LN")]
    assert [a.ContentSequence[-1].ValueType for a in addenda] == ["CODE", "TEXT"]
    assert "Müller" in _children(addenda[1], ("121071", "DCM"))[0].TextValue
    assert [int(d.InstanceNumber) for d in datasets] == [1, 2, 3]


def test_two_views_report_the_two_view_procedure(tmp_path: Path) -> None:
    frontal = _source(tmp_path)
    lateral = tmp_path / "lateral.dcm"
    ds = pydicom.dcmread(frontal)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.ViewPosition = "LL"
    ds.save_as(lateral)
    sr = pydicom.dcmread(io.BytesIO(dicom_sr(_content(frontal), [frontal, lateral])))
    assert _value(sr.ContentSequence[0]) == ("36643-5", "LN")  # XR Chest 2 Views
    refs = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert len(refs.ReferencedSOPSequence) == 2


@needs_dciodvfy
@pytest.mark.parametrize("kind", ["draft", "signed", "amended"])
def test_sr_passes_dciodvfy_with_no_errors(tmp_path: Path, kind: str) -> None:
    source = _source(tmp_path, drop=("PatientBirthDate", "ReferringPhysicianName"))
    content = {
        "draft": _content(source, ReportStatus.DRAFT),
        "signed": _content(source),
        "amended": _amended(source),
    }[kind]
    for document in signed_report_sr_chain(content, [source]):
        path = tmp_path / f"{kind}-{document.version}.dcm"
        path.write_bytes(document.data)
        messages = dciodvfy_messages(path)
        assert messages.errors == [], messages.errors
        # The only warning expected: radloop's private coding scheme (PS3.16 8.2 allows 99*).
        assert all("99RADLOOP" in w for w in messages.warnings), messages.warnings


@needs_dciodvfy
def test_dciodvfy_errors_reports_a_broken_file(tmp_path: Path) -> None:
    source = _source(tmp_path)
    sr = pydicom.dcmread(io.BytesIO(dicom_sr(_content(source), [source])))
    del sr.CompletionFlag
    sr.VerificationFlag = "MAYBE"
    path = tmp_path / "broken.dcm"
    sr.save_as(path)
    errors = dciodvfy_errors(path)
    assert any("CompletionFlag" in e for e in errors), errors
    assert any("Verification Flag" in e for e in errors), errors
