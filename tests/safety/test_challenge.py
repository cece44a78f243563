"""Error injection: each kind changes exactly one claim of a correct draft, deterministically."""

from __future__ import annotations

import pytest

from radloop.lab.challenge import (
    ErrorKind,
    InjectedError,
    applicable_kinds,
    inject,
    inject_error,
)
from radloop.report import Finding, Presence
from radloop.report.types import Change
from radloop.vocabulary import Lobe, Side, Zone

NODULE = Finding(
    "nodule", side=Side.RIGHT, zones=(Zone.RIGHT_UPPER,), lobes=(Lobe.RIGHT_UPPER,), size_mm=14.0
)
PNEUMOTHORAX = Finding("pneumothorax", side=Side.LEFT, zones=(Zone.LEFT_UPPER, Zone.LEFT_MIDDLE))
HEART = Finding("cardiomegaly")
NEGATIVE = Finding("pleural_effusion", presence=Presence.ABSENT)
DRAFT = (NODULE, PNEUMOTHORAX, HEART, NEGATIVE)


def _only_changed(before: tuple[Finding, ...], after: tuple[Finding, ...], index: int) -> None:
    assert len(before) == len(after)
    assert [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b] == [index]


def test_false_finding_adds_a_type_absent_from_the_truth() -> None:
    positives = DRAFT[:3]
    challenge = inject(positives, ErrorKind.FALSE_FINDING, 3)
    assert challenge is not None
    error = challenge.error
    assert error.kind is ErrorKind.FALSE_FINDING and error.original is None
    assert error.index == len(positives) and challenge.findings[:-1] == positives
    assert error.finding.code not in {"nodule", "pneumothorax", "cardiomegaly"}
    assert error.finding.is_positive and challenge.findings[-1] == error.finding
    if error.finding.side is not None:
        assert all(z.side is error.finding.side for z in error.finding.zones)


def test_false_finding_takes_the_place_of_the_drafts_denial_of_it() -> None:
    challenge = inject(DRAFT, ErrorKind.FALSE_FINDING, 0, pool=("pleural_effusion",))
    assert challenge is not None
    error = challenge.error
    _only_changed(DRAFT, challenge.findings, 3)
    assert error.index == 3 and error.original == NEGATIVE
    assert error.finding.code == "pleural_effusion" and error.finding.is_positive
    assert not challenge.correct(3) and all(challenge.correct(i) for i in range(3))


def test_wrong_side_mirrors_side_zones_and_lobes() -> None:
    challenge = inject((NODULE, HEART), ErrorKind.WRONG_SIDE, 0)
    assert challenge is not None
    changed = challenge.error.finding
    assert challenge.error.index == 0 and challenge.error.original == NODULE
    assert changed.side is Side.LEFT
    assert changed.zones == (Zone.LEFT_UPPER,) and changed.lobes == (Lobe.LEFT_UPPER,)
    _only_changed((NODULE, HEART), challenge.findings, 0)


def test_wrong_location_keeps_the_side_and_leaves_the_true_zones() -> None:
    for seed in range(5):
        challenge = inject((PNEUMOTHORAX,), ErrorKind.WRONG_LOCATION, seed)
        assert challenge is not None
        changed = challenge.error.finding
        assert changed.side is Side.LEFT
        assert changed.zones == (Zone.LEFT_LOWER,)  # the only left zone not claimed


def test_wrong_location_needs_a_free_zone_on_the_side() -> None:
    whole = Finding("pleural_effusion", side=Side.RIGHT, zones=tuple(
        z for z in Zone if z.side is Side.RIGHT))  # fmt: skip
    assert inject((whole,), ErrorKind.WRONG_LOCATION, 0) is None
    assert ErrorKind.WRONG_LOCATION not in applicable_kinds((whole,))


def test_inflated_size_doubles_a_nodule() -> None:
    challenge = inject(DRAFT, ErrorKind.INFLATED_SIZE, 1)
    assert challenge is not None
    assert challenge.error.finding.size_mm == 28.0
    _only_changed(DRAFT, challenge.findings, 0)


def test_false_negation_states_a_present_finding_absent() -> None:
    challenge = inject(DRAFT, ErrorKind.FALSE_NEGATION, 2)
    assert challenge is not None
    index = challenge.error.index
    assert index is not None and index < 3  # never the true negative
    assert challenge.error.finding.presence is Presence.ABSENT
    assert challenge.error.finding.code == DRAFT[index].code
    _only_changed(DRAFT, challenge.findings, index)
    assert not challenge.correct(index) and all(
        challenge.correct(i) for i in range(4) if i != index
    )


def test_omitted_critical_removes_the_critical_finding() -> None:
    challenge = inject(DRAFT, ErrorKind.OMITTED_CRITICAL, 0)
    assert challenge is not None
    assert challenge.error.index is None and challenge.error.finding == PNEUMOTHORAX
    assert challenge.findings == (NODULE, HEART, NEGATIVE)
    assert inject((NODULE, HEART), ErrorKind.OMITTED_CRITICAL, 0) is None


def test_wrong_change_gives_another_direction() -> None:
    draft = (NODULE.with_(change=Change.INCREASED), HEART)
    challenge = inject(draft, ErrorKind.WRONG_CHANGE, 0)
    assert challenge is not None
    assert challenge.error.finding.change is Change.DECREASED
    assert inject(DRAFT, ErrorKind.WRONG_CHANGE, 0) is None


def test_injection_is_deterministic_and_typed() -> None:
    first = inject_error(DRAFT, 11)
    again = inject_error(DRAFT, 11)
    assert first is not None and again is not None
    assert first == again
    assert isinstance(first.error, InjectedError)
    assert first.error.to_dict()["kind"] in {k.value for k in ErrorKind}
    kinds = {c.error.kind for s in range(60) if (c := inject_error(DRAFT, s)) is not None}
    assert kinds == set(applicable_kinds(DRAFT))


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_nothing_to_inject_into_an_empty_draft_but_a_false_finding(kind: ErrorKind) -> None:
    challenge = inject((), kind, 0)
    assert (challenge is not None) is (kind is ErrorKind.FALSE_FINDING)


def test_wrong_change_on_a_resolved_finding_states_it_persisting() -> None:
    gone = Finding("pneumothorax", presence=Presence.ABSENT, change=Change.RESOLVED)
    challenge = inject((gone,), ErrorKind.WRONG_CHANGE, 0)
    assert challenge is not None
    assert challenge.error.finding.presence is Presence.PRESENT
    assert challenge.error.finding.change is Change.STABLE
