"""Competence before evidence: a verifier speaks only inside its validated domain, about the
finding types it was validated for; everything else is not checked, and nothing it says
outside changes the draft, supports a claim, raises an omission or sets triage."""

from __future__ import annotations

import numpy as np
import pytest
from safety_builders import make_draft, make_study

from radloop.assist import draft
from radloop.assist.types import OutputWarning, WarningKind
from radloop.models.competence import Competence, DomainDecision, ValidatedDomain
from radloop.models.mock import MockModel
from radloop.report import Finding, Presence, Verdict
from radloop.safety import Calibrator, TableVerifier, check, verifier_domain
from radloop.vocabulary import Side

READING = {
    "1.2.3": {
        "presence": {"pneumothorax": 0.97, "nodule": 0.02, "pleural_effusion": 0.95},
        "zones": {"pleural_effusion": {"left_lower": 0.95, "right_lower": 0.02}},
    }
}


def _lab(*codes: str, name: str = "synthetic-lab") -> dict[str, object]:
    return {"domains": [{"name": name, "images": "test phantoms", "findings": list(codes)}]}


def test_a_verifier_that_declares_no_domain_never_speaks() -> None:
    verifier = TableVerifier(READING)  # the same reading, no declared competence
    claims = make_draft(
        [Finding("pleural_effusion", side=Side.RIGHT), Finding("nodule"),
         Finding("pneumothorax", presence=Presence.ABSENT)]
    )  # fmt: skip
    checked = check(claims, make_study(), verifier, Calibrator())
    assert [c.verdict for c in checked.checks] == [Verdict.NOT_CHECKED] * 3
    assert all("declares no validated domain" in c.reasons[0] for c in checked.checks)
    # Nothing changed, supported, omitted or triaged; the model's words stand.
    assert checked.findings == claims.findings and checked.text == claims.text
    assert all(f.probability is None for f in checked.findings)
    assert not checked.triage.urgent and not checked.flags and not checked.calibrated
    assert checked.not_checked == 3 and checked.all_unchecked
    assert checked.banner is not None and "Not checked" in checked.banner


def test_in_its_domain_the_same_verifier_checks_flags_and_triages() -> None:
    verifier = TableVerifier(READING, competence=_lab("pneumothorax", "nodule", "pleural_effusion"))
    claims = make_draft([Finding("pleural_effusion", side=Side.RIGHT), Finding("nodule"),
                         Finding("pneumothorax", presence=Presence.ABSENT)])  # fmt: skip
    checked = check(claims, make_study(), verifier)
    verdicts = [c.verdict for c in checked.checks if c.index is not None]
    assert verdicts == [Verdict.CONTRADICTED, Verdict.UNSUPPORTED, Verdict.CONTRADICTED]
    assert checked.triage.urgent and checked.domain is not None and checked.domain.in_domain


def test_a_finding_type_the_verifier_was_not_validated_for_is_not_checked() -> None:
    verifier = TableVerifier(READING, competence=_lab("pleural_effusion"))
    claims = make_draft([Finding("pleural_effusion", side=Side.LEFT), Finding("nodule")])
    checked = check(claims, make_study(), verifier)
    effusion, nodule = checked.checks[:2]
    assert effusion.verdict is Verdict.SUPPORTED
    assert nodule.verdict is Verdict.NOT_CHECKED
    assert "not validated for nodule on synthetic-lab" in nodule.reasons[0]
    # The pneumothorax it sees is outside its competence: no omission, no triage.
    assert not any(c.possible_omission for c in checked.checks)
    assert not checked.triage.urgent


def test_a_calibrator_of_another_domain_writes_no_certainty_words() -> None:
    verifier = TableVerifier(READING, competence=_lab("pleural_effusion", "nodule"))
    claims = make_draft([Finding("nodule")])
    lab = check(claims, make_study(), verifier, Calibrator())
    assert lab.calibrated and "very unlikely" in lab.text
    other = check(claims, make_study(), verifier, Calibrator(domain="real-frontal"))
    assert not other.calibrated and other.text == claims.text


def test_a_table_entry_in_an_undeclared_domain_is_outside() -> None:
    table = {"1.2.3": {**READING["1.2.3"], "domain": "real-frontal"}}
    verifier = TableVerifier(table, competence=_lab("pneumothorax"))
    decision = verifier_domain(verifier, make_study())
    assert (
        not decision.in_domain and "not validated on the domain 'real-frontal'" in decision.reason
    )


