"""Export: a report as a FHIR R4 DiagnosticReport with Observations, and as DICOM SR.

Status is one enum (:class:`radloop.report.ReportStatus`) mapped to both standards: a draft
is FHIR ``preliminary`` and SR Completion PARTIAL / Verification UNVERIFIED / Preliminary
PRELIMINARY (PS3.3 C.17.2); a signed report is ``final`` with COMPLETE / VERIFIED / FINAL and
its verifying observer; a report with addenda is ``amended``.

FHIR resources are built with fhir.resources' R4B models (R4B is the R4 technical correction;
DiagnosticReport and Observation are unchanged from R4). The SR is a highdicom
Comprehensive SR whose evidence is the study's own DICOM images.
"""

from __future__ import annotations

import base64
import datetime
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radloop.errors import InputError
from radloop.report import Finding, Presence, ReportStatus
from radloop.vocabulary import finding as vocabulary_entry

__all__ = ["ExportContent", "NoDicomSourceError", "dicom_sr", "fhir_diagnostic_report"]

_SNOMED = "http://snomed.info/sct"
_LOINC = "http://loinc.org"
_LOCAL = "urn:radloop:finding"
_PRESENCE = {  # SNOMED CT qualifier values
    Presence.PRESENT: ("52101004", "Present"),
    Presence.ABSENT: ("2667000", "Absent"),
    Presence.UNCERTAIN: ("82334004", "Indeterminate"),
}
ASSISTANT_NOTE = "Drafted by an AI assistant; preliminary and unverified until signed."


class NoDicomSourceError(InputError):
    """DICOM SR needs the study's DICOM images as evidence."""


@dataclass(frozen=True)
class ExportContent:
    """What an export states, gathered by the app from the store."""

    study_id: str
    study_instance_uid: str
    status: ReportStatus
    text: str
    findings: tuple[Finding, ...]
    study_date: datetime.date | None
    issued: datetime.datetime
    signed_by: str | None = None
    addenda: tuple[str, ...] = ()
    institution: str | None = None


def _impression(text: str) -> str:
    marker = text.upper().find("IMPRESSION:")
    return text[marker + len("IMPRESSION:") :].strip() if marker >= 0 else text.strip()


def _full_text(content: ExportContent) -> str:
    parts = [content.text.strip()]
    parts += [f"ADDENDUM:\n{a.strip()}" for a in content.addenda]
    if content.status is ReportStatus.DRAFT:
        parts.append(ASSISTANT_NOTE)
    return "\n\n".join(parts) + "\n"


def _code(found: Finding) -> dict[str, Any]:
    entry = vocabulary_entry(found.code)
    coding = [{"system": _LOCAL, "code": found.code, "display": entry.name}]
    if entry.snomed:
        coding.insert(0, {"system": _SNOMED, "code": entry.snomed, "display": entry.name})
    return {"coding": coding, "text": entry.name}


def _observation(found: Finding, index: int, status: str) -> dict[str, Any]:
    code, display = _PRESENCE[found.presence]
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"finding-{index}",
        "status": status,
        "code": _code(found),
        "valueCodeableConcept": {
            "coding": [{"system": _SNOMED, "code": code, "display": display}],
            "text": display,
        },
    }
    site = " ".join(
        v
        for v in [found.side.value if found.side else "", ", ".join(z.value for z in found.zones)]
        if v
    )
    if site:
        observation["bodySite"] = {"text": site.replace("_", " ")}
    notes = []
    if found.size_mm is not None:
        notes.append(f"size {found.size_mm:g} mm")
    if found.probability is not None and status == "preliminary":
        notes.append(f"assistant probability {found.probability:.2f}")
    if found.verdict is not None and status == "preliminary":
        notes.append(f"verifier verdict: {found.verdict.value}")
    if notes:
        observation["note"] = [{"text": "; ".join(notes)}]
    return observation


