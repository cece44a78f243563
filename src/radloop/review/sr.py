"""The report as a DICOM Comprehensive SR that follows TID 2000 "Basic Diagnostic Imaging Report".

One SR per version of a report: the signed report is version 1 and each addendum makes the
next version, a new SR instance in the same series whose Predecessor Documents Sequence
(0040,A360) names the version before, so a PACS holds the chain. The UIDs are derived from
the study and the signature times, so an SR sent twice is the same instance and the
predecessor's UID can be named without having stored it. A draft (not signed) gets a fresh
instance UID each time and is Completion PARTIAL, UNVERIFIED and PRELIMINARY.

The content tree is built by :mod:`radloop.review.sr_content` (its docstring draws it).

``dciodvfy_errors`` (from :mod:`radloop.review.dciodvfy`, re-exported here) runs dicom3tools'
``dciodvfy`` on a file and returns its "Error" lines (the tests and ``radloop bench pacs``
use it).
"""

from __future__ import annotations

import datetime
import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radloop.report import ReportStatus
from radloop.review.dciodvfy import (
    DciodvfyMessages,
    DciodvfyMissingError,
    dciodvfy_errors,
    dciodvfy_messages,
    dciodvfy_path,
)
from radloop.review.export import Addendum, ExportContent, NoDicomSourceError, addenda_of
from radloop.review.sr_content import LOCAL_SCHEME, content_tree, person_name

__all__ = [
    "DciodvfyMessages",
    "DciodvfyMissingError",
    "SrDocument",
    "dciodvfy_errors",
    "dciodvfy_messages",
    "dciodvfy_path",
    "signed_report_sr",
    "signed_report_sr_chain",
    "sr_series_uid",
    "sr_version_uid",
    "study_export",
    "study_sr",
]

_SR_SERIES_NUMBER = 990


@dataclass(frozen=True)
class SrDocument:
    """One SR instance: its bytes and the UIDs a sender needs (STOW-RS, C-STORE, audit)."""

    data: bytes
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    version: int  # 1 = the signed report, 1 + n = after the n-th addendum; 0 = a draft
    predecessor_uid: str | None = None


# --- UIDs ------------------------------------------------------------------------------------


def _uid(*parts: object) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["radloop-sr", *(str(p) for p in parts)]))


def sr_series_uid(study_instance_uid: str) -> str:
    """The one series that holds a study's radloop SR documents (the same every time)."""
    return _uid("series", study_instance_uid)


def sr_version_uid(study_instance_uid: str, version: int, signed_at: datetime.datetime) -> str:
    """The SOP Instance UID of a signed version (1: the report, 1 + n: its n-th addendum).

    Derived from the study, the version and its signature time: the same inputs give the same
    UID, so a resend is the same instance and an amendment can name its predecessor.
    """
    return _uid("version", study_instance_uid, version, _utc(signed_at).isoformat())


def _utc(moment: datetime.datetime) -> datetime.datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


# --- evidence --------------------------------------------------------------------------------

