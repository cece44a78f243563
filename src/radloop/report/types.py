"""Structured findings and reports: the types every stage of the pipeline passes along."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from radloop.errors import InputError
from radloop.vocabulary import Lobe, Side, VertebralLevel, Zone, finding

__all__ = [
    "Change",
    "Evidence",
    "Finding",
    "Presence",
    "Report",
    "ReportStatus",
    "Severity",
    "Verdict",
]


class Presence(StrEnum):
    """Whether the report asserts a finding, denies it or leaves it open."""

    PRESENT = "present"
    ABSENT = "absent"
    UNCERTAIN = "uncertain"


class Severity(StrEnum):
    """Severity and size words, mildest first."""

    TRACE = "trace"
    MINIMAL = "minimal"
    SMALL = "small"
    MILD = "mild"
    MODERATE = "moderate"
    LARGE = "large"
    SEVERE = "severe"


class Change(StrEnum):
    """Change of a finding relative to a prior study."""

    NEW = "new"
    INCREASED = "increased"
    DECREASED = "decreased"
    STABLE = "stable"
    RESOLVED = "resolved"


class Verdict(StrEnum):
    """The safety layer's verdict on a claim (set by ``radloop.safety``)."""

    SUPPORTED = "supported"
    UNSUPPORTED = "unsupported"  # possible hallucination
    CONTRADICTED = "contradicted"
    UNVERIFIABLE = "unverifiable"  # a valid verifier looked and is undecided
    NOT_CHECKED = "not_checked"  # no evidence valid for this film and finding type


class ReportStatus(StrEnum):
    """Report status, one enum mapped to the DICOM SR flags and FHIR R4 status.

    DICOM PS3.3 C.17.2 (SR Document General Module): a draft is Completion Flag PARTIAL and
    Verification Flag UNVERIFIED, a final or amended report COMPLETE and VERIFIED (written by
    ``radloop.review.export``). FHIR R4 DiagnosticReport.status: :attr:`fhir_status`.
    """

    DRAFT = "draft"
    FINAL = "final"
    AMENDED = "amended"

    @property
    def fhir_status(self) -> str:
        return {"draft": "preliminary", "final": "final", "amended": "amended"}[self.value]


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where a finding came from: a span of report text (character offsets)."""

    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Finding:
    """One structured finding.

    ``size_mm`` is the largest dimension; ``dimensions_mm`` all that were given ("2 x 3 cm").
    ``tip_distance_mm`` is a device tip's distance from ``tip_reference`` (positive above it,
    e.g. an endotracheal tube 40 mm above the carina).
    """

    code: str
    presence: Presence = Presence.PRESENT
    side: Side | None = None
    zones: tuple[Zone, ...] = ()
    lobes: tuple[Lobe, ...] = ()
    vertebral_level: VertebralLevel | None = None
    size_mm: float | None = None
    dimensions_mm: tuple[float, ...] = ()
    severity: Severity | None = None
    change: Change | None = None
    tip_distance_mm: float | None = None
    tip_reference: str | None = None
    evidence: Evidence | None = field(default=None, compare=False)
    probability: float | None = field(default=None, compare=False)
    verdict: Verdict | None = field(default=None, compare=False)
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        finding(self.code)  # raises UnknownFindingError with the expectation
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"expected probability in [0, 1], got {self.probability}")
        if self.size_mm is not None and self.size_mm <= 0:
            raise ValueError(f"expected a positive size in mm, got {self.size_mm}")

    @property
    def is_positive(self) -> bool:
        """Present or uncertain: a claim the safety layer must check."""
        return self.presence is not Presence.ABSENT

    @property
    def name(self) -> str:
        return finding(self.code).name

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict: enums as their values, empty fields left out."""
        out: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value is None or value == ():
                continue
            if isinstance(value, Evidence):
                value = {"text": value.text, "start": value.start, "end": value.end}
            elif isinstance(value, tuple):
                value = [v if isinstance(v, int | float) else str(v) for v in value]
            elif isinstance(value, StrEnum):
                value = value.value
            out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """The inverse of :meth:`to_dict` (for findings stored as JSON)."""
        if not isinstance(data, Mapping) or "code" not in data:
            raise InputError("a finding object with at least a 'code'", repr(data)[:200])
        evidence = data.get("evidence")
        level = data.get("vertebral_level")
        return cls(
            code=str(data["code"]),
            presence=Presence(data.get("presence", Presence.PRESENT)),
            side=Side(data["side"]) if data.get("side") else None,
            zones=tuple(Zone(z) for z in data.get("zones", ())),
            lobes=tuple(Lobe(lobe) for lobe in data.get("lobes", ())),
            vertebral_level=VertebralLevel(level) if level else None,
            size_mm=_number(data.get("size_mm")),
            dimensions_mm=tuple(float(d) for d in data.get("dimensions_mm", ())),
            severity=Severity(data["severity"]) if data.get("severity") else None,
            change=Change(data["change"]) if data.get("change") else None,
            tip_distance_mm=_number(data.get("tip_distance_mm")),
            tip_reference=data.get("tip_reference"),
            evidence=Evidence(**evidence) if isinstance(evidence, Mapping) else None,
            probability=_number(data.get("probability")),
            verdict=Verdict(data["verdict"]) if data.get("verdict") else None,
            source=data.get("source"),
        )

    def with_(self, **changes: object) -> Finding:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


def _number(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Report:
    """A chest X-ray report: its text, its findings and its status."""

    findings: tuple[Finding, ...]
    text: str = ""
    status: ReportStatus = ReportStatus.DRAFT
    study_instance_uid: str | None = None
    source_model: str | None = None

    @property
    def positive(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.is_positive)
