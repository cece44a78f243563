"""The impression ranked by urgency: critical findings first (a large one before the others),
then significant ones, then incidental ones; pneumothorax size terms by the ACCP cut-off."""

from __future__ import annotations

import pytest

from radloop.report import Finding, Presence, Severity, parse, write
from radloop.report.writer import (
    INCIDENTAL,
    PNEUMOTHORAX_LARGE_MM,
    describe,
    guideline_severity,
    is_critical,
    urgency,
)
from radloop.safety.triage import critical_reason
from radloop.vocabulary import FINDING_CODES, Criticality, Side


def _impression(text: str) -> list[str]:
    return text.split("IMPRESSION:\n", 1)[1].strip().splitlines()


def test_incidental_codes_are_in_the_vocabulary_and_never_critical() -> None:
    for code in INCIDENTAL:
        assert FINDING_CODES[code].critical in (Criticality.NEVER, Criticality.IF_MALPOSITIONED)


def test_critical_then_significant_then_incidental_whatever_the_input_order() -> None:
    granuloma = Finding("calcified_granuloma", side=Side.RIGHT)
    opacity = Finding("consolidation", side=Side.LEFT)
    pneumothorax = Finding("pneumothorax", side=Side.RIGHT, severity=Severity.SMALL)
    assert FINDING_CODES["pneumothorax"].critical is Criticality.ALWAYS
    assert [urgency(f) for f in (granuloma, opacity, pneumothorax)] == [3, 2, 1]
    lines = _impression(write([granuloma, opacity, pneumothorax]))
    assert lines == [
        "1. Small right pneumothorax.",
        "2. Left consolidation.",
        "3. Right calcified granuloma.",
    ]


def test_a_large_effusion_leads_a_small_one_follows_the_significant_findings() -> None:
    small = Finding("pleural_effusion", side=Side.LEFT, severity=Severity.SMALL)
    large = Finding("pleural_effusion", side=Side.RIGHT, severity=Severity.LARGE)
    edema = Finding("edema")
    assert not is_critical(small) and is_critical(large)
    lines = _impression(write([small, edema, large]))
    assert lines[0] == "1. Large right pleural effusion."
    assert lines[1:] == ["2. Small left pleural effusion.", "3. Pulmonary edema."]  # as given


def test_a_large_pneumothorax_by_its_measurement_comes_before_a_small_one() -> None:
    nodule = Finding("nodule", side=Side.LEFT, size_mm=12.0)
    small = Finding("pneumothorax", side=Side.LEFT, size_mm=12.0)
    large = Finding("pneumothorax", side=Side.RIGHT, size_mm=41.0)
    lines = _impression(write([nodule, small, large]))
    assert lines == [
        "1. A 41 mm right pneumothorax.",
        "2. A 12 mm left pneumothorax.",
        "3. A 12 mm left nodule.",
    ]


@pytest.mark.parametrize(
    ("size_mm", "term"),
    [(29.9, Severity.SMALL), (PNEUMOTHORAX_LARGE_MM, Severity.LARGE), (45.0, Severity.LARGE),
     (5.0, Severity.SMALL)],
)  # fmt: skip
def test_pneumothorax_size_term_follows_the_accp_cut_off(size_mm: float, term: Severity) -> None:
    assert guideline_severity(Finding("pneumothorax", side=Side.LEFT, size_mm=size_mm)) is term


def test_no_guideline_term_without_a_measurement_or_for_other_codes() -> None:
    assert guideline_severity(Finding("pneumothorax", severity=Severity.SMALL)) is None
    assert guideline_severity(Finding("nodule", size_mm=35.0)) is None


def test_a_model_s_small_never_sits_beside_a_measurement_that_makes_it_large() -> None:
    found = Finding("pneumothorax", side=Side.LEFT, severity=Severity.SMALL, size_mm=35.0)
    sentence = describe(found)
    assert sentence == "A 35 mm left pneumothorax."
    assert urgency(found) == 0  # ranked as large by the measurement, not by the word
    (back,) = parse(write([found]))
    assert (back.size_mm, back.severity) == (35.0, None)
    assert guideline_severity(back) is Severity.LARGE


def test_a_misplaced_tube_leads_when_the_safety_triage_decides_criticality() -> None:
    tube = Finding("endotracheal_tube", tip_reference="carina", tip_distance_mm=-10.0)
    effusion = Finding("pleural_effusion", side=Side.LEFT, severity=Severity.SMALL)
    assert critical_reason(tube) is not None
    by_vocabulary = _impression(write([effusion, tube]))
    assert by_vocabulary[0] == "1. Small left pleural effusion."  # the vocabulary alone cannot
    by_triage = _impression(write([effusion, tube], critical=lambda f: bool(critical_reason(f))))
    assert by_triage[0] == "1. Endotracheal tube with tip 10 mm below the carina."


def test_absent_findings_stay_out_of_the_impression() -> None:
    text = write([Finding("pneumothorax", presence=Presence.ABSENT)])
    assert _impression(text) == ["No acute cardiopulmonary abnormality."]
