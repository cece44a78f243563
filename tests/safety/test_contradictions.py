"""Contradictions inside one report."""

from __future__ import annotations

from radloop.report import Finding, Presence, parse
from radloop.safety import ContradictionKind, find_contradictions
from radloop.vocabulary import Lobe, Side


def test_no_effusion_and_small_left_effusion_contradict_each_other() -> None:
    found = find_contradictions(parse("No pleural effusion. Small left pleural effusion."))
    assert [c.kind for c in found] == [ContradictionKind.PRESENCE]
    assert "denies pleural effusion" in found[0].reason


def test_denial_on_one_side_does_not_contradict_the_other_side() -> None:
    findings = [
        Finding("pleural_effusion", presence=Presence.ABSENT, side=Side.RIGHT),
        Finding("pleural_effusion", side=Side.LEFT),
    ]
    assert find_contradictions(findings) == []


def test_denying_a_broader_code_contradicts_a_narrower_claim() -> None:
    findings = [Finding("fracture", presence=Presence.ABSENT), Finding("rib_fracture")]
    assert len(find_contradictions(findings)) == 1


def test_side_that_disagrees_with_the_lobe_is_a_side_contradiction() -> None:
    found = find_contradictions([Finding("atelectasis", side=Side.LEFT, lobes=(Lobe.RIGHT_LOWER,))])
    assert [c.kind for c in found] == [ContradictionKind.SIDE]
    assert found[0].first == found[0].second == 0