def test_an_invalid_presence_is_held_uncertain_and_flagged() -> None:
    reply = (
        '{"findings": [{"code": "cardiomegaly", "presence": "maybe"}], '
        '"normal_sections": ["lungs", "pleura", "bones"], "impression": "Cardiomegaly."}'
    )
    drafted = draft(make_study(), MockModel(reply), output="json")
    assert drafted.findings[0].presence is Presence.UNCERTAIN
    assert [w.kind for w in drafted.warnings] == [WarningKind.INVALID_PRESENCE]
    checked = check(drafted, make_study(), TableVerifier(READING))
    assert checked.checks[0].invalid_output and checked.checks[0].flagged
    assert "Cardiomegaly." not in checked.text.split("IMPRESSION:")[1].split("\n")[1]


def test_an_unaddressed_section_is_not_written_as_normal() -> None:
    reply = '{"findings": [{"code": "nodule", "presence": "present"}], "impression": ""}'
    drafted = draft(make_study(), MockModel(reply), output="json")
    assert "Pleura: Not commented." in drafted.text and "Unremarkable" not in drafted.text
    assert set(drafted.unaddressed) == {"pleura", "heart_mediastinum", "bones"}


@pytest.mark.parametrize(
    "reply",
    ["effusio effusio effusion effusion " * 20, "", '{"findings": [{"code": "pleura',
     " ".join(["the picture of the chest was taken in the morning and looks like a picture"] * 6)],
)  # fmt: skip
def test_degenerate_output_fails_the_draft_and_keeps_valid_urgency(reply: str) -> None:
    drafted = draft(make_study(), MockModel(reply), output="json")
    assert drafted.failed and drafted.findings == () and drafted.text == ""
    assert isinstance(drafted.failure, OutputWarning) and drafted.failure.degenerate
    # The in-domain verifier's pneumothorax still makes the study urgent.
    verifier = TableVerifier(READING, competence=_lab("pneumothorax"))
    checked = check(drafted, make_study(), verifier)
    assert checked.triage.urgent and checked.banner is not None
    assert checked.banner.startswith("Draft failed")


class _FarModel:
    """A findings predictor that would claim a tube but declares the film outside its domain."""

    model_id = "far-model"
    competence = Competence(
        "far-model", (ValidatedDomain("synthetic-lab", "lab", ("endotracheal_tube",)),)
    )

    def predict_findings(self, images: object) -> tuple[Finding, ...]:
        return (Finding("endotracheal_tube"), Finding("pneumothorax"))

    def assess_domain(self, images: object) -> DomainDecision:
        return DomainDecision(self.model_id, None, "this film is outside the synthetic lab")


def test_a_model_outside_its_domain_abstains_and_triages_nothing() -> None:
    drafted = draft(make_study(), _FarModel())  # type: ignore[arg-type]
    assert drafted.findings == () and drafted.abstained == "this film is outside the synthetic lab"
    checked = check(drafted, make_study(), TableVerifier(READING))
    assert not checked.triage.urgent and checked.banner is not None


def test_the_reference_model_abstains_on_an_image_far_from_the_lab() -> None:
    from radloop.models import load_model
    from radloop.safety import load_verifier

    noise = np.random.default_rng(3).uniform(0, 1, (256, 256)).astype(np.float32)
    study = make_study(noise)
    model = load_model("builtin")
    drafted = draft(study, model)
    assert drafted.abstained is not None and drafted.findings == ()
    assert "validated on synthetic radiographs only" in drafted.abstained
    reference = load_verifier("reference")
    assert not verifier_domain(reference, study).in_domain


def test_a_calibrator_of_another_domain_sets_no_omission_threshold() -> None:
    faint = TableVerifier(
        {"1.2.3": {"presence": {"pneumothorax": 0.2}}}, competence=_lab("pneumothorax")
    )
    denied = make_draft([Finding("pneumothorax", presence=Presence.ABSENT)])
    lab = Calibrator(omission_thresholds={"pneumothorax": 0.1})
    assert check(denied, make_study(), faint, lab).checks[0].possible_omission
    other = Calibrator(omission_thresholds={"pneumothorax": 0.1}, domain="real-frontal")
    checked = check(denied, make_study(), faint, other)
    assert not checked.checks[0].possible_omission and not checked.triage.urgent
