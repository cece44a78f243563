"""Places and stock phrases as a radiologist writes them: a whole lung is "throughout the
left lung", both lungs "throughout both lungs", one level on both sides "bilateral ... in the
lower zones"; findings the film is consistent with share one "Findings consistent with", and
the impression states them plainly. Every sentence reads back to the same finding."""

from __future__ import annotations

import pytest

from radloop.report import Finding, Presence, Severity, parse, write
from radloop.report.writer import describe
from radloop.safety.certainty import write_with_certainty
from radloop.vocabulary import Side, Zone, side_of

Z = Zone
LEFT = (Z.LEFT_UPPER, Z.LEFT_MIDDLE, Z.LEFT_LOWER)


@pytest.mark.parametrize(
    ("zones", "sentence"),
    [
        (LEFT, "Atelectasis throughout the left lung."),
        (tuple(Z), "Atelectasis throughout both lungs."),
        ((Z.RIGHT_LOWER, Z.LEFT_LOWER), "Bilateral atelectasis in the lower zones."),
        (
            (Z.RIGHT_UPPER, Z.RIGHT_LOWER, Z.LEFT_UPPER, Z.LEFT_LOWER),
            "Bilateral atelectasis in the upper zones and lower zones.",
        ),
        (
            (Z.RIGHT_UPPER, Z.RIGHT_MIDDLE, Z.RIGHT_LOWER, Z.LEFT_LOWER),
            "Atelectasis in the left lower zone and throughout the right lung.",
        ),
        ((Z.RIGHT_LOWER, Z.LEFT_UPPER), "Atelectasis in the right lower zone and left upper zone."),
        ((Z.LEFT_LOWER,), "Atelectasis in the left lower zone."),
    ],
)
def test_zones_are_grouped_and_read_back(zones: tuple[Zone, ...], sentence: str) -> None:
    found = Finding("atelectasis", side=side_of(zones, ()), zones=zones)
    assert describe(found) == sentence
    (back,) = parse(sentence)
    assert back.zones == zones and back.side == found.side


def test_in_the_left_lung_without_throughout_names_the_side_only() -> None:
    (back,) = parse("Opacity in the left lung.")
    assert back.side is Side.LEFT and back.zones == ()


def test_a_pneumothorax_of_the_whole_left_side_is_not_a_list_of_zones() -> None:
    found = Finding("pneumothorax", side=Side.LEFT, zones=LEFT, severity=Severity.LARGE)
    report = write([found])
    assert "left upper zone" not in report and "throughout the left lung" in report
    assert parse(report) == [found]


def test_findings_consistent_with_the_film_share_one_opener() -> None:
    effusion = Finding(
        "pleural_effusion", side=Side.LEFT, severity=Severity.SMALL, probability=0.97
    )
    pneumothorax = Finding("pneumothorax", side=Side.LEFT, probability=0.95)
    possible = Finding("pleural_effusion", side=Side.RIGHT, probability=0.5)
    text = write_with_certainty([effusion, possible, pneumothorax])
    pleura = next(line for line in text.splitlines() if line.startswith("Pleura:"))
    assert pleura == (
        "Pleura: Findings consistent with a small left pleural effusion and a left pneumothorax. "
        "May represent a right pleural effusion."
    )
    assert text.count("Findings consistent with") == 1
    impression = text.split("IMPRESSION:\n")[1].splitlines()
    assert impression[:2] == ["1. Left pneumothorax.", "2. Small left pleural effusion."]
    codes = {(f.code, f.side, f.presence) for f in parse(text)}
    assert ("pneumothorax", Side.LEFT, Presence.PRESENT) in codes
    assert ("pleural_effusion", Side.LEFT, Presence.PRESENT) in codes
