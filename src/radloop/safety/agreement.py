"""Self-consistency: the share of sampled drafts that repeat a claim.

A sampled draft repeats a claim when it states the same finding (the same code, or a broader
or narrower one: "consolidation" and "lung opacity"), with the same presence, at an
overlapping place: the same side (a bilateral statement overlaps either side; an unstated
side overlaps any) and, where both name zones or lobes, at least one zone in common. The
wording does not matter: a claim repeated in other words agrees.
"""

from __future__ import annotations

from collections.abc import Sequence

from radloop.report import Finding
from radloop.safety.contradictions import claim_zones
from radloop.vocabulary import Side, ancestors

__all__ = ["repeats", "sample_agreement"]


def repeats(claim: Finding, other: Finding) -> bool:
    """Whether ``other`` (from a sampled draft) states ``claim`` again."""
    same = other.code == claim.code or other.code in ancestors(claim.code)
    same = same or claim.code in ancestors(other.code)
    if not same or other.is_positive != claim.is_positive:
        return False
    sides = (claim.side, other.side)
    if not (None in sides or claim.side is other.side or Side.BILATERAL in sides):
        return False
    zones, others = claim_zones(claim), claim_zones(other)
    return not (zones and others) or bool(zones & others)


def sample_agreement(claim: Finding, samples: Sequence[Sequence[Finding]]) -> float:
    """The share of ``samples`` (each a sampled draft's findings) that repeat ``claim``."""
    if not samples:
        raise ValueError('Argument "samples" must hold at least one sampled draft.')
    return sum(any(repeats(claim, o) for o in sample) for sample in samples) / len(samples)
