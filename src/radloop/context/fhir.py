"""Laboratory values and active conditions from FHIR R4: a Bundle given with the study, or one
fetched from a FHIR server by patient.

A Bundle is read with fhir.resources' R4B models (R4B is R4's technical correction; Observation,
Condition and ImagingStudy are unchanged). Observations of category ``laboratory`` (or of no
category) become ``lab`` items, Conditions whose clinical status is active (or not given) and
that are neither refuted nor entered in error become ``condition`` items. Each item's age is
counted from the film's date: the study's own (DICOM Study Date), else the ``started`` date of
the Bundle's ImagingStudy for this study. Dates given only to the month or year count as not
given rather than guessed.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from radloop.errors import InputError, MissingExtraError
from radloop.study import ContextItem

__all__ = [
    "LOINC",
    "SHORT_NAMES",
    "BundleContext",
    "ContextFetchError",
    "FhirBundleError",
    "fetch_patient_bundle",
    "read_bundle",
]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"

SHORT_NAMES = {
    "1988-5": "CRP",
    "2532-0": "LDH",
    "48065-7": "D-dimer",
    "48066-5": "D-dimer",
    "27815-0": "Factor XIII",
    "751-8": "Neutrophils",
    "731-0": "Lymphocytes",
    "11556-8": "pO2",
    "2703-7": "pO2",
    "11557-6": "pCO2",
    "2019-8": "pCO2",
    "6690-2": "Leukocytes",
    "26464-8": "Leukocytes",
    "33959-8": "Procalcitonin",
    "718-7": "Haemoglobin",
    "777-3": "Platelets",
    "2160-0": "Creatinine",
    "33762-6": "NT-proBNP",
    "2276-4": "Ferritin",
    "59408-5": "SpO2",
}
"""Short names for common LOINC codes, so a lab line reads ``CRP 48 mg/L``."""

_INACTIVE = {"inactive", "remission", "resolved"}
_NOT_TRUE = {"refuted", "entered-in-error"}
_VOID = {"entered-in-error", "cancelled"}
_FLAGS = {
    "H": "high",
    "HH": "critically high",
    "HU": "very high",
    "L": "low",
    "LL": "critically low",
    "LU": "very low",
    "A": "abnormal",
    "AA": "critically abnormal",
}


class FhirBundleError(InputError):
    """A FHIR Bundle that cannot be read (not JSON, not a Bundle, or invalid FHIR)."""


class ContextFetchError(InputError):
    """The FHIR server could not be asked (unreachable, an error status, not FHIR)."""


@dataclass(frozen=True)
class BundleContext:
    """What a Bundle says: its items, the film's date from its ImagingStudy (if any), the
    identifiers of the patients it names (to check it belongs to the study), and the entries
    skipped because they are not valid FHIR R4."""

    items: tuple[ContextItem, ...]
    film_date: datetime.date | None
    patients: frozenset[str]
    skipped: tuple[str, ...] = ()


def _as_date(value: Any) -> datetime.date | None:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return datetime.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None  # a year or a month only: not exact enough to count days


def _days(film: datetime.date | None, when: datetime.date | None) -> int | None:
    return (film - when).days if film is not None and when is not None else None


def _codings(concept: Any) -> list[Any]:
    return list(getattr(concept, "coding", None) or []) if concept is not None else []


def _code_key(concept: Any) -> str | None:
    for coding in _codings(concept):
        if coding.code:
            return f"{coding.system or ''}|{coding.code}"
    return None


def _name(concept: Any) -> str:
    for coding in _codings(concept):
        if coding.system == LOINC and coding.code in SHORT_NAMES:
            return SHORT_NAMES[coding.code]
    if concept is not None and getattr(concept, "text", None):
        return str(concept.text)
    for coding in _codings(concept):
        if coding.display:
            return str(coding.display)
    for coding in _codings(concept):
        if coding.code:
            return str(coding.code)
    return "unnamed"


def _number(value: Decimal | float) -> str:
    text = format(Decimal(str(value)).normalize(), "f")
    return text


def _value(obs: Any) -> tuple[str | None, float | None]:
    quantity = obs.valueQuantity
    if quantity is not None and quantity.value is not None:
        unit = quantity.unit or quantity.code or ""
        comparator = f"{quantity.comparator} " if quantity.comparator else ""
        return f"{comparator}{_number(quantity.value)} {unit}".rstrip(), float(quantity.value)
    if obs.valueString:
        return str(obs.valueString), None
    if obs.valueCodeableConcept is not None:
        return _name(obs.valueCodeableConcept), None
    if obs.valueBoolean is not None:
        return "yes" if obs.valueBoolean else "no", None
    return None, None


def _flag(obs: Any, number: float | None) -> str | None:
    for concept in obs.interpretation or []:
        for coding in _codings(concept):
            if coding.code in _FLAGS:
                return _FLAGS[coding.code]
    if number is None:
        return None
    for ranged in obs.referenceRange or []:
        low = ranged.low.value if ranged.low is not None else None
        high = ranged.high.value if ranged.high is not None else None
        if high is not None and number > float(high):
            return "high"
        if low is not None and number < float(low):
            return "low"
    return None


def _is_lab(obs: Any) -> bool:
    categories = [c.code for concept in obs.category or [] for c in _codings(concept)]
    return not categories or "laboratory" in categories


def _observation(obs: Any, film: datetime.date | None, source: str) -> ContextItem | None:
    if obs.status in _VOID or not _is_lab(obs):
        return None
    text, number = _value(obs)
    if text is None:
        return None
    when = _as_date(obs.effectiveDateTime) or (
        _as_date(obs.effectivePeriod.start) if obs.effectivePeriod is not None else None
    )
    when = when or _as_date(obs.issued)
    return ContextItem(
        "lab",
        f"{_name(obs.code)} {text}",
        source,
        _days(film, when),
        when,
        _code_key(obs.code),
        _flag(obs, number),
    )


def _condition(cond: Any, film: datetime.date | None, source: str) -> ContextItem | None:
    status = {c.code for c in _codings(cond.clinicalStatus)}
    verified = {c.code for c in _codings(cond.verificationStatus)}
    if status & _INACTIVE or verified & _NOT_TRUE:
        return None
    onset = _as_date(cond.onsetDateTime)
    when = onset or _as_date(cond.recordedDate)
    detail = None
    if when is not None:
        detail = f"{'onset' if onset else 'recorded'} {when.isoformat()}"
    return ContextItem(
        "condition",
        _name(cond.code),
        source,
        _days(film, when),
        when,
        _code_key(cond.code),
        None,
        detail,
    )


def _identifiers(patient: Any) -> set[str]:
    found = {str(patient.id)} if patient.id else set()
    found |= {str(i.value) for i in patient.identifier or [] if i.value}
    return found


def _imaging_date(studies: list[Any], study_uid: str | None) -> datetime.date | None:
    dated = [s for s in studies if _as_date(s.started) is not None]
    for study in dated:
        uids = {str(i.value).removeprefix("urn:oid:") for i in study.identifier or [] if i.value}
        if study_uid is not None and study_uid in uids:
            return _as_date(study.started)
    return _as_date(dated[0].started) if len(dated) == 1 else None


_READ = ("Observation", "Condition", "Patient", "ImagingStudy")


def _parse(data: bytes | str | Mapping[str, Any], source: str) -> tuple[list[Any], list[str]]:
    """The Bundle's resources that radloop reads, each validated as FHIR R4 on its own (one
    invalid resource is skipped and said, not the whole Bundle lost), and what was skipped."""
    try:
        from fhir.resources.R4B import get_fhir_model_class
    except ImportError:
        raise MissingExtraError("fhir.resources", "review", "Reading FHIR Bundles") from None
    try:
        parsed = json.loads(data) if isinstance(data, (bytes, str)) else dict(data)
    except ValueError as error:
        raise FhirBundleError(
            "a FHIR Bundle in JSON", f"not JSON ({error})", source=source
        ) from None
    if not isinstance(parsed, dict) or parsed.get("resourceType") != "Bundle":
        kind = parsed.get("resourceType") if isinstance(parsed, dict) else type(parsed).__name__
        raise FhirBundleError("a FHIR Bundle", f"resourceType {kind!r}", source=source)
    entries = parsed.get("entry")
    entries = [] if entries is None else entries
    if not isinstance(entries, list):
        raise FhirBundleError(
            "a Bundle whose entry is a list", type(entries).__name__, source=source
        )
    resources, skipped = [], []
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if kind not in _READ:
            continue
        try:
            resources.append(get_fhir_model_class(kind).model_validate(resource))
        except Exception as error:  # pydantic's ValidationError: the resource breaks FHIR R4
            why = " ".join(str(error).splitlines()[1:3]).strip()
            skipped.append(f"entry {index} ({kind}) is not valid FHIR R4: {why}")
    return resources, skipped


def read_bundle(
    data: bytes | str | Mapping[str, Any] | Path,
    *,
    film_date: datetime.date | None = None,
    study_uid: str | None = None,
    source: str | None = None,
) -> BundleContext:
    """The lab values and active conditions of a FHIR Bundle, aged against the film.

    ``film_date`` is the film's own date (its DICOM Study Date); without it, the ``started``
    date of the Bundle's ImagingStudy for ``study_uid`` (or its only ImagingStudy) is used.
    ``source`` labels the items (default: ``FHIR Bundle <file name>`` for a path).
    """
    if isinstance(data, Path):
        label = source or f"FHIR Bundle {data.name}"
        raw: bytes | str | Mapping[str, Any] = data.read_bytes()
    else:
        label = source or "FHIR Bundle"
        raw = data
    resources, skipped = _parse(raw, label)
    studies = [r for r in resources if r.get_resource_type() == "ImagingStudy"]
    film = film_date or _imaging_date(studies, study_uid)
    items: list[ContextItem] = []
    patients: set[str] = set()
    for resource in resources:
        kind = resource.get_resource_type()
        made = None
        if kind == "Observation":
            made = _observation(resource, film, label)
        elif kind == "Condition":
            made = _condition(resource, film, label)
        elif kind == "Patient":
            patients |= _identifiers(resource)
        if made is not None:
            items.append(made)
    return BundleContext(tuple(items), film, frozenset(patients), tuple(skipped))


def fetch_patient_bundle(
    base_url: str,
    patient_id: str,
    *,
    identifier_system: str | None = None,
    token: str | None = None,
    auth: tuple[str, str] | None = None,
    timeout_s: float = 10.0,
    max_results: int = 100,
    client: Any = None,
) -> dict[str, Any]:
    """A collection Bundle of the patient's lab Observations and active Conditions from the
    FHIR server at ``base_url`` (RESTful search, FHIR R4 3.1.1).

    The patient is found by identifier (``Patient?identifier=[system|]value``: the DICOM
    Patient ID), then ``Observation?patient=..&category=laboratory`` (newest first) and
    ``Condition?patient=..&clinical-status=active`` are searched; the first page of each
    (``max_results``) is kept. ``token`` is sent as a Bearer token, ``auth`` (user, password)
    as HTTP basic authentication; ``client`` is an ``httpx.Client`` to use instead of a new
    one. Raises
    :class:`ContextFetchError` when the server cannot be asked.
    """
    import httpx

    base = base_url.rstrip("/")
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    own = client is None
    http = httpx.Client(timeout=timeout_s, headers=headers, auth=auth) if own else client
    try:
        search = f"{identifier_system}|{patient_id}" if identifier_system else patient_id
        found = _search(http, f"{base}/Patient", {"identifier": search}, headers)
        patients = [r for r in found if r.get("resourceType") == "Patient" and r.get("id")]
        entries = [{"resource": r} for r in patients[:1]]
        if patients:
            pid = str(patients[0]["id"])
            count = str(max_results)
            for path, params in (
                (
                    "Observation",
                    {"patient": pid, "category": "laboratory", "_sort": "-date", "_count": count},
                ),
                ("Condition", {"patient": pid, "clinical-status": "active", "_count": count}),
            ):
                entries += [
                    {"resource": r} for r in _search(http, f"{base}/{path}", params, headers)
                ]
    finally:
        if own:
            http.close()
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _search(http: Any, url: str, params: dict[str, str], headers: dict[str, str]) -> list[Any]:
    import httpx

    try:
        response = http.get(url, params=params, headers=headers)
    except httpx.HTTPError as error:
        raise ContextFetchError(
            "a FHIR server that answers", f"{type(error).__name__}: {error}", source=url
        ) from None
    if response.status_code != 200:
        raise ContextFetchError(
            "HTTP 200 from the FHIR server", f"HTTP {response.status_code}", source=url
        )
    try:
        body = response.json()
    except ValueError:
        raise ContextFetchError(
            "a FHIR JSON searchset", "a body that is not JSON", source=url
        ) from None
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise ContextFetchError("a FHIR searchset Bundle", "something else", source=url)
    return [
        e["resource"]
        for e in body.get("entry") or []
        if isinstance(e, dict)
        and isinstance(e.get("resource"), dict)
        and (e.get("search") or {}).get("mode", "match") == "match"
    ]
