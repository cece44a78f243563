"""Who a study belongs to, read from its DICOM header at ingest, and how the pages show it.

The worklist and the study header show the patient's name, ID, age or birth date, sex,
the accession number and the study date, so that a reader always sees whose film this is
(the Joint Commission's two identifiers). PNG and JPEG files carry none of it; the pages
then say so instead of leaving a blank that could be mistaken for another patient's row.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radloop.study import Study
from radloop.study.metadata import parse_dicom_date

__all__ = ["PatientIdentity", "display_name", "read_identity"]

_PICTURES = (".png", ".jpg", ".jpeg")
_TAGS = ["PatientID", "PatientName", "PatientBirthDate", "AccessionNumber"]


@dataclass(frozen=True)
class PatientIdentity:
    """Patient ID (0010,0020), Patient's Name (0010,0010) as shown, Patient's Birth Date
    (0010,0030) and Accession Number (0008,0050); None where the header has none."""

    patient_id: str | None = None
    patient_name: str | None = None
    birth_date: datetime.date | None = None
    accession_number: str | None = None


def display_name(value: Any) -> str | None:
    """A Person Name (PN, PS3.5 6.2) as a worklist shows it: ``FAMILY, Given Middle``.

    ``"DOE^JANE^Q"`` → ``"DOE, JANE Q"``; a name without components stands as it is.
    """
    text = str(value or "").split("=")[0].strip()  # the alphabetic group only
    if not text:
        return None
    parts = [p.strip() for p in text.split("^")]
    family, given = parts[0], " ".join(p for p in parts[1:3] if p)
    if family and given:
        return f"{family}, {given}"[:200]
    return (family or given)[:200] or None


def _text(ds: Any, keyword: str, limit: int) -> str | None:
    value = str(getattr(ds, keyword, "") or "").strip()
    return value[:limit] or None


def read_identity(study: Study) -> PatientIdentity:
    """The identity in the header of the study's first DICOM file (empty for pictures)."""
    import pydicom

    for image in study.images:
        source = Path(image.source)
        if not source.is_file() or source.suffix.lower() in _PICTURES:
            continue
        try:
            ds = pydicom.dcmread(source, stop_before_pixels=True, specific_tags=_TAGS)
        except Exception:  # not DICOM after all: nothing to read
            return PatientIdentity()
        return PatientIdentity(
            patient_id=_text(ds, "PatientID", 128),
            patient_name=display_name(getattr(ds, "PatientName", None)),
            birth_date=parse_dicom_date(getattr(ds, "PatientBirthDate", None)),
            accession_number=_text(ds, "AccessionNumber", 64),
        )
    return PatientIdentity()
