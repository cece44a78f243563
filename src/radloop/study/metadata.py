"""Study metadata and clinical context from DICOM attributes (PS3.3 C.7)."""

from __future__ import annotations

import datetime
import re
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from radloop.study.types import (
    ClinicalContext,
    ContextItem,
    PatientSex,
    SpacingSource,
    StudyMetadata,
)

__all__ = [
    "clinical_context_from_dataset",
    "parse_age_string",
    "parse_dicom_date",
    "parse_sex",
    "pixel_spacing_from_dataset",
    "study_metadata_from_dataset",
    "synthetic_uid",
]

# Age String (AS) is nnnD, nnnW, nnnM or nnnY, PS3.5 6.2.
_AGE_STRING = re.compile(r"^(\d{3})([DWMY])$")
_DAYS_PER_YEAR = 365.25
_UNIT_IN_YEARS = {"D": 1 / _DAYS_PER_YEAR, "W": 7 / _DAYS_PER_YEAR, "M": 1 / 12, "Y": 1.0}


def parse_age_string(value: object) -> float | None:
    """Years from a DICOM Age String such as ``'045Y'`` or ``'006M'`` (PS3.5 6.2); None if
    the value is missing or malformed rather than guessing."""
    if value is None:
        return None
    match = _AGE_STRING.match(str(value).strip().upper())
    if match is None:
        return None
    return int(match.group(1)) * _UNIT_IN_YEARS[match.group(2)]


def parse_sex(value: object) -> PatientSex | None:
    """Patient's Sex (0010,0040): M, F or O (PS3.3 C.7.1.1); anything else is unknown."""
    text = str(value).strip().upper() if value is not None else ""
    if text == "M":
        return "M"
    if text == "F":
        return "F"
    if text == "O":
        return "O"
    return None


def parse_dicom_date(value: object) -> datetime.date | None:
    """A Date (DA) value, YYYYMMDD (PS3.5 6.2); None when empty or invalid."""
    text = str(value).strip() if value is not None else ""
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return datetime.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def synthetic_uid(*parts: str) -> str:
    """A deterministic UID under pydicom's root (PS3.5 9) for files without one, hashed from
    text such as a path, so reloading the same files gives the same UIDs."""
    return str(generate_uid(entropy_srcs=["radloop", *parts]))


def _text(ds: Dataset, keyword: str) -> str | None:
    value: Any = ds.get(keyword)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def pixel_spacing_from_dataset(
    ds: Dataset,
) -> tuple[tuple[float, float] | None, SpacingSource | None]:
    """(row, column) spacing in mm from Pixel Spacing, else Imager Pixel Spacing.

    Pixel Spacing is calibrated to the patient plane and wins when both are present
    (PS3.3 10.7.1.3); a value that is not two positive numbers counts as absent.
    """
    keyword: SpacingSource
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value: Any = ds.get(keyword)
        if value is None:
            continue
        try:
            row, column = (float(v) for v in value)
        except (TypeError, ValueError):
            continue
        if row > 0 and column > 0:
            return (row, column), keyword
    return None, None


def _age_years(ds: Dataset) -> float | None:
    age = parse_age_string(ds.get("PatientAge"))
    if age is not None:
        return age
    # Fall back on birth and study dates when Patient's Age (0010,1010) is absent.
    birth = parse_dicom_date(ds.get("PatientBirthDate"))
    seen = parse_dicom_date(ds.get("StudyDate"))
    if birth is None or seen is None or seen < birth:
        return None
    return (seen - birth).days / _DAYS_PER_YEAR


_ORDER = "this film's order"


def _indication(ds: Dataset) -> tuple[str | None, str | None]:
    """The indication and where it came from: Reason for the Requested Procedure (0040,1002),
    top level or in the Request Attributes Sequence (0040,0275), else the meaning of its code
    (0040,100A), else the retired Reason for Study (0032,1030)."""
    found = _text(ds, "ReasonForTheRequestedProcedure")
    if found:
        return found, f"{_ORDER}, DICOM (0040,1002) Reason for the Requested Procedure"
    for item in ds.get("RequestAttributesSequence", []):
        found = _text(item, "ReasonForTheRequestedProcedure")
        if found:
            return found, f"{_ORDER}, DICOM (0040,1002) Reason for the Requested Procedure"
    for where in (ds, *ds.get("RequestAttributesSequence", [])):
        for code in where.get("ReasonForRequestedProcedureCodeSequence", []):
            found = _text(code, "CodeMeaning")
            if found:
                return found, f"{_ORDER}, DICOM (0040,100A) Reason for Requested Procedure Code"
    found = _text(ds, "ReasonForStudy")
    return (found, f"{_ORDER}, DICOM (0032,1030) Reason for Study") if found else (None, None)


# History the order carries (PS3.3 C.7.2.2 Patient Study Module, C.4.13): what it says and
# which attribute said it. Both describe the patient at this visit.
_HISTORY = (
    ("AdditionalPatientHistory", "DICOM (0010,21B0) Additional Patient History"),
    ("AdmittingDiagnosesDescription", "DICOM (0008,1080) Admitting Diagnoses Description"),
)


def _history(ds: Dataset) -> tuple[ContextItem, ...]:
    items = []
    for keyword, name in _HISTORY:
        found = _text(ds, keyword)
        if found:
            items.append(ContextItem("history", found, f"{_ORDER}, {name}"))
    return tuple(items)


def study_metadata_from_dataset(ds: Dataset) -> StudyMetadata:
    """Study-level facts from one image's dataset."""
    spacing, _ = pixel_spacing_from_dataset(ds)
    return StudyMetadata(
        patient_age=_age_years(ds),
        patient_sex=parse_sex(ds.get("PatientSex")),
        modality=_text(ds, "Modality"),
        view_position=_text(ds, "ViewPosition"),
        body_part=_text(ds, "BodyPartExamined"),
        manufacturer=_text(ds, "Manufacturer"),
        model=_text(ds, "ManufacturerModelName"),
        institution=_text(ds, "InstitutionName"),
        study_date=parse_dicom_date(ds.get("StudyDate")),
        pixel_spacing=spacing,
    )


def clinical_context_from_dataset(ds: Dataset) -> ClinicalContext:
    """Age, sex, indication and history as a reader would see them on the request, each
    labelled with the attribute it came from."""
    indication, source = _indication(ds)
    return ClinicalContext(
        patient_age_years=_age_years(ds),
        patient_sex=parse_sex(ds.get("PatientSex")),
        indication=indication,
        indication_source=source,
        items=_history(ds),
    )