_DA = re.compile(r"\d{8}")
_TM = re.compile(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?")
_AS = re.compile(r"\d{3}[DWMY]")
_UI = re.compile(r"[0-9]+(\.[0-9]+)*")


def _valid_date(value: object) -> str:
    text = str(value or "").strip()
    if not _DA.fullmatch(text):
        return ""
    try:
        datetime.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return ""
    return text


def _valid_time(value: object) -> str:
    text = str(value or "").strip()
    return text if _TM.fullmatch(text) and int(text[:2]) < 24 else ""


def _valid_uid(value: object) -> str | None:
    text = str(value or "").strip()
    return text if text and len(text) <= 64 and _UI.fullmatch(text) else None


def _short(value: object, limit: int) -> str:
    return str(value or "").replace("\\", "/").strip()[:limit]


def _person(value: object) -> str:
    """A PN value as it came, less what a PN cannot hold (backslashes, over-long groups)."""
    text = str(value or "").replace("\\", " ").strip()
    return "=".join(group[:64] for group in text.split("=")[:3])


def _evidence_header(ds: Any) -> Any | None:
    """A clean header for one evidence image: the UIDs it is referenced by, and the Patient and
    General Study attributes the SR copies from the first image, each valid or present and
    empty (Type 2, PS3.3 C.7.1.1 and C.7.2.1). A value a source got wrong (a birth date
    "1980", a sex "Male") is left empty rather than copied into an SR that fails validation.
    None when the image cannot be referenced (no SOP Class, SOP Instance or Series UID)."""
    from pydicom.dataset import Dataset

    uids = {
        k: _valid_uid(ds.get(k))
        for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID", "SOPInstanceUID")
    }
    if any(v is None for v in uids.values()):
        return None
    header = Dataset()
    for keyword, value in uids.items():
        setattr(header, keyword, value)
    header.PatientName = _person(ds.get("PatientName"))
    header.PatientID = _short(ds.get("PatientID"), 64)
    header.PatientBirthDate = _valid_date(ds.get("PatientBirthDate"))
    sex = str(ds.get("PatientSex") or "").strip().upper()
    header.PatientSex = sex if sex in ("M", "F", "O") else ""
    header.StudyDate = _valid_date(ds.get("StudyDate"))
    header.StudyTime = _valid_time(ds.get("StudyTime")) if header.StudyDate else ""
    header.ReferringPhysicianName = _person(ds.get("ReferringPhysicianName"))
    header.StudyID = _short(ds.get("StudyID"), 16)
    header.AccessionNumber = _short(ds.get("AccessionNumber"), 16)
    if ds.get("StudyDescription"):
        header.StudyDescription = _short(ds.get("StudyDescription"), 64)
    age = str(ds.get("PatientAge") or "").strip()
    if _AS.fullmatch(age):
        header.PatientAge = age
    view = str(ds.get("ViewPosition") or "").strip().upper()
    if view:
        header.ViewPosition = view[:16]
    return header


def _read_sources(sources: Sequence[Path]) -> list[Any]:
    """Clean headers of the study's DICOM images, from files or members of a kept zip."""
    import pydicom

    evidence: list[Any] = []
    seen: set[str] = set()
    for source in sources:
        data = _source_bytes(Path(source))
        if data is None:
            continue
        try:
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        except Exception:  # a PNG or JPEG: not DICOM evidence
            continue
        header = _evidence_header(ds)
        if header is not None and header.SOPInstanceUID not in seen:
            seen.add(header.SOPInstanceUID)
            evidence.append(header)
    return evidence


def _source_bytes(source: Path) -> bytes | None:
    if source.is_file():
        return source.read_bytes()
    archive = next((p for p in source.parents if p.suffix.lower() == ".zip"), None)
    if archive is None or not archive.is_file():
        return None
    member = str(source.relative_to(archive)).replace("\\", "/")
    try:
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    except (KeyError, zipfile.BadZipFile):
        return None


# --- the SR document -------------------------------------------------------------------------


def _dicom_datetime(moment: datetime.datetime) -> str:
    return _utc(moment).strftime("%Y%m%d%H%M%S.%f+0000")


def _verifying_observers(
    content: ExportContent, addenda: Sequence[Addendum], signed_at: datetime.datetime
) -> list[Any]:
    from pydicom.dataset import Dataset

    signers = [(content.signed_by or "Unknown", signed_at)]
    signers += [(a.signed_by or "Unknown", a.signed_at) for a in addenda]
    observers = []
    for name, at in signers:
        item = Dataset()
        item.VerifyingObserverName = person_name(name)
        item.VerifyingObserverIdentificationCodeSequence = []
        item.VerifyingOrganization = (content.institution or "")[:64]
        item.VerificationDateTime = _dicom_datetime(at)
        observers.append(item)
    return observers


def _request(header: Any) -> Any | None:
    """The Referenced Request Sequence item naming the order (its accession number)."""
    from pydicom.dataset import Dataset

    if not header.AccessionNumber:
        return None
    item = Dataset()
    item.StudyInstanceUID = header.StudyInstanceUID
    item.ReferencedStudySequence = []
    item.AccessionNumber = header.AccessionNumber
    item.PlacerOrderNumberImagingServiceRequest = ""
    item.FillerOrderNumberImagingServiceRequest = ""
    item.RequestedProcedureID = ""
    item.RequestedProcedureDescription = str(header.get("StudyDescription", ""))[:64]
    item.RequestedProcedureCodeSequence = []
    return item


def _build(
    content: ExportContent,
    evidence: Sequence[Any],
    *,
    addenda: Sequence[Addendum],
    version: int,
    sop_instance_uid: str,
    moment: datetime.datetime,
    predecessor_uid: str | None,
    first_signed: datetime.datetime | None,
) -> SrDocument:
    import highdicom as hd
    from pydicom.dataset import Dataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.uid import ComprehensiveSRStorage
    from pydicom.valuerep import DA, TM

    from radloop import __version__

    signed = content.status is not ReportStatus.DRAFT
    study_uid = evidence[0].StudyInstanceUID
    series_uid = sr_series_uid(study_uid)
    local = _utc(moment)
    series_start = _utc(first_signed or moment)
    previous = None
    if predecessor_uid is not None:
        prior = Dataset()
        prior.SOPClassUID = ComprehensiveSRStorage
        prior.SOPInstanceUID = predecessor_uid
        prior.StudyInstanceUID = study_uid
        prior.SeriesInstanceUID = series_uid
        previous = [prior]
    request = _request(evidence[0])
    sr = hd.sr.ComprehensiveSR(
        evidence=list(evidence),
        content=content_tree(content, addenda, evidence),
        series_instance_uid=series_uid,
        series_number=_SR_SERIES_NUMBER,
        sop_instance_uid=sop_instance_uid,
        instance_number=max(version, 1),
        manufacturer="radloop",
        is_complete=signed,
        is_final=signed,
        is_verified=signed,
        institution_name=(content.institution or None) and content.institution[:64],
        verifying_observer_name=person_name(content.signed_by or "Unknown") if signed else None,
        verifying_organization=(content.institution or "")[:64] if signed else None,
        requested_procedures=[request] if request is not None else None,
        previous_versions=previous,
        specific_character_set="ISO_IR 192",
        content_date=local.date(),
        content_time=local.time(),
        series_date=series_start.date(),
        series_time=series_start.time(),
        series_description="radloop report" if signed else "radloop draft report (unverified)",
        manufacturer_model_name="radloop",
        software_versions=__version__,
    )
    if signed:
        sr.VerifyingObserverSequence = _verifying_observers(
            content, addenda, first_signed or moment
        )
    sr.InstanceCreationDate = DA(local.strftime("%Y%m%d"))
    sr.InstanceCreationTime = TM(local.strftime("%H%M%S"))
    for equipment in sr.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in equipment:
            equipment.ContributionDateTime = _dicom_datetime(local)
    if LOCAL_SCHEME in _schemes(sr):
        scheme = Dataset()
        scheme.CodingSchemeDesignator = LOCAL_SCHEME
        scheme.CodingSchemeName = "radloop chest X-ray finding vocabulary"
        scheme.CodingSchemeResponsibleOrganization = "radloop"
        sr.CodingSchemeIdentificationSequence = [scheme]
    buffer = DicomBytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    return SrDocument(
        data=buffer.getvalue(),
        study_instance_uid=str(study_uid),
        series_instance_uid=str(series_uid),
        sop_instance_uid=str(sop_instance_uid),
        sop_class_uid=str(sr.SOPClassUID),
        version=version if signed else 0,
        predecessor_uid=predecessor_uid,
    )


def _schemes(ds: Any) -> set[str]:
    found: set[str] = set()
    for element in ds.iterall():
        if element.keyword == "CodingSchemeDesignator":
            found.add(str(element.value))
    return found


def _evidence(content: ExportContent, sources: Sequence[Path]) -> list[Any]:
    evidence = _read_sources(sources)
    own = [e for e in evidence if e.StudyInstanceUID == content.study_instance_uid]
    evidence = own or evidence
    if not evidence:
        raise NoDicomSourceError(
            "a study with DICOM images (the SR's evidence)",
            "a study that arrived as PNG or JPEG",
            source=content.study_id,
            fix="Export it as FHIR instead.",
        )
    return evidence


def _signature_times(content: ExportContent, addenda: Sequence[Addendum]) -> datetime.datetime:
    """When the report itself was signed (the first version)."""
    if content.signed_at is not None:
        return content.signed_at
    return content.issued if not addenda else min(content.issued, addenda[0].signed_at)


def signed_report_sr_chain(content: ExportContent, sources: Sequence[Path]) -> list[SrDocument]:
    """Every version of a signed report as SR, oldest first: the report, then one more per
    addendum, each naming the one before as its predecessor. A draft gives one document."""
    evidence = _evidence(content, sources)
    if content.status is ReportStatus.DRAFT:
        from pydicom.uid import generate_uid

        return [
            _build(
                content,
                evidence,
                addenda=(),
                version=0,
                sop_instance_uid=str(generate_uid()),
                moment=content.issued,
                predecessor_uid=None,
                first_signed=None,
            )
        ]
    addenda = addenda_of(content)
    first = _signature_times(content, addenda)
    study_uid = str(evidence[0].StudyInstanceUID)
    documents: list[SrDocument] = []
    predecessor: str | None = None
    for count in range(len(addenda) + 1):
        version = count + 1
        moment = first if count == 0 else addenda[count - 1].signed_at
        uid = sr_version_uid(study_uid, version, moment)
        documents.append(
            _build(
                content.with_status(ReportStatus.FINAL if count == 0 else ReportStatus.AMENDED),
                evidence,
                addenda=addenda[:count],
                version=version,
                sop_instance_uid=uid,
                moment=moment,
                predecessor_uid=predecessor,
                first_signed=first,
            )
        )
        predecessor = uid
    return documents


def signed_report_sr(content: ExportContent, sources: Sequence[Path]) -> SrDocument:
    """The report as it stands now as a TID 2000 Comprehensive SR: the signed report with all
    its addenda (referencing the SR of the version before it), or the draft."""
    return signed_report_sr_chain(content, sources)[-1]


def study_export(store: Any, study_id: str) -> tuple[ExportContent, list[Path]]:
    """What a study's export states now and the paths of its kept originals (the evidence)."""
    from radloop.review.db import StudyRow
    from radloop.review.ingest import load_stored_study
    from radloop.review.queries import export_content

    with store.sessions() as session:
        content = export_content(session, study_id)
        row = session.get(StudyRow, study_id)
        if row is None:
            raise KeyError(study_id)
        sources = [image.source for image in load_stored_study(store, row).images]
    return content, [Path(s) for s in sources]


def study_sr(store: Any, study_id: str, *, all_versions: bool = False) -> list[SrDocument]:
    """A stored study's SR: the current version, or with ``all_versions`` every signed version
    oldest first (what a PACS that has none of them yet should get, in that order)."""
    content, sources = study_export(store, study_id)
    chain = signed_report_sr_chain(content, sources)
    return chain if all_versions else chain[-1:]
