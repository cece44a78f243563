"""The report as an HL7 v2.5.1 ORU^R01 (hl7apy), for a RIS that takes only HL7."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from radloop.report import Finding, Presence, ReportStatus
from radloop.review.export import Addendum, ExportContent
from radloop.review.hl7_out import oru_r01, parse_oru, result_status, unescape
from radloop.vocabulary import Side, Zone

SIGNED_AT = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)


def _content(status: ReportStatus = ReportStatus.FINAL, **changes: Any) -> ExportContent:
    values: dict[str, Any] = {
        "study_id": "s1",
        "study_instance_uid": "1.2.826.0.1.3680043.8.498.1",
        "status": status,
        "text": "FINDINGS:\nSmall left effusion | fluid ^ level & more ~ \\ odd.\n"
        "No pneumothorax.\n\nIMPRESSION:\nSmall left pleural effusion.",
        "findings": (
            Finding("pleural_effusion", side=Side.LEFT, zones=(Zone.LEFT_LOWER,)),
            Finding("pneumothorax", presence=Presence.ABSENT),
            Finding("calcified_granuloma"),
        ),
        "study_date": datetime.date(2024, 5, 1),
        "issued": SIGNED_AT,
        "signed_by": "Dr Ann Reader",
        "institution": "Test Hospital",
        "signed_at": SIGNED_AT,
        "patient_id": "PAT-1",
        "patient_name": "DOE^JANE",
        "patient_birth_date": datetime.date(1970, 1, 2),
        "patient_sex": "F",
        "accession_number": "ACC-1",
    }
    values.update(changes)
    return ExportContent(**values)


def _observations(parsed: Any) -> list[tuple[str, str, str, str]]:
    order = parsed.ORU_R01_PATIENT_RESULT.ORU_R01_ORDER_OBSERVATION
    return [
        (
            o.obx.obx_3.to_er7(),
            o.obx.obx_4.to_er7(),
            unescape(o.obx.obx_5.to_er7()),
            o.obx.obx_11.to_er7(),
        )
        for o in order.ORU_R01_OBSERVATION
    ]


def test_signed_report_as_oru_r01_parses_back() -> None:
    message = oru_r01(_content(), views=2, control_id="MSG1")
    parsed = parse_oru(message)
    assert parsed.msh.msh_9.to_er7() == "ORU^R01^ORU_R01"
    assert parsed.msh.msh_12.to_er7() == "2.5.1"
    assert parsed.msh.msh_10.to_er7() == "MSG1"
    patient = parsed.ORU_R01_PATIENT_RESULT.ORU_R01_PATIENT.pid
    assert (patient.pid_3.to_er7(), patient.pid_5.to_er7()) == ("PAT-1", "DOE^JANE")
    assert (patient.pid_7.to_er7(), patient.pid_8.to_er7()) == ("19700102", "F")
    obr = parsed.ORU_R01_PATIENT_RESULT.ORU_R01_ORDER_OBSERVATION.obr
    assert obr.obr_3.to_er7() == "ACC-1"  # the accession number
    assert obr.obr_4.to_er7() == "36643-5^XR Chest 2 Views^LN"
    assert obr.obr_25.to_er7() == "F"
    assert obr.obr_32.to_er7() == "&Reader&Ann&&&Dr"
    rows = _observations(parsed)
    assert rows[:5] == [
        ("60046008^pleural effusion^SCT", "1", "52101004^Present^SCT", "F"),
        ("272741003^Laterality^SCT", "1", "7771000^Left^SCT", "F"),
        ("363698007^Finding site^SCT", "1", "left lower zone", "F"),
        ("36118008^pneumothorax^SCT", "2", "272519000^Absent^SCT", "F"),
        ("calcified_granuloma^calcified granuloma^99RADLOOP", "3", "52101004^Present^SCT", "F"),
    ]
    texts = [(code, value) for code, _sub, value, _status in rows if code.endswith("^LN")]
    assert texts == [
        ("59776-5^Findings^LN", "Small left effusion | fluid ^ level & more ~ \\ odd."),
        ("59776-5^Findings^LN", "No pneumothorax."),
        ("19005-8^Impressions^LN", "Small left pleural effusion."),
    ]


@pytest.mark.parametrize(
    ("status", "code"),
    [(ReportStatus.DRAFT, "P"), (ReportStatus.FINAL, "F"), (ReportStatus.AMENDED, "C")],
)
def test_result_status_is_preliminary_final_or_corrected(status: ReportStatus, code: str) -> None:
    addenda = (Addendum("Moderate, not small.", "Bob Second", SIGNED_AT),)
    content = _content(
        status,
        signed_by=None if status is ReportStatus.DRAFT else "Dr Ann Reader",
        amendments=addenda if status is ReportStatus.AMENDED else (),
    )
    assert result_status(content) == code
    parsed = parse_oru(oru_r01(content))
    assert parsed.ORU_R01_PATIENT_RESULT.ORU_R01_ORDER_OBSERVATION.obr.obr_25.to_er7() == code
    rows = _observations(parsed)
    assert {row[3] for row in rows} == {code}
    values = [row[2] for row in rows]
    if status is ReportStatus.DRAFT:
        assert any("unverified until signed" in v for v in values)
        assert parsed.ORU_R01_PATIENT_RESULT.ORU_R01_ORDER_OBSERVATION.obr.obr_32.to_er7() == ""
    if status is ReportStatus.AMENDED:
        addendum = [row for row in rows if row[0] == "55107-7^Addendum^LN"]
        assert addendum[-1][2] == "Moderate, not small."
        assert "Bob Second" in addendum[0][2]
