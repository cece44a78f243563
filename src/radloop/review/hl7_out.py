"""Results to a RIS that takes only HL7 v2: the report as an ORU^R01 message (v2.5.1, hl7apy).

One message per report version::

    MSH  ORU^R01^ORU_R01, sending application RADLOOP, version 2.5.1
    PID  Patient ID, name, birth date, sex (as the study's DICOM header gave them)
    OBR  OBR-3 filler order number = the accession number; OBR-4 the procedure (LOINC
         36643-5 "XR Chest 2 Views" or 36554-4 "XR Chest Single view"); OBR-7 the study date;
         OBR-22 the result time; OBR-25 result status; OBR-32 the signing radiologist
    OBX  one CWE per finding: OBX-3 the finding (SNOMED CT, RadLex or 99RADLOOP), OBX-5 its
         presence (SNOMED CT Present / Absent / Undetermined), OBX-4 a sub-ID that the
         finding's laterality and site OBX share
    OBX  TX lines of the findings narrative (59776-5), the impression (19005-8) and each
         addendum (55107-7)

Result status (OBR-25, OBX-11): ``P`` for a draft, ``F`` for a signed report, ``C`` for a
report corrected by an addendum. Text is escaped as HL7 v2 requires (``\\F\\ \\S\\ \\T\\
\\R\\ \\E\\``); :func:`unescape` reverses it.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from radloop.report import Finding, Presence, ReportStatus
from radloop.review.export import ASSISTANT_NOTE, ExportContent, addenda_of, impression_of
from radloop.vocabulary import Side
from radloop.vocabulary import finding as vocabulary_entry

__all__ = ["escape", "oru_r01", "parse_oru", "result_status", "unescape"]

VERSION = "2.5.1"
_PRESENCE = {
    Presence.PRESENT: "52101004^Present^SCT",
    Presence.ABSENT: "272519000^Absent^SCT",
    Presence.UNCERTAIN: "373068000^Undetermined^SCT",
}
_LATERALITY = {
    Side.RIGHT: "24028007^Right^SCT",
    Side.LEFT: "7771000^Left^SCT",
    Side.BILATERAL: "51440002^Right and left^SCT",
}
_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))


def escape(text: str) -> str:
    """Text for an HL7 v2 field, with the delimiters escaped (backslash first)."""
    for raw, escaped in _ESCAPES:
        text = text.replace(raw, escaped)
    return text.replace("\r", " ").replace("\n", " ")


def unescape(text: str) -> str:
    """The inverse of :func:`escape` (the other way round: backslash last)."""
    for raw, escaped in reversed(_ESCAPES):
        text = text.replace(escaped, raw)
    return text


def result_status(content: ExportContent) -> str:
    """HL7 table 0123: P (preliminary) for a draft, F (final), C (corrected) when amended."""
    return {ReportStatus.DRAFT: "P", ReportStatus.FINAL: "F", ReportStatus.AMENDED: "C"}[
        content.status
    ]


def _ts(moment: datetime.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y%m%d%H%M%S+0000")


def _coded(found: Finding) -> str:
    entry = vocabulary_entry(found.code)
    if entry.snomed:
        code, system = entry.snomed, "SCT"
    elif entry.radlex:
        code, system = entry.radlex, "RADLEX"
    else:
        code, system = found.code, "99RADLOOP"
    return f"{code}^{escape(entry.name)}^{system}"


def _name(value: str | None) -> str:
    """A name for an XPN/XCN field: DICOM's "Family^Given" is already in HL7 order."""
    if not value:
        return ""
    parts = value.split("^") if "^" in value else value.split()[::-1][:1] + value.split()[:-1]
    return "^".join(escape(p.strip()) for p in parts[:2])


def _interpreter(value: str | None) -> str:
    """OBR-32 (NDL): the name as subcomponents of its first component (CNN: ID, family,
    given, middle, suffix, prefix), "Dr Ann Reader" → "&Reader&Ann&&&Dr"."""
    if not value:
        return ""
    words = value.replace("^", " ").split()
    prefix = ""
    if len(words) > 1 and words[0].rstrip(".").lower() in ("dr", "prof", "mr", "mrs", "ms"):
        prefix = words.pop(0)
    family, given = (words[-1], " ".join(words[:-1])) if words else ("", "")
    return "&".join(["", escape(family), escape(given), "", "", escape(prefix)]).rstrip("&")


def _procedure(views: int | None) -> str:
    if views == 2:
        return "36643-5^XR Chest 2 Views^LN"
    if views == 1:
        return "36554-4^XR Chest Single view^LN"
    return "399208008^Plain chest X-ray^SCT"


