"""The study types: what ingestion hands to the rest of radloop.

Pixels are float32 in [0, 1] where higher is brighter on every image, whatever the source
(DICOM MONOCHROME1 is inverted on read, PS3.3 C.7.6.3.1.2), so no later stage needs to know
how a file stored its grey levels.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "ClinicalContext",
    "ContextItem",
    "ContextKind",
    "Image",
    "IngestLimits",
    "PatientSex",
    "Series",
    "SpacingSource",
    "Study",
    "StudyMetadata",
]

PatientSex = Literal["M", "F", "O"]
"""Patient's Sex (0010,0040) enumerated values, PS3.3 C.7.1.1."""

SpacingSource = Literal["PixelSpacing", "ImagerPixelSpacing"]
"""Which attribute gave the spacing. PixelSpacing (0028,0030) is in the patient plane;
ImagerPixelSpacing (0018,1164) is at the detector, so it overstates anatomy by the geometric
magnification (about 10 % on a PA chest radiograph), PS3.3 10.7.1.3."""

MiB = 1024 * 1024


@dataclass(frozen=True)
class IngestLimits:
    """Bounds on what ingestion will read, checked before anything is decoded.

    Passed explicitly to every loader call; there is no module-level default to mutate.
    """

    max_side_px: int = 10_000
    max_file_bytes: int = 512 * MiB
    max_study_bytes: int = 4 * 1024 * MiB
    max_archive_members: int = 10_000
    max_compression_ratio: float = 100.0
    # Decoded pixel bytes as the header declares them (rows x columns x frames x samples x
    # bits allocated / 8), checked before a codec runs: 64 MiB holds a 5,792 px square 16-bit
    # radiograph, past any detector; decoding works in float64, about 4 times more again.
    max_decoded_bytes_per_image: int = 64 * MiB
    max_decoded_bytes_per_study: int = 512 * MiB

    def __post_init__(self) -> None:
        for name in (
            "max_side_px",
            "max_file_bytes",
            "max_study_bytes",
            "max_archive_members",
            "max_decoded_bytes_per_image",
            "max_decoded_bytes_per_study",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f'Argument "{name}" must be a positive int, got {value!r}.')
        if self.max_compression_ratio <= 1:
            raise ValueError(
                'Argument "max_compression_ratio" must be greater than 1, '
                f"got {self.max_compression_ratio!r}."
            )


@dataclass(frozen=True, eq=False)
class Image:
    """One 2-D image, display-ready.

    ``pixels`` is H x W float32 in [0, 1], higher = brighter, after the Modality LUT, the VOI
    LUT or window and the MONOCHROME1 inversion (PS3.3 C.11). The array is read-only.
    ``bits`` is Bits Stored (0028,0101) for DICOM, the sample depth for PNG/JPEG.
    ``pixel_spacing_mm`` is (row spacing, column spacing), i.e. (vertical, horizontal).
    """

    pixels: npt.NDArray[np.float32]
    source: Path
    sop_instance_uid: str
    series_instance_uid: str
    pixel_spacing_mm: tuple[float, float] | None
    spacing_source: SpacingSource | None
    photometric: str
    view_position: str | None
    bits: int

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        rows, columns = self.pixels.shape
        return int(rows), int(columns)


ContextKind = Literal["history", "prior_report", "condition", "lab"]
"""What a context item is: history from the order, a prior report, an active condition, a
laboratory value (the indication has its own field)."""


@dataclass(frozen=True)
class ContextItem:
    """One thing known about the patient before the film is read, with its provenance.

    ``source`` says where it came from (``DICOM (0010,21B0) Additional Patient History``,
    ``FHIR Bundle labs.json``, ``radloop``); ``days_before`` is how long before this film it
    was observed, recorded or signed (0: the same day; negative: after the film, so a reader
    could not have known it); ``date`` is that day where known. ``code`` is a coded name
    (``http://loinc.org|1988-5``) so repeated values of one test are known as such; ``flag``
    is ``high`` or ``low`` against the item's reference range; ``detail`` is a short
    qualifier shown with the provenance (``signed 2024-01-02``). Built by
    :mod:`radloop.context`; rendered into the prompt by :mod:`radloop.assist.prompts`.
    """

    kind: ContextKind
    text: str
    source: str
    days_before: int | None = None
    date: datetime.date | None = None
    code: str | None = None
    flag: str | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "text": self.text, "source": self.source}
        for name in ("days_before", "code", "flag", "detail"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.date is not None:
            out["date"] = self.date.isoformat()
        return out


@dataclass(frozen=True)
class ClinicalContext:
    """What a reader knows about the patient and the request before looking.

    ``indication_source`` names where the indication came from (the DICOM attribute, the
    command line); ``items`` are the rest, each with its provenance: history from the order,
    the prior report, active conditions and laboratory values (:class:`ContextItem`).
    """

    patient_age_years: float | None = None
    patient_sex: PatientSex | None = None
    indication: str | None = None
    indication_source: str | None = None
    items: tuple[ContextItem, ...] = ()


@dataclass(frozen=True)
class StudyMetadata:
    """Acquisition facts used for scope checks and subgroup monitoring."""

    patient_age: float | None = None
    patient_sex: PatientSex | None = None
    modality: str | None = None
    view_position: str | None = None
    body_part: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    institution: str | None = None
    study_date: datetime.date | None = None
    pixel_spacing: tuple[float, float] | None = None


@dataclass(frozen=True)
class Series:
    """Images sharing a Series Instance UID (0020,000E), in instance order."""

    uid: str
    images: tuple[Image, ...]


@dataclass(frozen=True)
class ImageRecord:
    """One read image with what the loader groups and sorts it by (internal)."""

    image: Image
    study_instance_uid: str
    series_number: int | None = None
    instance_number: int | None = None
    metadata: StudyMetadata = field(default_factory=StudyMetadata)
    context: ClinicalContext = field(default_factory=ClinicalContext)


@dataclass(frozen=True)
class Study:
    """Images sharing a Study Instance UID (0020,000D), kept apart by series.

    A prior examination is a separate ``Study``; ``load_studies`` returns them all.
    """

    study_instance_uid: str
    series: tuple[Series, ...]
    metadata: StudyMetadata = field(default_factory=StudyMetadata)
    context: ClinicalContext = field(default_factory=ClinicalContext)

    @property
    def images(self) -> tuple[Image, ...]:
        """Every image of every series, series by series."""
        return tuple(image for series in self.series for image in series.images)
