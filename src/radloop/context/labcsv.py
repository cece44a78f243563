"""Laboratory values kept beside each film in a CSV, as FHIR: the hannover-dev layout.

Hannover Medical School's COVID-19 image repository (``../shared/data/hannover-dev``) gives,
per film, each test's value and its offset in days from the film (``crp_val``, ``crp_offset``:
-1 is the day before the film), and the days from the film to admission
(``admission_offset``). Values are the lower ends of the source's intervals (CRP to 1 mg/L,
LDH to 5 U/L ...); ``-inf`` is below the detection limit and ``inf`` above the measuring
range. There are no calendar dates: :func:`bundle_for_row` puts each patient's films on a
nominal timeline (admission on :data:`NOMINAL_ADMISSION`, each film at its offset from it,
each test at its offset from the film), so the days between film and test are the source's and
the calendar dates are not real; the prompt gives only the days.

Each test becomes a FHIR R4 Observation (category laboratory, a LOINC code, a UCUM unit and
the collection's reference interval), the film an ImagingStudy (``started``: its nominal date,
which the reader ages the tests against), the patient a Patient, and, because every patient of
the collection tested positive, an active COVID-19 Condition (SNOMED CT 840539006) with no
date. Assumptions where the collection does not say: D-dimer in fibrinogen-equivalent units
(its reference interval, 0–0.5 mg/L, is the FEU one), factor XIII activity by chromogenic
assay (the column is named ``factor_xii``; the collection's README calls it factor XIII, with
a reference interval of 70–140 %), pO2 and pCO2 in mmHg from blood of an unstated site.
"""

from __future__ import annotations

import csv
import datetime
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radloop.context.fhir import LOINC, SNOMED, read_bundle
from radloop.study import ContextItem

__all__ = [
    "LAB_COLUMNS",
    "NOMINAL_ADMISSION",
    "LabColumn",
    "bundle_for_row",
    "has_lab_columns",
    "items_for_row",
    "read_rows",
]

NOMINAL_ADMISSION = datetime.date(2000, 1, 1)
"""Where the nominal timeline puts each patient's admission (no real date is known)."""

UCUM = "http://unitsofmeasure.org"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_DCM = "http://dicom.nema.org/resources/ontology/DCM"


@dataclass(frozen=True)
class LabColumn:
    """One test of the CSV: its column prefix, LOINC code and name, UCUM unit, reference."""

    prefix: str
    loinc: str
    display: str
    unit: str
    ucum: str
    low: float | None = None
    high: float | None = None


LAB_COLUMNS = (
    LabColumn("crp", "1988-5", "C reactive protein [Mass/volume] in Serum or Plasma",
              "mg/L", "mg/L", None, 5.0),
    LabColumn("ldh", "2532-0",
              "Lactate dehydrogenase [Enzymatic activity/volume] in Serum or Plasma",
              "U/L", "U/L", None, 248.0),
    LabColumn("d-dimer", "48065-7", "Fibrin D-dimer FEU [Mass/volume] in Platelet poor plasma",
              "mg/L FEU", "mg/L{FEU}", None, 0.5),
    LabColumn("factor_xii", "27815-0",
              "Coagulation factor XIII activity actual/normal in Platelet poor plasma by "
              "Chromogenic method", "%", "%", 70.0, 140.0),
    LabColumn("neutrophils", "751-8", "Neutrophils [#/volume] in Blood by Automated count",
              "10^3/µL", "10*3/uL", 1.5, 7.7),
    LabColumn("lymphocytes", "731-0", "Lymphocytes [#/volume] in Blood by Automated count",
              "10^3/µL", "10*3/uL", 1.1, 4.0),
    LabColumn("po2", "11556-8", "Oxygen [Partial pressure] in Blood", "mmHg", "mm[Hg]"),
    LabColumn("pco2", "11557-6", "Carbon dioxide [Partial pressure] in Blood", "mmHg", "mm[Hg]"),
)  # fmt: skip
"""The collection's tests (units and reference intervals from its README)."""


def has_lab_columns(header: Iterable[str]) -> bool:
    """Whether a CSV header has this layout's value and offset columns."""
    names = set(header)
    return any({f"{c.prefix}_val", f"{c.prefix}_offset"} <= names for c in LAB_COLUMNS)


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV (``metadata.csv`` inside ``path`` when it is a folder)."""
    csv_path = path / "metadata.csv" if path.is_dir() else path
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def _days(text: str | None) -> int | None:
    value = _float(text)
    return round(value) if value is not None and abs(value) != float("inf") else None


def _urn(kind: str, resource_id: str) -> str:
    """A stable ``urn:uuid:`` for a resource of the Bundle (its ``fullUrl``, and what the
    other resources reference it by)."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'radloop:{kind}/{resource_id}')}"