def fhir_diagnostic_report(content: ExportContent) -> dict[str, Any]:
    """The report as a validated FHIR DiagnosticReport (JSON dict), Observations contained."""
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport

    status = content.status.fhir_status
    observation_status = "preliminary" if status == "preliminary" else "final"
    if status == "amended":
        observation_status = "amended"
    observations = [_observation(f, i, observation_status) for i, f in enumerate(content.findings)]
    text = _full_text(content)
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": content.study_id,
        "status": status,
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                        "code": "RAD",
                        "display": "Radiology",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {"system": _LOINC, "code": "18748-4", "display": "Diagnostic imaging study"}
            ],
            "text": "Chest radiograph",
        },
        "identifier": [
            {"system": "urn:dicom:uid", "value": f"urn:oid:{content.study_instance_uid}"}
        ],
        "issued": content.issued.astimezone(datetime.UTC).isoformat(),
        "contained": observations,
        "result": [{"reference": f"#{o['id']}"} for o in observations],
        "conclusion": _impression(content.text),
        "presentedForm": [
            {
                "contentType": "text/plain; charset=utf-8",
                "language": "en",
                "data": base64.b64encode(text.encode()).decode("ascii"),
                "title": "Chest radiograph report",
            }
        ],
    }
    if content.study_date is not None:
        report["effectiveDateTime"] = content.study_date.isoformat()
    if content.signed_by:
        report["resultsInterpreter"] = [{"display": content.signed_by}]
    return DiagnosticReport.model_validate(report).model_dump(mode="json", exclude_none=True)


# Type 2 attributes of the Patient and General Study modules (PS3.3 C.7.1.1, C.7.2.1) that the
# SR copies from its evidence: they must be present, and may be empty (PS3.5 7.4.5), yet many
# files leave them out altogether.
_TYPE_2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def _with_type_2(ds: Any) -> Any:
    """The header with every missing Type 2 attribute added as present and empty."""
    for keyword in _TYPE_2:
        if keyword not in ds:
            setattr(ds, keyword, None)
    return ds


def _dicom_evidence(sources: list[Path]) -> list[Any]:
    """Headers of the study's DICOM images, read from files or from members of a kept zip."""
    import pydicom

    evidence = []
    for source in sources:
        if source.is_file():
            data = source.read_bytes()
        else:
            archive = next((p for p in source.parents if p.suffix.lower() == ".zip"), None)
            if archive is None or not archive.is_file():
                continue
            with zipfile.ZipFile(archive) as zf:
                data = zf.read(str(source.relative_to(archive)).replace("\\", "/"))
        try:
            header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        except Exception:  # a PNG or JPEG: not DICOM evidence
            continue
        evidence.append(_with_type_2(header))
    return evidence


def _person_name(name: str) -> str:
    """A display name as a DICOM PN (PS3.5 6.2.1.2): "Ann B Reader" → "Reader^Ann B"."""
    if "^" in name:
        return name[:64]
    parts = name.split()
    if len(parts) < 2:
        return f"{name.strip()}^"[:64]
    return f"{parts[-1]}^{' '.join(parts[:-1])}"[:64]


def dicom_sr(content: ExportContent, sources: list[Path]) -> bytes:
    """The report as a DICOM Comprehensive SR (Part 10 bytes) referencing its images."""
    import highdicom as hd
    from pydicom.filebase import DicomBytesIO

    evidence = _dicom_evidence(sources)
    if not evidence:
        raise NoDicomSourceError(
            "a study with DICOM images (the SR's evidence)",
            "a study that arrived as PNG or JPEG",
            source=content.study_id,
            fix="Export it as FHIR instead.",
        )
    finding_name = hd.sr.CodedConcept("121071", "DCM", "Finding")
    items: list[Any] = [
        hd.sr.TextContentItem(
            name=hd.sr.CodedConcept("121070", "DCM", "Findings"),
            value=_full_text(content)[:10_000],
            relationship_type="CONTAINS",
        )
    ]
    for found in content.findings:
        entry = vocabulary_entry(found.code)
        value = (
            hd.sr.CodedConcept(entry.snomed, "SCT", entry.name)
            if entry.snomed
            else hd.sr.CodedConcept(found.code[:16], "99RADLOOP", entry.name)
        )
        if found.presence is Presence.PRESENT:
            items.append(
                hd.sr.CodeContentItem(name=finding_name, value=value, relationship_type="CONTAINS")
            )
    root = hd.sr.ContainerContentItem(
        name=hd.sr.CodedConcept("18748-4", "LN", "Diagnostic Imaging Report")
    )
    root.ContentSequence = hd.sr.ContentSequence(items, is_root=False)
    signed = content.status is not ReportStatus.DRAFT
    sr = hd.sr.ComprehensiveSR(
        evidence=evidence,
        content=root,
        series_instance_uid=hd.UID(),
        series_number=99,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="radloop",
        is_complete=signed,
        is_final=signed,
        is_verified=signed,
        verifying_observer_name=_person_name(content.signed_by or "unknown") if signed else None,
        verifying_organization=(content.institution or "radloop")[:64] if signed else None,
        institution_name=content.institution,
    )
    buffer = DicomBytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
