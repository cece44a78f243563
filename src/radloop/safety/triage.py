"""Triage: critical findings make a study urgent, with the reason; a score orders the worklist.

Which findings are critical comes from the vocabulary (``Criticality``), after the ACR
practice parameter for communication of diagnostic imaging findings (2020):

- ``always``: pneumothorax, pneumoperitoneum, pneumomediastinum;
- ``if_large``: a large or severe pleural effusion;
- ``if_malpositioned``: tubes and lines in the wrong place. An endotracheal tube's tip should
  lie 20–70 mm above the carina in an adult with the head neutral (Goodman et al., AJR 1976:
  5 ± 2 cm; tips closer than 2 cm risk right main bronchus intubation); a tip at or below the
  carina is malpositioned. A nasogastric tube's tip must lie below the diaphragm, in the
  stomach; one in the oesophagus or airway is malpositioned (NPSA, "Reducing the harm caused by
  misplaced nasogastric feeding tubes", 2011). A central venous catheter tip in the right
  atrium or beyond, or outside the SVC and cavoatrial junction, is flagged.

A finding the verifier contradicts outright (possible hallucination) still counts: a reviewer
must see an urgent study quickly even when the claim may be wrong, and the flag travels with it.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from radloop.report import Finding, Severity
from radloop.vocabulary import Criticality, finding

__all__ = [
    "ETT_TIP_RANGE_MM",
    "PriorityScore",
    "TriageDecision",
    "critical_reason",
    "order_worklist",
    "priority",
    "triage",
]

ETT_TIP_RANGE_MM = (20.0, 70.0)
LARGE_EFFUSION = (Severity.LARGE, Severity.SEVERE)
# An effusion stated by size alone (no severity word): large from 50 mm of fluid height
# is a pragmatic cut-off (a "large" effusion fills over a third of the hemithorax).
LARGE_SIZE_MM = 50.0
_NG_BAD_REFERENCES = ("esophagus", "oesophagus", "trachea", "bronchus", "airway", "lung", "pharynx")
_NG_GOOD_REFERENCES = ("stomach", "diaphragm", "gastric", "duodenum", "abdomen")
_CVC_BAD_REFERENCES = ("right atrium", "right ventricle", "ventricle", "azygos", "jugular")


def _malposition(found: Finding) -> str | None:
    reference = (found.tip_reference or "").lower()
    distance = found.tip_distance_mm
    if found.code in ("endotracheal_tube", "tracheostomy_tube") and reference == "carina":
        if distance is None:
            return f"{found.name} tip at the carina"
        low, high = ETT_TIP_RANGE_MM
        if distance <= 0:
            return f"{found.name} tip {abs(distance):g} mm below the carina"
        if distance < low:
            return f"{found.name} tip {distance:g} mm above the carina (< {low:g} mm)"
        if distance > high:
            return f"{found.name} tip {distance:g} mm above the carina (> {high:g} mm)"
        return None
    if found.code == "nasogastric_tube" and reference:
        if any(word in reference for word in _NG_BAD_REFERENCES):
            return f"{found.name} tip in the {reference}"
        if "diaphragm" in reference and distance is not None and distance > 0:
            return f"{found.name} tip {distance:g} mm above the diaphragm"
        if not any(word in reference for word in _NG_GOOD_REFERENCES):
            return f"{found.name} tip in the {reference}, not below the diaphragm"
        return None
    if found.code == "central_venous_catheter" and any(
        word in reference for word in _CVC_BAD_REFERENCES
    ):
        return f"{found.name} tip in the {reference}"
    return None


def critical_reason(found: Finding) -> str | None:
    """Why a positive finding is critical, or None when it is not."""
    if not found.is_positive:
        return None
    rule = finding(found.code).critical
    if rule is Criticality.ALWAYS:
        return f"{found.name} (always critical)"
    if rule is Criticality.IF_LARGE:
        if found.severity in LARGE_EFFUSION:
            return f"{found.severity.value} {found.name}"
        if found.size_mm is not None and found.size_mm >= LARGE_SIZE_MM:
            return f"{found.name} of {found.size_mm:g} mm"
        return None
    if rule is Criticality.IF_MALPOSITIONED:
        return _malposition(found)
    return None


@dataclass(frozen=True)
class TriageDecision:
    """Whether a study is urgent and why; ``flagged_claims`` and ``out_of_scope`` count for
    the worklist order."""

    urgent: bool
    reasons: tuple[str, ...]
    flagged_claims: int = 0
    out_of_scope: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "urgent": self.urgent,
            "reasons": list(self.reasons),
            "flagged_claims": self.flagged_claims,
            "out_of_scope": self.out_of_scope,
        }


def triage(
    findings: Sequence[Finding], *, flagged_claims: int = 0, out_of_scope: bool = False
) -> TriageDecision:
    """Urgent when any positive finding is critical; each reason names the finding.

    A finding stated as very unlikely (calibrated probability below 5 %) does not make a study
    urgent by itself; an uncertain one does (ACR: communicate suspected critical findings).
    """
    reasons = []
    for found in findings:
        if found.probability is not None and found.probability < 0.05:
            continue
        reason = critical_reason(found)
        if reason is not None:
            reasons.append(reason)
    return TriageDecision(bool(reasons), tuple(reasons), flagged_claims, out_of_scope)


@dataclass(frozen=True, order=True)
class PriorityScore:
    """Sort key of a worklist, smallest first: urgent, then flagged or out of scope, then
    arrival time (oldest first)."""

    tier: int
    arrival: datetime.datetime


def priority(decision: TriageDecision, arrival: datetime.datetime) -> PriorityScore:
    """Tier 0 urgent, 1 with flagged claims or out of scope, 2 routine; then arrival."""
    if decision.urgent:
        tier = 0
    elif decision.flagged_claims or decision.out_of_scope:
        tier = 1
    else:
        tier = 2
    return PriorityScore(tier, arrival)


def order_worklist(
    entries: Sequence[tuple[str, TriageDecision, datetime.datetime]],
) -> list[str]:
    """Study ids in reading order: urgent first, then flagged, then routine; oldest first."""
    ranked = sorted(entries, key=lambda e: (priority(e[1], e[2]), e[0]))
    return [study_id for study_id, _, _ in ranked]
