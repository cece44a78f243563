"""Sizes in the report: said once, at a report's precision, and read back as written."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radloop.report import Finding, Presence, Severity, parse, write
from radloop.report.modifiers import find_severities
from radloop.report.writer import as_reported, describe, is_critical, reported_mm
from radloop.vocabulary import FINDING_CODES, Criticality, Side, Zone

LEFT_LUNG = (Zone.LEFT_UPPER, Zone.LEFT_MIDDLE, Zone.LEFT_LOWER)
SIZED_CODES = sorted(c for c, e in FINDING_CODES.items() if c != "no_finding" and not e.device)


@pytest.mark.parametrize(
    ("value", "said"),
    [(11.9, 12.0), (12.5, 13.0), (12.49, 12.0), (150.25, 150.0), (8.44, 8.4), (8.45, 8.5),
     (9.94, 9.9), (9.96, 10.0), (0.01, 0.1), (3.0, 3.0)],
)  # fmt: skip
def test_measurements_are_whole_mm_from_10_mm_and_one_decimal_under(
    value: float, said: float
) -> None:
    assert reported_mm(value) == said


def test_the_pneumothorax_of_the_issue_is_said_once_in_whole_mm() -> None:
    found = Finding(
        "pneumothorax", side=Side.LEFT, zones=LEFT_LUNG, severity=Severity.SMALL, size_mm=11.9
    )
    sentence = describe(found)
    assert sentence == "A 12 mm pneumothorax throughout the left lung."
    assert find_severities(sentence.lower()) == []
    assert "11.9" not in sentence and "small" not in sentence.lower()
    (back,) = parse(write([found]))
    assert (back.size_mm, back.severity, back.zones) == (12.0, None, LEFT_LUNG)
    assert is_critical(back)  # a pneumothorax is critical at any size


@pytest.mark.parametrize(
    ("found", "sentence"),
    [
        (Finding("nodule", size_mm=8.44), "An 8.4 mm nodule."),
        (Finding("nodule", size_mm=9.96, severity=Severity.SMALL), "A 10 mm nodule."),
        (Finding("nodule", size_mm=18.2), "An 18 mm nodule."),
        (Finding("mass", dimensions_mm=(11.9, 20.44), size_mm=20.44), "A 12 x 20 mm mass."),
        (
            Finding("nodule", presence=Presence.UNCERTAIN, size_mm=6.06,
                    severity=Severity.MINIMAL),
            "A 6.1 mm nodule may be present.",
        ),
    ],
)  # fmt: skip
def test_sentences_with_a_measurement(found: Finding, sentence: str) -> None:
    assert describe(found) == sentence


def test_a_large_effusion_is_said_large_and_stays_critical_when_read_back() -> None:
    found = Finding("pleural_effusion", side=Side.LEFT, severity=Severity.LARGE, size_mm=81.3)
    assert FINDING_CODES["pleural_effusion"].critical is Criticality.IF_LARGE
    assert describe(found) == "Large left pleural effusion."
    (back,) = parse(write([found]))
    assert back.severity is Severity.LARGE and back.size_mm is None and is_critical(back)


def test_a_measured_effusion_without_a_severity_keeps_its_measurement() -> None:
    found = Finding("pleural_effusion", side=Side.RIGHT, size_mm=25.25)
    assert describe(found) == "A 25 mm right pleural effusion."


def test_findings_without_a_measurement_are_unchanged() -> None:
    found = Finding("cardiomegaly", severity=Severity.MILD)
    assert as_reported(found) is found and describe(found) == "Mild cardiomegaly."


measured = st.floats(min_value=0.05, max_value=300, allow_nan=False, allow_infinity=False)


@st.composite
def sized_findings(draw: st.DrawFn) -> Finding:
    code = draw(st.sampled_from(SIZED_CODES))
    presence = draw(st.sampled_from([Presence.PRESENT, Presence.UNCERTAIN]))
    dimensions = tuple(draw(st.lists(measured, min_size=1, max_size=3)))
    return Finding(
        code,
        presence=presence,
        severity=draw(st.none() | st.sampled_from(list(Severity))),
        size_mm=max(dimensions),
        dimensions_mm=dimensions if len(dimensions) > 1 else (),
    )


@settings(max_examples=300, deadline=None)
@given(sized_findings())
def test_any_measured_finding_reads_back_as_reported(found: Finding) -> None:
    report = write([found])
    reported = as_reported(found)
    assert parse(report) == [reported], report
    sentence = describe(found)
    # The size is said once: a measurement or a severity word, never both.
    numbers = re.findall(r"\d+(?:\.\d+)?(?= (?:x |mm))", sentence)
    words = find_severities(sentence.lower())
    assert (len(words), bool(numbers)) in {(1, False), (0, True)}, sentence
    for number in numbers:
        value = float(number)
        assert ("." not in number) if value >= 10 else len(number.split(".")[-1]) <= 1, sentence
    assert is_critical(reported) == is_critical(found)
