"""Triage: critical findings make a study urgent with the reason; the worklist order."""

from __future__ import annotations

import datetime

from radloop.report import Finding, Presence, Severity
from radloop.safety import TriageDecision, critical_reason, order_worklist, triage
from radloop.vocabulary import Side


def test_pneumothorax_makes_a_study_urgent_with_the_reason() -> None:
    decision = triage([Finding("pneumothorax", side=Side.RIGHT)])
    assert decision.urgent
    assert decision.reasons == ("pneumothorax (always critical)",)


def test_denied_pneumothorax_is_not_urgent() -> None:
    assert not triage([Finding("pneumothorax", presence=Presence.ABSENT)]).urgent


def test_only_a_large_effusion_is_critical() -> None:
    assert critical_reason(Finding("pleural_effusion", severity=Severity.SMALL)) is None
    assert critical_reason(Finding("pleural_effusion", severity=Severity.LARGE)) == (
        "large pleural effusion"
    )


def test_endotracheal_tube_tip_outside_20_to_70_mm_above_the_carina_is_malpositioned() -> None:
    def tube(mm: float) -> Finding:
        return Finding("endotracheal_tube", tip_distance_mm=mm, tip_reference="carina")

    assert critical_reason(tube(40)) is None
    assert "(< 20 mm)" in (critical_reason(tube(10)) or "")
    assert "(> 70 mm)" in (critical_reason(tube(90)) or "")
    assert "below the carina" in (critical_reason(tube(-5)) or "")


def test_nasogastric_tube_tip_in_the_esophagus_is_malpositioned() -> None:
    ng = Finding("nasogastric_tube", tip_reference="esophagus")
    assert critical_reason(ng) == "nasogastric tube tip in the esophagus"
    assert critical_reason(ng.with_(tip_reference="stomach")) is None


def test_very_unlikely_critical_finding_does_not_make_a_study_urgent() -> None:
    assert not triage([Finding("pneumothorax", probability=0.01)]).urgent


def test_worklist_puts_urgent_first_then_flagged_then_oldest() -> None:
    t0 = datetime.datetime(2024, 1, 1, 8)
    hour = datetime.timedelta(hours=1)
    entries = [
        ("routine-old", TriageDecision(False, ()), t0),
        ("flagged", TriageDecision(False, (), flagged_claims=1), t0 + hour),
        ("urgent-late", TriageDecision(True, ("pneumothorax",)), t0 + 3 * hour),
        ("routine-new", TriageDecision(False, ()), t0 + 2 * hour),
    ]
    assert order_worklist(entries) == ["urgent-late", "flagged", "routine-old", "routine-new"]