def oru_r01(
    content: ExportContent,
    *,
    sending_facility: str | None = None,
    receiving_application: str = "",
    receiving_facility: str = "",
    views: int | None = None,
    control_id: str | None = None,
    now: datetime.datetime | None = None,
) -> str:
    """The report as an HL7 v2.5.1 ORU^R01 message (ER7, segments separated by CR).

    The message is built and validated with hl7apy. ``views`` (the number of images) picks
    the procedure code; ``control_id`` defaults to a random one (MSH-10 must be unique)."""
    from hl7apy.consts import VALIDATION_LEVEL  # type: ignore[import-untyped]
    from hl7apy.core import Message  # type: ignore[import-untyped]

    status = result_status(content)
    moment = now or datetime.datetime.now(datetime.UTC)
    message = Message("ORU_R01", version=VERSION, validation_level=VALIDATION_LEVEL.STRICT)
    message.msh.msh_3 = "RADLOOP"
    message.msh.msh_4 = escape((sending_facility or content.institution or "")[:180])
    if receiving_application:
        message.msh.msh_5 = escape(receiving_application)
    if receiving_facility:
        message.msh.msh_6 = escape(receiving_facility)
    message.msh.msh_7 = _ts(moment)
    message.msh.msh_9 = "ORU^R01^ORU_R01"
    message.msh.msh_10 = (control_id or uuid.uuid4().hex)[:20]
    message.msh.msh_11 = "P"
    message.msh.msh_18 = "UNICODE UTF-8"
    result = message.add_group("ORU_R01_PATIENT_RESULT")
    pid = result.add_group("ORU_R01_PATIENT").pid
    pid.pid_1 = "1"
    pid.pid_3 = escape(content.patient_id or content.study_id)
    name = _name(content.patient_name)
    if name:
        pid.pid_5 = name
    if content.patient_birth_date is not None:
        pid.pid_7 = content.patient_birth_date.strftime("%Y%m%d")
    if content.patient_sex in ("M", "F", "O", "U"):
        pid.pid_8 = content.patient_sex
    order = result.add_group("ORU_R01_ORDER_OBSERVATION")
    obr = order.obr
    obr.obr_1 = "1"
    obr.obr_3 = escape(content.accession_number or content.study_id)
    obr.obr_4 = _procedure(views)
    if content.study_date is not None:
        obr.obr_7 = content.study_date.strftime("%Y%m%d")
    obr.obr_22 = _ts(content.issued)
    obr.obr_25 = status
    interpreter = _interpreter(content.signed_by)
    if interpreter and status != "P":
        obr.obr_32 = interpreter
    rows: list[tuple[str, str, str, str]] = []  # value type, identifier, sub-ID, value
    for index, found in enumerate(content.findings, start=1):
        sub = str(index)
        rows.append(("CWE", _coded(found), sub, _PRESENCE[found.presence]))
        if found.side is not None:
            rows.append(("CWE", "272741003^Laterality^SCT", sub, _LATERALITY[found.side]))
        for zone in found.zones:
            rows.append(("ST", "363698007^Finding site^SCT", sub, escape(zone.label)))
        for lobe in found.lobes:
            rows.append(("ST", "363698007^Finding site^SCT", sub, escape(lobe.label)))
    findings_text, impression = _texts(content.text)
    for line in _lines(findings_text):
        rows.append(("TX", "59776-5^Findings^LN", "", escape(line)))
    notes = [ASSISTANT_NOTE] if content.status is ReportStatus.DRAFT else []
    for line in _lines(impression) + notes:
        rows.append(("TX", "19005-8^Impressions^LN", "", escape(line)))
    for number, addendum in enumerate(addenda_of(content), start=1):
        header = f"Addendum {number}, signed by {addendum.signed_by} at {_ts(addendum.signed_at)}"
        for line in [header, *_lines(addendum.text)]:
            rows.append(("TX", "55107-7^Addendum^LN", f"A{number}", escape(line)))
    for set_id, (value_type, identifier, sub, value) in enumerate(rows, start=1):
        obx = order.add_group("ORU_R01_OBSERVATION").obx
        obx.obx_1 = str(set_id)
        obx.obx_2 = value_type
        obx.obx_3 = identifier
        if sub:
            obx.obx_4 = sub
        obx.obx_5 = value
        obx.obx_11 = status
    message.validate()
    return str(message.to_er7())


def _texts(text: str) -> tuple[str, str]:
    """The findings narrative (between FINDINGS: and IMPRESSION:) and the impression."""
    upper = text.upper()
    impression = impression_of(text)
    start = upper.find("FINDINGS:")
    end = upper.find("IMPRESSION:")
    if start < 0:
        return "", impression
    body = text[start + len("FINDINGS:") : end if end > start else len(text)]
    return body.strip(), impression


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_oru(message: str) -> Any:
    """Parse an ORU^R01 back with hl7apy (strict validation), for tests and for checking."""
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message  # type: ignore[import-untyped]

    parsed = parse_message(
        message.replace("\n", "\r"), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True
    )
    parsed.validate()
    return parsed
