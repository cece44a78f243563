"""Export: what a report states, as a FHIR R4 DiagnosticReport with Observations and as DICOM SR.

Status is one enum (:class:`radloop.report.ReportStatus`) mapped to both standards: a draft
is FHIR ``preliminary`` and SR Completion PARTIAL / Verification UNVERIFIED / Preliminary
PRELIMINARY (PS3.3 C.17.2); a signed report is ``final`` with COMPLETE / VERIFIED / FINAL and
its verifying observer; a report with addenda is ``amended``.

FHIR resources are built with fhir.resources' R4B models (R4B is the R4 technical correction;
DiagnosticReport and Observation are unchanged from R4). The SR (:mod:`radloop.review.sr`) is
a highdicom Comprehensive SR following TID 2000 whose evidence is the study's own DICOM
images; :mod:`radloop.review.fhir_out` sends the FHIR resources as a transaction Bundle and
:mod:`radloop.review.hl7_out` writes an HL7 v2 ORU^R01.
"""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from radloop.errors import InputError
from radloop.report import Finding, Presence, ReportStatus
from radloop.vocabulary import finding as vocabulary_entry

__all__ = [
    "ASSISTANT_NOTE",
    "Addendum",
    "ExportContent",
    "NoDicomSourceError",
    "addenda_of",
    "dicom_sr",
    "fhir_diagnostic_report",
    "impression_of",
    "observation_resources",
    "observation_status",
    "report_resource",
    "subject_reference",
]

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
class Addendum:
    """A signed addendum: its text, signer (display name), signature time and findings."""

    text: str
    signed_by: str
    signed_at: datetime.datetime
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class ExportContent:
    """What an export states, gathered by the app from the store.

    ``issued`` is when the current version was made (the draft's time, the signature, or the
    last addendum's); ``signed_at`` is when the report itself was signed. ``addenda`` are the
    addenda's texts; ``amendments`` the same addenda with their signers, times and findings
    (left empty by older callers: the texts are then taken as signed by ``signed_by`` at
    ``issued``). The patient fields and ``accession_number`` name the patient and the order
    to a FHIR server or a RIS (the DICOM SR takes them from the images instead).
    """

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
    signed_at: datetime.datetime | None = None
    amendments: tuple[Addendum, ...] = ()
    patient_id: str | None = None
    patient_name: str | None = None
    patient_birth_date: datetime.date | None = None
    patient_sex: str | None = None
    accession_number: str | None = None

    def with_status(self, status: ReportStatus) -> ExportContent:
        return replace(self, status=status)


def addenda_of(content: ExportContent) -> tuple[Addendum, ...]:
    """The content's addenda with signer and time, oldest first."""
    if content.amendments:
        return content.amendments
    return tuple(
        Addendum(text=a, signed_by=content.signed_by or "", signed_at=content.issued)
        for a in content.addenda
    )


def impression_of(text: str) -> str:
    """The text after IMPRESSION: (up to a later heading), or the whole text without one."""
    marker = text.upper().find("IMPRESSION:")
    if marker < 0:
        return text.strip()
    return text[marker + len("IMPRESSION:") :].strip()


def _full_text(content: ExportContent) -> str:
    parts = [content.text.strip()]
    parts += [f"ADDENDUM:\n{a.text.strip()}" for a in addenda_of(content)]
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


def observation_status(content: ExportContent) -> str:
    """The FHIR Observation status of the report's findings."""
    return {"preliminary": "preliminary", "final": "final", "amended": "amended"}[
        content.status.fhir_status
    ]


def subject_reference(content: ExportContent, system: str | None = None) -> dict[str, Any] | None:
    """The patient as a logical reference by identifier (the DICOM Patient ID), or None."""
    if not content.patient_id:
        return None
    identifier: dict[str, Any] = {"value": content.patient_id}
    if system:
        identifier["system"] = system
    reference: dict[str, Any] = {"identifier": identifier}
    if content.patient_name:
        reference["display"] = content.patient_name.replace("^", " ").strip()
    return reference


def report_resource(content: ExportContent, *, patient_system: str | None = None) -> dict[str, Any]:
    """The DiagnosticReport's own elements (no ``contained`` or ``result``), as a JSON dict."""
    text = _full_text(content)
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": content.study_id,
        "status": content.status.fhir_status,
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
        "presentedForm": [
            {
                "contentType": "text/plain; charset=utf-8",
                "language": "en",
                "data": base64.b64encode(text.encode()).decode("ascii"),
                "title": "Chest radiograph report",
            }
        ],
    }
    conclusion = impression_of(content.text)
    if conclusion:  # FHIR strings may not be empty (a study not drafted yet has no text)
        report["conclusion"] = conclusion
    subject = subject_reference(content, patient_system)
    if subject is not None:
        report["subject"] = subject
    if content.accession_number:
        report["basedOn"] = [
            {
                "type": "ServiceRequest",
                "identifier": {
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                "code": "ACSN",
                                "display": "Accession ID",
                            }
                        ]
                    },
                    "value": content.accession_number,
                },
            }
        ]
    if content.study_date is not None:
        report["effectiveDateTime"] = content.study_date.isoformat()
    if content.signed_by:
        report["resultsInterpreter"] = [{"display": content.signed_by}]
    return report


def observation_resources(content: ExportContent) -> list[dict[str, Any]]:
    """One Observation per finding, present, absent and uncertain alike (JSON dicts)."""
    status = observation_status(content)
    return [_observation(f, i, status) for i, f in enumerate(content.findings)]


def fhir_diagnostic_report(content: ExportContent) -> dict[str, Any]:
    """The report as a validated FHIR DiagnosticReport (JSON dict), Observations contained."""
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport

    observations = observation_resources(content)
    report = report_resource(content)
    report["contained"] = observations
    report["result"] = [{"reference": f"#{o['id']}"} for o in observations]
    return DiagnosticReport.model_validate(report).model_dump(mode="json", exclude_none=True)


def dicom_sr(content: ExportContent, sources: list[Path]) -> bytes:
    """The report as a TID 2000 DICOM Comprehensive SR (Part 10 bytes) referencing its images.

    Kept for callers of the download; :func:`radloop.review.sr.signed_report_sr` gives the
    same document with its UIDs, and :func:`radloop.review.sr.signed_report_sr_chain` every
    version of an amended report."""
    from radloop.review.sr import signed_report_sr

    return signed_report_sr(content, sources).data
