"""``check``: verify → calibrate → write → triage, with nothing dropped."""

from __future__ import annotations

from safety_builders import make_draft, make_study

from radloop.report import Finding, Presence, Verdict
from radloop.safety import Calibrator, TableVerifier, check
from radloop.vocabulary import Side, Zone

LAB = {
    "domains": [
        {
            "name": "synthetic-lab",
            "images": "the test's phantom",
            "findings": ["pleural_effusion", "nodule", "pneumothorax"],
        }
    ]
}
TABLE = TableVerifier(
    {
        "1.2.3": {
            "presence": {"pleural_effusion": 0.97, "nodule": 0.02, "pneumothorax": 0.9},
            "zones": {"pleural_effusion": {"left_lower": 0.95, "right_lower": 0.03}},
        }
    },
    competence=LAB,
)


def test_unsupported_claim_stays_in_the_draft_with_its_reason() -> None:
    draft = make_draft([Finding("pleural_effusion", side=Side.LEFT), Finding("nodule")])
    checked = check(draft, make_study(), TABLE)
    assert [f.code for f in checked.findings] == ["pleural_effusion", "nodule"]
    nodule = checked.findings[1]
    assert nodule.verdict is Verdict.UNSUPPORTED and nodule.probability == 0.02
    flag = checked.flags[0]
    assert flag.finding.code == "nodule" and "possible hallucination" in flag.reasons[0]
    # No calibrator: the probability is the verifier's, uncalibrated, and the words are the
    # model's own.
    assert not checked.calibrated and checked.text == draft.text
    calibrated = check(draft, make_study(), TABLE, Calibrator())
    assert calibrated.calibrated and "Nodule is very unlikely." in calibrated.text


def test_omitted_critical_finding_makes_the_study_urgent_and_is_flagged() -> None:
    draft = make_draft([Finding("pleural_effusion", side=Side.LEFT)])
    checked = check(draft, make_study(), TABLE)
    assert checked.triage.urgent
    assert checked.triage.reasons == ("possible omission: pneumothorax (always critical)",)
    assert any(f.possible_omission and f.finding.code == "pneumothorax" for f in checked.flags)


def test_supported_claim_is_written_with_the_calibrated_certainty() -> None:
    draft = make_draft([Finding("pleural_effusion", side=Side.LEFT, zones=(Zone.LEFT_LOWER,))])
    checked = check(draft, make_study(), TABLE, Calibrator())
    assert checked.findings[0].verdict is Verdict.SUPPORTED
    assert "Findings consistent with a pleural effusion in the left lower zone." in checked.text


def test_every_stage_is_timed() -> None:
    checked = check(
        make_draft([Finding("pneumothorax", presence=Presence.ABSENT)]), make_study(), TABLE
    )
    assert set(checked.timings_s) == {
        "verifier_inference",
        "verify",
        "calibrate",
        "write",
        "triage",
    }
    assert checked.checks[0].possible_omission


def test_sampled_generations_give_sample_agreement() -> None:
    texts = ["Left pleural effusion. Nodule.", "Left pleural effusion.", "Left pleural effusion."]
    draft = make_draft([Finding("pleural_effusion", side=Side.LEFT), Finding("nodule")], texts)
    checked = check(draft, make_study(), TABLE)
    assert checked.checks[0].numbers.sample_agreement == 1.0
    assert checked.checks[1].numbers.sample_agreement == 1 / 3
    assert checked.to_dict()["flags"]


def test_the_calibrators_omission_thresholds_apply_unless_the_caller_sets_its_own() -> None:
    from radloop.safety import Thresholds

    faint = TableVerifier({"1.2.3": {"presence": {"pneumothorax": 0.12}}}, competence=LAB)
    draft = make_draft([Finding("pneumothorax", presence=Presence.ABSENT)])
    assert not check(draft, make_study(), faint, Calibrator()).checks[0].possible_omission
    fitted = Calibrator(omission_thresholds={"pneumothorax": 0.1})
    checked = check(draft, make_study(), faint, fitted)
    assert checked.checks[0].possible_omission and checked.triage.urgent
    own = Thresholds(omission_by_code={"pneumothorax": 0.3})
    assert not check(draft, make_study(), faint, fitted, thresholds=own).checks[0].possible_omission
