"""The writer, specified by the sentences it produces."""

from __future__ import annotations

import pytest

from radloop.report import Change, Finding, Presence, Severity, write
from radloop.report.writer import describe
from radloop.vocabulary import Lobe, Side, VertebralLevel, Zone


@pytest.mark.parametrize(
    ("found", "sentence"),
    [
        (
            Finding("pleural_effusion", side=Side.LEFT, severity=Severity.SMALL),
            "Small left pleural effusion.",
        ),
        (
            Finding("nodule", side=Side.RIGHT, lobes=(Lobe.RIGHT_UPPER,), size_mm=12.0),
            "A 12 mm nodule in the right upper lobe.",
        ),
        (Finding("nodule", size_mm=8.0), "An 8 mm nodule."),
        (
            Finding("endotracheal_tube", tip_distance_mm=40.0, tip_reference="carina"),
            "Endotracheal tube with tip 40 mm above the carina.",
        ),
        (Finding("pneumothorax", presence=Presence.ABSENT), "No pneumothorax."),
        (
            Finding("mass", dimensions_mm=(20.0, 30.0), size_mm=30.0, lobes=(Lobe.LINGULA,),
                    side=Side.LEFT),
            "A 20 x 30 mm mass in the lingula.",
        ),
        (
            Finding("pleural_effusion", presence=Presence.ABSENT, side=Side.RIGHT,
                    change=Change.RESOLVED),
            "Interval resolution of the right pleural effusion.",
        ),
        (
            Finding("pneumonia", presence=Presence.UNCERTAIN, side=Side.RIGHT,
                    zones=(Zone.RIGHT_LOWER,)),
            "Pneumonia in the right lower zone may be present.",
        ),
        (
            Finding("pleural_effusion", side=Side.RIGHT, change=Change.INCREASED),
            "Right pleural effusion, increased since the prior study.",
        ),
        (Finding("scoliosis", side=Side.RIGHT, severity=Severity.MILD), "Mild dextroscoliosis."),
        (
            Finding("fracture", vertebral_level=VertebralLevel.T7),
            "Fracture at the level of T7.",
        ),
        (
            Finding("central_venous_catheter", side=Side.RIGHT,
                    tip_reference="superior vena cava"),
            "Right central venous catheter with tip in the superior vena cava.",
        ),
    ],
)  # fmt: skip
def test_each_finding_reads_as_report_language(found: Finding, sentence: str) -> None:
    assert describe(found) == sentence


def test_a_report_without_positive_findings_has_a_normal_impression() -> None:
    report = write([Finding("pneumothorax", presence=Presence.ABSENT)])
    assert report.endswith("IMPRESSION:\nNo acute cardiopulmonary abnormality.\n")
    assert "Pleura: No pneumothorax." in report
    assert "Lungs: Unremarkable." in report


def test_findings_are_written_by_section() -> None:
    report = write(
        [
            Finding("pacemaker", side=Side.LEFT),
            Finding("cardiomegaly", severity=Severity.MILD),
            Finding("atelectasis", side=Side.LEFT, zones=(Zone.LEFT_LOWER,)),
        ]
    )
    lines = report.splitlines()
    assert lines[:6] == [
        "FINDINGS:",
        "Lungs: Atelectasis in the left lower zone.",
        "Pleura: Unremarkable.",
        "Heart and mediastinum: Mild cardiomegaly.",
        "Bones: Unremarkable.",
        "Devices: Left pacemaker.",
    ]


def test_impression_lists_critical_findings_first() -> None:
    report = write(
        [
            Finding("nodule", size_mm=6.0),
            Finding("pleural_effusion", severity=Severity.SMALL),
            Finding("pneumothorax", side=Side.RIGHT, severity=Severity.LARGE),
            Finding("edema", presence=Presence.ABSENT),
        ]
    )
    impression = report.split("IMPRESSION:\n")[1].splitlines()
    assert impression == [
        "1. Large right pneumothorax.",
        "2. A 6 mm nodule.",
        "3. Small pleural effusion.",
    ]


def test_a_large_effusion_is_critical_and_a_small_one_is_not() -> None:
    report = write(
        [
            Finding("pleural_effusion", side=Side.LEFT, severity=Severity.SMALL),
            Finding("pleural_effusion", side=Side.RIGHT, severity=Severity.LARGE),
        ]
    )
    assert "1. Large right pleural effusion." in report
