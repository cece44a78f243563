"""De-identification on ingest: DICOM PS3.15 Annex E, Basic Application Level
Confidentiality Profile (DCM 113100) with the Retain Patient Characteristics Option
(DCM 113108) on by default, because radloop monitors fairness by age and sex.

Implemented, per PS3.15 E.1 and E.3:

- the actions of Table E.1-1 (``radloop.study.deid_profile``): D, Z, X, K, U, applied at
  every nesting level;
- all private attributes removed (no Retain Safe Private Option);
- overlay (60xx) and curve (50xx) groups removed;
- instance UIDs replaced by a keyed hash (HMAC-SHA-256 under ``salt``), so the same input UID
  always maps to the same output UID and references between files still resolve;
- Patient Identity Removed (0012,0062) = YES, De-identification Method (0012,0063) and its
  Code Sequence (0012,0064), Longitudinal Temporal Information Modified (0028,0303) = REMOVED.

Stricter than the profile: any remaining Person Name or date/time value is emptied and any
remaining non-DICOM UID is replaced. Not implemented: the Clean Pixel Data, Clean Descriptors,
Retain Dates, Retain Device Identity, Retain UIDs and Retain Safe Private options, so an image
whose Burned In Annotation (0028,0301) is YES is refused rather than passed on.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import tempfile
from pathlib import Path

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

from radloop.errors import EmptyFileError, InputError, UnsupportedFileTypeError
from radloop.study.deid_profile import BASIC_PROFILE, RETAIN_PATIENT_CHARACTERISTICS, Action
from radloop.study.dicom import is_dicom, parse_dicom

__all__ = ["deidentify", "deidentify_dataset"]

_DICOM_ROOT = "1.2.840.10008."  # well-known UIDs (classes, syntaxes, coding schemes), PS3.6 A
_KEPT_UID_KEYWORDS = ("TransferSyntaxUID", "ImplementationClassUID")
_DATE_TIME_VRS = ("DA", "DT", "TM")
_DUMMIES = {
    "PN": "ANONYMOUS",
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "IS": "0",
    "DS": "0",
    "AS": "000Y",
}
_METHOD = "radloop PS3.15 E.1 Basic Profile"
_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
_RETAIN_CODE = ("113108", "Retain Patient Characteristics Option")


def _keyed_uid(uid: str, salt: str) -> str:
    """A 2.25 UID (PS3.5 B.2) from the first 128 bits of HMAC-SHA-256(salt, uid)."""
    digest = hmac.new(salt.encode(), uid.encode(), hashlib.sha256).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def _replace_uid(value: str, keyword: str, salt: str) -> str:
    if not value or value.startswith(_DICOM_ROOT) or keyword.endswith("ClassUID"):
        return value
    if keyword in _KEPT_UID_KEYWORDS:
        return value
    return _keyed_uid(value, salt)


def _replace_uids(elem: DataElement, salt: str) -> None:
    if elem.VM > 1:
        elem.value = [_replace_uid(str(v), elem.keyword, salt) for v in elem.value]
    elif elem.value:
        elem.value = _replace_uid(str(elem.value), elem.keyword, salt)


def _dummy(elem: DataElement, salt: str) -> None:
    if elem.VR == "SQ":
        elem.value = Sequence()
    elif elem.VR == "UI":
        _replace_uids(elem, salt)
    elif elem.VR in _DUMMIES:
        elem.value = _DUMMIES[elem.VR]
    elif elem.VR in ("LO", "SH", "LT", "ST", "UT", "UC", "CS"):
        elem.value = "ANONYMIZED"
    else:
        elem.value = None


def _is_overlay_or_curve(group: int) -> bool:
    # Repeating groups 50xx (curves, retired) and 60xx (overlays), even groups only (PS3.5 7.6).
    return group % 2 == 0 and (0x5000 <= group <= 0x501E or 0x6000 <= group <= 0x601E)


def _clean(ds: Dataset, salt: str, keep: frozenset[str]) -> None:
    for elem in list(ds):
        tag = elem.tag
        if tag.is_private or _is_overlay_or_curve(tag.group):
            del ds[tag]
            continue
        action: Action | None = "K" if elem.keyword in keep else BASIC_PROFILE.get(elem.keyword)
        if action == "X":
            del ds[tag]
        elif action == "Z":
            elem.value = Sequence() if elem.VR == "SQ" else None
        elif action == "D":
            _dummy(elem, salt)
        elif elem.VR == "SQ":  # K, U or unlisted: keep the sequence, clean inside it
            for item in elem.value:
                _clean(item, salt, keep)
        elif elem.VR == "UI":  # U, and, stricter than the profile, every other instance UID
            _replace_uids(elem, salt)
        elif action is None and (elem.VR == "PN" or elem.VR in _DATE_TIME_VRS):
            elem.value = None  # stricter than the profile: no names or dates survive


def _code_item(code: tuple[str, str]) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodeMeaning = code
    item.CodingSchemeDesignator = "DCM"
    return item


def deidentify_dataset(
    ds: Dataset, *, salt: str, retain_patient_characteristics: bool = True
) -> Dataset:
    """De-identify ``ds`` in place (see the module docstring) and return it."""
    if not salt:
        raise ValueError('Argument "salt" must be a non-empty string; it keys the UID hash.')
    burned_in = str(ds.get("BurnedInAnnotation", "")).strip().upper()
    if burned_in == "YES":
        raise InputError(
            "Burned In Annotation (0028,0301) NO, as the Clean Pixel Data Option is not "
            "implemented",
            "YES",
            fix="Remove the burned-in text with a pixel-cleaning tool first.",
        )
    keep = RETAIN_PATIENT_CHARACTERISTICS if retain_patient_characteristics else frozenset()
    _clean(ds, salt, keep)
    ds.PatientIdentityRemoved = "YES"
    codes = [_PROFILE_CODE, _RETAIN_CODE] if retain_patient_characteristics else [_PROFILE_CODE]
    ds.DeidentificationMethod = (
        f"{_METHOD}; Retain Patient Chars" if retain_patient_characteristics else _METHOD
    )
    ds.DeidentificationMethodCodeSequence = Sequence([_code_item(c) for c in codes])
    ds.LongitudinalTemporalInformationModified = "REMOVED"
    old_meta = getattr(ds, "file_meta", FileMetaDataset())
    meta = FileMetaDataset()
    # Only what PS3.10 7.1 requires; source AE titles and private meta go.
    meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", old_meta.get("MediaStorageSOPClassUID"))
    meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID")
    meta.TransferSyntaxUID = old_meta.TransferSyntaxUID
    ds.file_meta = meta
    return ds


def deidentify(
    src: Path,
    dst: Path,
    *,
    salt: str,
    retain_patient_characteristics: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write a de-identified copy of the DICOM file ``src`` to ``dst`` and return ``dst``.

    ``src`` is only read. The copy is written to a temporary file beside ``dst`` and renamed
    into place, so ``dst`` is either complete or absent. Pixel data is copied unchanged.
    """
    src, dst = Path(src), Path(dst)
    if dst.resolve() == src.resolve() or (dst.exists() and dst.samefile(src)):
        raise InputError(
            "a destination different from the source",
            f"{dst} for both",
            source=src,
            fix="De-identification never modifies the original; choose another path.",
        )
    if dst.exists() and not overwrite:
        raise FileExistsError(
            f"{dst}: expected a new path, got an existing file. Pass overwrite=True to replace it."
        )
    data = src.read_bytes()
    if not data:
        raise EmptyFileError("a DICOM file", "an empty file (0 bytes)", source=src)
    if not is_dicom(data):
        raise UnsupportedFileTypeError(
            "a DICOM file: a 128-byte preamble then 'DICM' (PS3.10 7.1)",
            "no 'DICM' prefix",
            source=src,
        )
    ds = deidentify_dataset(
        parse_dicom(data, src),
        salt=salt,
        retain_patient_characteristics=retain_patient_characteristics,
    )
    handle, temporary = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(handle)
    try:
        ds.save_as(temporary, enforce_file_format=True)
        os.replace(temporary, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return dst