def _safe_id(text: str) -> str:
    kept = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in text)
    return kept[:64] or "x"


def film_date(row: Mapping[str, str]) -> datetime.date:
    """The film's nominal date: admission on :data:`NOMINAL_ADMISSION`, ``admission_offset``
    days from the film (negative: admitted before the film)."""
    offset = _days(row.get("admission_offset"))
    return NOMINAL_ADMISSION - datetime.timedelta(days=offset or 0)


def _observation(column: LabColumn, row: Mapping[str, str], film: datetime.date,
                 film_id: str, patient: str) -> dict[str, Any] | None:  # fmt: skip
    raw = (row.get(f"{column.prefix}_val") or "").strip()
    offset = _days(row.get(f"{column.prefix}_offset"))
    if not raw or offset is None:
        return None
    value = _float(raw)
    if value is None:
        return None
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": _safe_id(f"{film_id}-{column.prefix}"),
        "status": "final",
        "category": [{"coding": [{"system": _CATEGORY, "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": column.loinc, "display": column.display}]},
        "subject": {"reference": _urn("Patient", patient)},
        "effectiveDateTime": (film + datetime.timedelta(days=offset)).isoformat(),
    }
    if value == float("-inf"):
        obs["valueString"] = "below the detection limit"
    elif value == float("inf"):
        obs["valueString"] = "above the measuring range"
        if column.high is not None:
            obs["interpretation"] = [{"coding": [{"system": _INTERPRETATION, "code": "H"}]}]
    else:
        obs["valueQuantity"] = {"value": value, "unit": column.unit, "system": UCUM,
                                "code": column.ucum}  # fmt: skip
    if column.low is not None or column.high is not None:
        ranged: dict[str, Any] = {}
        for name, bound in (("low", column.low), ("high", column.high)):
            if bound is not None:
                ranged[name] = {"value": bound, "unit": column.unit, "system": UCUM,
                                "code": column.ucum}  # fmt: skip
        obs["referenceRange"] = [ranged]
    return obs


def bundle_for_row(row: Mapping[str, str], *, condition: bool = True) -> dict[str, Any]:
    """A FHIR R4 collection Bundle of one film's row (see the module docstring)."""
    film = film_date(row)
    image = (row.get("image_id") or Path(row.get("image") or "film").stem).strip()
    film_id = _safe_id(image)
    patient = _safe_id(row.get("patient_id") or f"patient-of-{image}")
    sex = {"m": "male", "f": "female"}.get((row.get("sex") or "").strip().lower(), "unknown")
    entries: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": patient,
         "identifier": [{"value": row.get("patient_id") or patient}], "gender": sex},
        {"resourceType": "ImagingStudy", "id": film_id, "status": "available",
         "subject": {"reference": _urn("Patient", patient)}, "started": film.isoformat(),
         "identifier": [{"value": image}],
         "modality": [{"system": _DCM, "code": (row.get("modality") or "CR").strip().upper()}],
         "description": f"film {image}; dates are nominal: only the days between them are "
         "the source's"},
    ]  # fmt: skip
    for column in LAB_COLUMNS:
        obs = _observation(column, row, film, film_id, patient)
        if obs is not None:
            entries.append(obs)
    if condition:
        entries.append({
            "resourceType": "Condition", "id": _safe_id(f"{film_id}-covid19"),
            "clinicalStatus": {"coding": [{"system": _CLINICAL, "code": "active"}]},
            "verificationStatus": {"coding": [{"system": _VERIFICATION, "code": "confirmed"}]},
            "code": {"coding": [{"system": SNOMED, "code": "840539006",
                                 "display": "Disease caused by severe acute respiratory "
                                 "syndrome coronavirus 2 (disorder)"}], "text": "COVID-19"},
            "subject": {"reference": _urn("Patient", patient)},
        })  # fmt: skip
    return {
        "resourceType": "Bundle",
        "id": _safe_id(f"context-{film_id}"),
        "type": "collection",
        "entry": [{"fullUrl": _urn(e["resourceType"], e["id"]), "resource": e} for e in entries],
    }  # fmt: skip


def items_for_row(
    row: Mapping[str, str], *, source: str = "metadata.csv", condition: bool = True
) -> tuple[ContextItem, ...]:
    """The row's context items, made through its FHIR Bundle (:func:`bundle_for_row`) and read
    back as any Bundle is (:func:`radloop.context.fhir.read_bundle`)."""
    return read_bundle(bundle_for_row(row, condition=condition), source=source).items
