"""Whether a drafting model may speak about a study: its own domain check, where it has one."""

from __future__ import annotations

from collections.abc import Sequence

from radloop.models.competence import DomainDecision
from radloop.study import Image

__all__ = ["abstention"]


def abstention(model: object, images: Sequence[Image]) -> DomainDecision | None:
    """The model's domain decision when it can tell and the study is outside its validated
    domain (it must then abstain); None when it may speak."""
    assess = getattr(model, "assess_domain", None)
    if not callable(assess):
        return None
    decision = assess(images)
    if isinstance(decision, DomainDecision) and not decision.in_domain:
        return decision
    return None
