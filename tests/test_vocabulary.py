"""The finding vocabulary and the anatomy, specified by example."""

from __future__ import annotations

import pytest

from radloop.errors import UnknownFindingError
from radloop.vocabulary import (
    CHEXPERT_LABELS,
    FINDING_CODES,
    Level,
    Lobe,
    Side,
    Zone,
    ancestors,
    critical_codes,
    finding,
    lookup_term,
    side_of,
)

CHEXPERT_14 = {
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
}


def test_each_chexpert_label_is_in_the_vocabulary_once() -> None:
    assert len(CHEXPERT_LABELS) == 14
    assert set(CHEXPERT_LABELS) == CHEXPERT_14


@pytest.mark.parametrize(
    ("letter", "zone"),
    [
        ("A", Zone.RIGHT_UPPER),
        ("B", Zone.RIGHT_MIDDLE),
        ("C", Zone.RIGHT_LOWER),
        ("D", Zone.LEFT_UPPER),
        ("E", Zone.LEFT_MIDDLE),
        ("F", Zone.LEFT_LOWER),
    ],
)
def test_zones_are_the_brixia_zones(letter: str, zone: Zone) -> None:
    assert zone.brixia == letter
    assert Zone.from_brixia(letter) is zone
    assert Zone.from_brixia(letter.lower()) is zone


def test_a_brixia_letter_outside_a_to_f_is_refused() -> None:
    with pytest.raises(ValueError, match="expected a Brixia zone letter A–F, got 'G'"):
        Zone.from_brixia("G")


def test_a_bilateral_side_has_no_single_zone() -> None:
    assert Zone.at(Side.LEFT, Level.MIDDLE) is Zone.LEFT_MIDDLE
    with pytest.raises(ValueError, match="got bilateral"):
        Zone.at(Side.BILATERAL, Level.UPPER)


def test_lobes_have_their_sides() -> None:
    right = {Lobe.RIGHT_UPPER, Lobe.RIGHT_MIDDLE, Lobe.RIGHT_LOWER}
    assert {lobe for lobe in Lobe if lobe.side is Side.RIGHT} == right
    assert {lobe for lobe in Lobe if lobe.side is Side.LEFT} == set(Lobe) - right
    assert Lobe.LINGULA.side is Side.LEFT


def test_lobes_project_onto_zones_of_their_own_side() -> None:
    for lobe in Lobe:
        assert lobe.zones
        assert {zone.side for zone in lobe.zones} == {lobe.side}


def test_side_of_zones_and_lobes() -> None:
    assert side_of([], []) is None
    assert side_of([Zone.RIGHT_LOWER], [Lobe.RIGHT_MIDDLE]) is Side.RIGHT
    assert side_of([Zone.RIGHT_LOWER], [Lobe.LINGULA]) is Side.BILATERAL
    assert Side.LEFT.merge(Side.RIGHT) is Side.BILATERAL


def test_critical_codes_include_pneumothorax() -> None:
    assert "pneumothorax" in critical_codes()
    assert "pneumoperitoneum" in critical_codes()
    assert "calcified_granuloma" not in critical_codes()


def test_unknown_code_raises_with_the_expectation() -> None:
    with pytest.raises(UnknownFindingError, match="expected a finding code from radloop"):
        finding("pneumothorax_large")


def test_unknown_code_suggests_close_codes() -> None:
    with pytest.raises(UnknownFindingError, match="Close codes: pleural_effusion"):
        finding("pleural_fluid")


@pytest.mark.parametrize(
    ("term", "code"),
    [
        ("Pleural Effusions", "pleural_effusion"),
        ("pnuemothorax", "pneumothorax"),
        ("ETT", "endotracheal_tube"),
        ("hyperinflated", "hyperinflation"),
        ("calcified nodule", "nodule"),
        ("pericardial effusion", "pericardial_effusion"),
    ],
)
def test_terms_and_misspellings_name_their_code(term: str, code: str) -> None:
    entry = lookup_term(term)
    assert entry is not None
    assert entry.code == code


def test_a_term_not_in_the_vocabulary_names_nothing() -> None:
    assert lookup_term("unicorn") is None


def test_each_term_names_one_code() -> None:
    owners: dict[str, set[str]] = {}
    for entry in FINDING_CODES.values():
        for term in entry.terms:
            owners.setdefault(term.lower(), set()).add(entry.code)
    assert {t: c for t, c in owners.items() if len(c) > 1} == {}


def test_parents_are_codes_and_broader() -> None:
    assert ancestors("rib_fracture") == ("fracture",)
    assert ancestors("consolidation") == ("lung_opacity",)
    for entry in FINDING_CODES.values():
        if entry.parent is not None:
            assert entry.parent in FINDING_CODES


def test_devices_are_support_devices() -> None:
    for entry in FINDING_CODES.values():
        if entry.device and entry.code != "support_devices":
            assert "support_devices" in ancestors(entry.code)


def test_sized_findings_grow_and_shrink_devices_and_fractures_do_not() -> None:
    from radloop.lab.synth.findings import FINDING_TYPES
    from radloop.vocabulary import sized_codes

    sized = sized_codes()
    # The lab's findings that a pair can grow or shrink, and compare looks back for.
    assert sized & set(FINDING_TYPES) == {
        "nodule", "mass", "consolidation", "pleural_effusion", "pneumothorax", "cardiomegaly",
        "edema",
    }  # fmt: skip
    assert all(not finding(code).device for code in sized)
    assert not {"rib_fracture", "fracture", "endotracheal_tube"} & sized
