"""Contradictions inside one report: "no effusion" and "small left effusion" in the same text.

Two kinds, after the "internal inconsistency" errors of ReXErr (Rao et al., PSB 2025):

- presence: the same finding (or a broader code: "no fracture" against "rib fracture") both
  asserted and denied where the two statements' locations overlap;
- side: a finding that names one side but places itself in the other lung's zones or lobes.

Locations overlap when either statement has no side, when the sides are equal or one is
bilateral, and, where both name zones or lobes, when those share a zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from radloop.report import Finding, Presence
from radloop.vocabulary import Side, Zone, ancestors

__all__ = ["Contradiction", "ContradictionKind", "claim_zones", "find_contradictions"]


class ContradictionKind(StrEnum):
    """What two statements of a report disagree about."""

    PRESENCE = "presence"
    SIDE = "side"


@dataclass(frozen=True, slots=True)
class Contradiction:
    """Two findings of one report (by index; equal indices for a finding at odds with itself)."""

    kind: ContradictionKind
    first: int
    second: int
    reason: str

    def involves(self, index: int) -> bool:
        return index in (self.first, self.second)


def claim_zones(found: Finding) -> frozenset[Zone]:
    """The zones a finding names directly or through its lobes (usual projection)."""
    zones = set(found.zones)
    for lobe in found.lobes:
        zones.update(lobe.zones)
    return frozenset(zones)


def _sides_overlap(a: Side | None, b: Side | None) -> bool:
    if a is None or b is None or a is b:
        return True
    return Side.BILATERAL in (a, b)


def _locations_overlap(a: Finding, b: Finding) -> bool:
    if not _sides_overlap(a.side, b.side):
        return False
    za, zb = claim_zones(a), claim_zones(b)
    return not (za and zb) or bool(za & zb)


def _denies(negative: Finding, positive: Finding) -> bool:
    """Whether an absent finding denies a positive one: same code or a broader code."""
    return negative.code == positive.code or negative.code in ancestors(positive.code)


def _where(found: Finding) -> str:
    return f"{found.side.value} " if found.side is not None else ""


def find_contradictions(findings: Sequence[Finding]) -> list[Contradiction]:
    """Every contradiction among ``findings``, each with the reason in words."""
    found: list[Contradiction] = []
    for i, finding_i in enumerate(findings):
        if finding_i.side in (Side.RIGHT, Side.LEFT):
            other = {z.side for z in claim_zones(finding_i)} - {finding_i.side}
            if other:
                found.append(
                    Contradiction(
                        ContradictionKind.SIDE,
                        i,
                        i,
                        f"{finding_i.name} is called {finding_i.side.value} but placed in the "
                        f"{other.pop().value} lung",
                    )
                )
        for j in range(i + 1, len(findings)):
            finding_j = findings[j]
            pairs = ((finding_i, finding_j), (finding_j, finding_i))
            for negative, positive in pairs:
                if (
                    negative.presence is Presence.ABSENT
                    and positive.is_positive
                    and _denies(negative, positive)
                    and _locations_overlap(negative, positive)
                ):
                    found.append(
                        Contradiction(
                            ContradictionKind.PRESENCE,
                            i,
                            j,
                            f"the report denies {_where(negative)}{negative.name} and also "
                            f"states {_where(positive)}{positive.name}",
                        )
                    )
                    break
    return found
